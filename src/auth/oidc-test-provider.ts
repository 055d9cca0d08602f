import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** The claims a test person has at the provider, besides `sub`. */
export interface TestPerson {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

/** A real OpenID Connect provider (oidc-provider 9) on 127.0.0.1 for tests. */
export interface TestIdentityProvider {
  /** http://127.0.0.1:PORT */
  issuer: string;
  /** 127.0.0.1:PORT, for DMARCDESK_OIDC_ALLOWED_HOSTS. */
  hostPort: string;
  clientId: string;
  clientSecret: string;
  /** Set or replace the claims of the person with this subject. */
  setPerson(subject: string, person: TestPerson): void;
  /**
   * Play the browser from an authorization URL through the provider's login and consent pages,
   * signing in as `subject`. Returns the redirect back to the client, which is not followed.
   */
  authorize(authorizationUrl: string, subject: string): Promise<URL>;
  stop(): Promise<void>;
}

/**
 * Start the provider with one confidential client that must use PKCE. With `emailInIdToken`
 * false the email claims are served only from UserInfo, as oidc-provider does by default.
 */
export async function startTestIdentityProvider(options: {
  redirectUri: string;
  emailInIdToken?: boolean;
}): Promise<TestIdentityProvider> {
  const people = new Map<string, TestPerson>();
  const clientId = 'dmarcdesk-test';
  const clientSecret = `idp-secret-${randomBytes(16).toString('hex')}`;

  // The issuer must be known before the provider exists, so the port is taken first.
  let handler: ReturnType<Provider['callback']> | null = null;
  const server = createServer((request, response) => {
    if (handler) return void handler(request, response);
    response.statusCode = 503;
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: options.emailInIdToken === false,
    features: { devInteractions: { enabled: true } },
    // Explicit lifetimes in seconds, because the defaults print a notice each time they are used.
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 600,
      IdToken: 600,
      Interaction: 600,
      Session: 600,
    },
    async findAccount(_context, subject) {
      const person = people.get(subject);
      if (!person) return undefined;
      return { accountId: subject, claims: async () => ({ sub: subject, ...people.get(subject) }) };
    },
  });
  handler = provider.callback();

  return {
    issuer,
    hostPort: `127.0.0.1:${port}`,
    clientId,
    clientSecret,
    setPerson(subject, person) {
      people.set(subject, person);
    },
    authorize: (authorizationUrl, subject) =>
      playBrowser(authorizationUrl, subject, options.redirectUri),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

/**
 * Follow redirects and submit the development login and consent forms with fetch. Each call
 * starts with an empty cookie jar, like a new browser, so no provider session carries over.
 */
async function playBrowser(start: string, subject: string, redirectUri: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(start);
  let form: URLSearchParams | null = null;

  for (let step = 0; step < 12; step += 1) {
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(form ? { body: form.toString() } : {}),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const separator = pair!.indexOf('=');
      jar.set(pair!.slice(0, separator), pair!.slice(separator + 1));
    }
    form = null;

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      url = new URL(location, url);
      if (url.href.startsWith(`${redirectUri}?`)) return url;
      continue;
    }

    const html = await response.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
    if (response.status !== 200 || !action || !prompt) {
      throw new Error(
        `The test provider returned ${response.status} at ${url.href}: ${html.slice(0, 300)}`,
      );
    }
    url = new URL(action.replaceAll('&amp;', '&'), url);
    // The hidden prompt field is required, because without it the provider returns 501.
    form = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      form.set('login', subject);
      form.set('password', 'any password');
    }
  }
  throw new Error(`The test provider did not redirect back to ${redirectUri} within 12 steps.`);
}
