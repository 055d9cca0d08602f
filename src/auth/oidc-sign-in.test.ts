import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  startService,
  type TestService,
} from '../../test/support/service.ts';
import { createTestUser, sessionClient } from '../../test/support/sessions.ts';
import { OIDC_CALLBACK_PATH } from './oidc-providers.ts';
import { startTestIdentityProvider, type TestIdentityProvider } from './oidc-test-provider.ts';
import { createSession, SESSION_COOKIE } from './sessions.ts';

const PUBLIC_URL = 'http://dmarcdesk.test';
const REDIRECT_URI = `${PUBLIC_URL}${OIDC_CALLBACK_PATH}`;

interface Exchange {
  status: number;
  location: string | null;
  setCookies: string[];
  body: any;
}

for (const engine of DATABASE_ENGINES) {
  describe(`OpenID Connect sign-in on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let idp: TestIdentityProvider;
    const logLines: string[] = [];
    /** Every response body and header this suite received, for the secret check. */
    const seen: string[] = [];
    let accountId: string;
    let otherAccountId: string;
    let owner: ReturnType<typeof apiClient>;
    let aliceId: string;

    async function record(response: Response): Promise<Exchange> {
      const text = await response.text();
      seen.push(text, JSON.stringify([...response.headers]));
      return {
        status: response.status,
        location: response.headers.get('location'),
        setCookies: response.headers.getSetCookie(),
        body: text.startsWith('{') ? JSON.parse(text) : text,
      };
    }

    async function start(forAccount = accountId): Promise<{ url: URL; cookie: string }> {
      const response = await record(
        await fetch(`${service.url}/api/v1/auth/oidc/${forAccount}/start`, { redirect: 'manual' }),
      );
      assert.equal(response.status, 303, JSON.stringify(response.body));
      const cookie = response.setCookies.find((line) => line.startsWith('__Host-dmarcdesk_oidc='));
      assert.ok(cookie, 'the start sets the attempt cookie');
      return { url: new URL(response.location!), cookie: cookie.split(';')[0]! };
    }

    async function callback(query: string, cookies: string[]): Promise<Exchange> {
      return record(
        await fetch(`${service.url}/api/v1/auth/oidc/callback?${query}`, {
          redirect: 'manual',
          headers: cookies.length > 0 ? { cookie: cookies.join('; ') } : {},
        }),
      );
    }

    /** A whole sign-in as `subject`: start, the provider's pages, the callback. */
    async function signInAs(
      subject: string,
      options: { account?: string; extraCookies?: string[] } = {},
    ): Promise<Exchange & { query: string; attemptCookie: string }> {
      const started = await start(options.account);
      const back = await idp.authorize(started.url.href, subject);
      const query = back.search.slice(1);
      const result = await callback(query, [started.cookie, ...(options.extraCookies ?? [])]);
      return { ...result, query, attemptCookie: started.cookie };
    }

    function sessionCookieOf(exchange: Exchange): string | undefined {
      return exchange.setCookies
        .find((line) => line.startsWith(`${SESSION_COOKIE}=`))
        ?.split(';')[0];
    }

    async function sessionUser(cookie: string): Promise<{ status: number; email?: string }> {
      const response = await sessionClient(service.url, { cookie, csrfToken: '' })(
        'GET',
        '/auth/session',
      );
      return { status: response.status, email: response.body?.user?.email };
    }

    async function sessionCount(userId: string): Promise<number> {
      const [row] = await service.app.db.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM sessions WHERE user_id = $1',
        [userId],
      );
      return row!.count;
    }

    async function configure(changes: Record<string, unknown> = {}) {
      const response = await owner('PUT', '/auth/oidc/provider', {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        allowedDomains: ['contoso.example'],
        ...changes,
      });
      seen.push(JSON.stringify(response.body));
      assert.equal(response.status, 200, JSON.stringify(response.body));
      return response.body;
    }

    before(async () => {
      idp = await startTestIdentityProvider({ redirectUri: REDIRECT_URI });
      database = await openTestDatabase(engine);
      service = await startService(database, {
        environment: { DMARCDESK_OIDC_ALLOWED_HOSTS: idp.hostPort },
        logLines,
      });
      const account = await createTestAccount(service.app, 'Contoso MSP');
      accountId = account.accountId;
      owner = apiClient(service.url, account.token);
      otherAccountId = (await createTestAccount(service.app, 'Fabrikam MSP')).accountId;

      aliceId = (await createTestUser(service.app, accountId, 'alice@contoso.example', 'viewer'))
        .user.id;
      await createTestUser(service.app, otherAccountId, 'carol@contoso.example', 'mssp_owner');
      idp.setPerson('alice-sub', {
        email: 'alice@contoso.example',
        email_verified: true,
        name: 'Alice',
      });
      idp.setPerson('carol-sub', { email: 'carol@contoso.example', email_verified: true });
      await configure();
    });

    after(async () => {
      await service?.stop();
      await idp?.stop();
      await database?.drop();
    });

    test('start redirects with PKCE, state and nonce', async () => {
      const response = await record(
        await fetch(`${service.url}/api/v1/auth/oidc/${accountId}/start`, { redirect: 'manual' }),
      );
      assert.equal(response.status, 303);
      const url = new URL(response.location!);
      assert.equal(url.origin, idp.issuer);
      assert.equal(url.searchParams.get('client_id'), idp.clientId);
      assert.equal(url.searchParams.get('redirect_uri'), REDIRECT_URI);
      assert.equal(url.searchParams.get('response_type'), 'code');
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.ok((url.searchParams.get('state') ?? '').length >= 32);
      assert.ok((url.searchParams.get('nonce') ?? '').length >= 32);

      const cookie = response.setCookies.find((line) => line.startsWith('__Host-dmarcdesk_oidc='));
      const attributes = (cookie ?? '').split(';').map((part) => part.trim().toLowerCase());
      assert.ok(attributes.includes('httponly'));
      assert.ok(attributes.includes('secure'));
      assert.ok(attributes.includes('samesite=lax'));
      assert.ok(attributes.includes('path=/'));
      assert.ok(attributes.includes('max-age=600'));

      const [stored] = await service.app.db.query<{ state: string; seconds: number }>(
        `SELECT state, extract(epoch FROM expires_at - created_at)::int AS seconds
           FROM oidc_sign_in_attempts WHERE state = $1`,
        [url.searchParams.get('state')],
      );
      assert.equal(stored?.seconds, 600);
    });

    test('start for an account without a provider is 404', async () => {
      const response = await record(
        await fetch(`${service.url}/api/v1/auth/oidc/${otherAccountId}/start`, {
          redirect: 'manual',
        }),
      );
      assert.equal(response.status, 404);
      assert.match(response.body.error.message, /no OpenID Connect sign-in set up/);
    });

    test('full sign-in yields a working session', async () => {
      const result = await signInAs('alice-sub');
      assert.equal(result.status, 303, JSON.stringify(result.body));
      assert.equal(result.location, '/');
      const line = result.setCookies.find((entry) => entry.startsWith(`${SESSION_COOKIE}=`));
      const attributes = (line ?? '').split(';').map((part) => part.trim().toLowerCase());
      assert.ok(attributes.includes('httponly'));
      assert.ok(attributes.includes('secure'));
      assert.ok(attributes.includes('samesite=strict'));
      assert.ok(attributes.includes('path=/'));
      assert.ok(
        result.setCookies.some((entry) => /^__Host-dmarcdesk_oidc=;.*Max-Age=0/i.test(entry)),
        'the attempt cookie is cleared',
      );

      const session = await sessionUser(sessionCookieOf(result)!);
      assert.equal(session.status, 200);
      assert.equal(session.email, 'alice@contoso.example');

      const [linked] = await service.app.db.query<{ oidc_issuer: string; oidc_subject: string }>(
        'SELECT oidc_issuer, oidc_subject FROM users WHERE id = $1',
        [aliceId],
      );
      assert.equal(linked?.oidc_issuer, idp.issuer);
      assert.equal(linked?.oidc_subject, 'alice-sub');
    });

    test('sign-in ends a planted session', async () => {
      const planted = await createSession(service.app.db, { id: aliceId, account_id: accountId });
      const plantedCookie = `${SESSION_COOKIE}=${planted.token}`;
      assert.equal((await sessionUser(plantedCookie)).status, 200);

      const result = await signInAs('alice-sub', { extraCookies: [plantedCookie] });
      assert.equal(result.status, 303, JSON.stringify(result.body));
      const fresh = sessionCookieOf(result)!;
      assert.notEqual(fresh, plantedCookie);
      assert.equal((await sessionUser(plantedCookie)).status, 401);
      assert.equal((await sessionUser(fresh)).status, 200);
    });

    test('replayed callback is rejected', async () => {
      const first = await signInAs('alice-sub');
      assert.equal(first.status, 303, JSON.stringify(first.body));
      const sessionsBefore = await sessionCount(aliceId);

      const replay = await callback(first.query, [first.attemptCookie]);
      assert.equal(replay.status, 400);
      assert.match(replay.body.error.message, /unknown or was already used/);
      assert.equal(sessionCookieOf(replay), undefined);
      assert.equal(await sessionCount(aliceId), sessionsBefore);
    });

    test('used code under a new state is rejected', async () => {
      const first = await signInAs('alice-sub');
      assert.equal(first.status, 303, JSON.stringify(first.body));
      const usedCode = new URLSearchParams(first.query).get('code')!;

      const fresh = await start();
      const query = new URLSearchParams({
        code: usedCode,
        state: fresh.url.searchParams.get('state')!,
        iss: idp.issuer,
      });
      const result = await callback(query.toString(), [fresh.cookie]);
      assert.equal(result.status, 401);
      assert.match(result.body.error.message, /could not be completed.*invalid_grant/);
      assert.equal(sessionCookieOf(result), undefined);
      assert.doesNotMatch(JSON.stringify(result.body), new RegExp(usedCode));
    });

    test('wrong state is rejected', async () => {
      const started = await start();
      const back = await idp.authorize(started.url.href, 'alice-sub');
      back.searchParams.set('state', 'not-the-state-of-this-browser');
      const result = await callback(back.search.slice(1), [started.cookie]);
      assert.equal(result.status, 400);
      assert.match(result.body.error.message, /state parameter does not match/);
      assert.equal(sessionCookieOf(result), undefined);
      assert.ok(
        result.setCookies.some((entry) => /^__Host-dmarcdesk_oidc=;.*Max-Age=0/i.test(entry)),
        'the attempt cookie is cleared on failure too',
      );
    });

    test('state of another browser is rejected', async () => {
      const mine = await start();
      const theirs = await start();
      const back = await idp.authorize(theirs.url.href, 'alice-sub');
      const result = await callback(back.search.slice(1), [mine.cookie]);
      assert.equal(result.status, 400);
      assert.match(result.body.error.message, /state parameter does not match/);
    });

    test('expired state is rejected', async () => {
      const started = await start();
      const back = await idp.authorize(started.url.href, 'alice-sub');
      const expired = await service.app.db.query(
        `UPDATE oidc_sign_in_attempts SET expires_at = now() - interval '1 second'
          WHERE state = $1 RETURNING 1`,
        [started.url.searchParams.get('state')],
      );
      assert.equal(expired.length, 1);
      const result = await callback(back.search.slice(1), [started.cookie]);
      assert.equal(result.status, 400);
      assert.match(result.body.error.message, /expired.*within 10 minutes/);
      assert.equal(sessionCookieOf(result), undefined);
    });

    test('callback without the attempt cookie is rejected', async () => {
      const started = await start();
      const back = await idp.authorize(started.url.href, 'alice-sub');
      const result = await callback(back.search.slice(1), []);
      assert.equal(result.status, 400);
      assert.match(result.body.error.message, /No sign-in was started in this browser/);
    });

    test('provider error is reported', async () => {
      const started = await start();
      const query = new URLSearchParams({
        error: 'access_denied',
        error_description: 'End-User aborted interaction',
        state: started.url.searchParams.get('state')!,
      });
      const result = await callback(query.toString(), [started.cookie]);
      assert.equal(result.status, 401);
      assert.match(
        result.body.error.message,
        /returned the error access_denied \(End-User aborted interaction\)/,
      );
    });

    test('unverified email is rejected', async () => {
      idp.setPerson('unverified-sub', { email: 'alice@contoso.example', email_verified: false });
      const result = await signInAs('unverified-sub');
      assert.equal(result.status, 401);
      assert.match(result.body.error.message, /has not verified the email address alice@contoso/);
      assert.equal(sessionCookieOf(result), undefined);
    });

    test('email in a domain not allowed is rejected', async () => {
      await createTestUser(service.app, accountId, 'erin@fabrikam.example', 'viewer');
      idp.setPerson('erin-sub', { email: 'erin@fabrikam.example', email_verified: true });
      const result = await signInAs('erin-sub');
      assert.equal(result.status, 401);
      assert.match(result.body.error.message, /domain fabrikam\.example may not sign in/);
      assert.equal(sessionCookieOf(result), undefined);
    });

    test('unknown user is rejected with provisioning off', async () => {
      idp.setPerson('dave-sub', { email: 'dave@contoso.example', email_verified: true });
      const result = await signInAs('dave-sub');
      assert.equal(result.status, 401);
      assert.match(result.body.error.message, /No user with the email address dave@contoso/);
      const rows = await service.app.db.query('SELECT 1 FROM users WHERE email = $1', [
        'dave@contoso.example',
      ]);
      assert.equal(rows.length, 0);
    });

    test('provisioning creates the user with the configured role', async () => {
      await configure({ provisionUsers: true, provisionRoleId: 'mssp_analyst' });
      try {
        idp.setPerson('frank-sub', {
          email: 'Frank@Contoso.example',
          email_verified: true,
          name: 'Frank Example',
        });
        const result = await signInAs('frank-sub');
        assert.equal(result.status, 303, JSON.stringify(result.body));
        assert.equal((await sessionUser(sessionCookieOf(result)!)).email, 'frank@contoso.example');

        const [row] = await service.app.db.query<{
          id: string;
          account_id: string;
          built_in_role: string;
          display_name: string;
          password_hash: string | null;
          oidc_subject: string;
        }>('SELECT * FROM users WHERE email = $1', ['frank@contoso.example']);
        assert.equal(row?.account_id, accountId);
        assert.equal(row?.built_in_role, 'mssp_analyst');
        assert.equal(row?.display_name, 'Frank Example');
        assert.equal(row?.password_hash, null);
        assert.equal(row?.oidc_subject, 'frank-sub');

        const audit = await owner('GET', '/audit-log?action=user.created');
        const entry = audit.body.entries.find((item: any) => item.targetId === row?.id);
        assert.equal(entry?.actor.type, 'system');
        assert.equal(entry?.after.source, 'oidc_sign_in');
      } finally {
        await configure({ provisionUsers: false });
      }
    });

    test('linked user is matched by subject after an email change', async () => {
      // The new address belongs to another user; matching by email would pick that user.
      await createTestUser(service.app, accountId, 'alice.new@contoso.example', 'viewer');
      idp.setPerson('alice-sub', { email: 'alice.new@contoso.example', email_verified: true });
      try {
        const result = await signInAs('alice-sub');
        assert.equal(result.status, 303, JSON.stringify(result.body));
        assert.equal((await sessionUser(sessionCookieOf(result)!)).email, 'alice@contoso.example');
      } finally {
        idp.setPerson('alice-sub', { email: 'alice@contoso.example', email_verified: true });
      }
    });

    test('other subject with a linked email is rejected', async () => {
      idp.setPerson('mallory-sub', { email: 'alice@contoso.example', email_verified: true });
      const result = await signInAs('mallory-sub');
      assert.equal(result.status, 401);
      assert.match(result.body.error.message, /linked to another identity at this provider/);
      assert.equal(sessionCookieOf(result), undefined);
    });

    test('removing the link lets the next sign-in link again', async () => {
      idp.setPerson('grace-old', { email: 'grace@contoso.example', email_verified: true });
      idp.setPerson('grace-new', { email: 'grace@contoso.example', email_verified: true });
      const grace = (
        await createTestUser(service.app, accountId, 'grace@contoso.example', 'viewer')
      ).user;
      assert.equal((await signInAs('grace-old')).status, 303);
      assert.equal((await signInAs('grace-new')).status, 401);

      const unlink = await owner('DELETE', `/users/${grace.id}/oidc-link`);
      assert.equal(unlink.status, 204);
      const relinked = await signInAs('grace-new');
      assert.equal(relinked.status, 303, JSON.stringify(relinked.body));
      assert.equal((await sessionUser(sessionCookieOf(relinked)!)).email, 'grace@contoso.example');
      assert.equal((await signInAs('grace-old')).status, 401);

      const audit = await owner('GET', '/audit-log?action=user.oidc_unlinked');
      const entry = audit.body.entries.find((item: any) => item.targetId === grace.id);
      assert.deepEqual(entry?.before, { issuer: idp.issuer, subject: 'grace-old' });
    });

    test('disabled user is rejected', async () => {
      const henry = (
        await createTestUser(service.app, accountId, 'henry@contoso.example', 'viewer')
      ).user;
      idp.setPerson('henry-sub', { email: 'henry@contoso.example', email_verified: true });
      assert.equal((await signInAs('henry-sub')).status, 303);
      const disabled = await owner('PATCH', `/users/${henry.id}`, { disabled: true });
      assert.equal(disabled.status, 200);

      const result = await signInAs('henry-sub');
      assert.equal(result.status, 401);
      assert.match(result.body.error.message, /henry@contoso\.example is disabled/);
      assert.equal(await sessionCount(henry.id), 0);
    });

    test('user of another account is never signed in', async () => {
      const [carol] = await service.app.db.query<{ id: string }>(
        'SELECT id FROM users WHERE email = $1',
        ['carol@contoso.example'],
      );
      const refused = await signInAs('carol-sub');
      assert.equal(refused.status, 401);
      assert.match(refused.body.error.message, /No user with the email address carol@contoso/);

      await configure({ provisionUsers: true });
      try {
        const notCreated = await signInAs('carol-sub');
        assert.equal(notCreated.status, 401);
        assert.match(notCreated.body.error.message, /belongs to a user of another MSSP account/);
      } finally {
        await configure({ provisionUsers: false });
      }
      assert.equal(await sessionCount(carol!.id), 0);
      const inThisAccount = await service.app.db.query(
        'SELECT 1 FROM users WHERE account_id = $1 AND email = $2',
        [accountId, 'carol@contoso.example'],
      );
      assert.equal(inThisAccount.length, 0);
      const [carolRow] = await service.app.db.query<{ oidc_subject: string | null }>(
        'SELECT oidc_subject FROM users WHERE id = $1',
        [carol!.id],
      );
      assert.equal(carolRow?.oidc_subject, null);
    });

    test('email served only by UserInfo is used', async () => {
      const userInfoOnly = await startTestIdentityProvider({
        redirectUri: REDIRECT_URI,
        emailInIdToken: false,
      });
      // The service allows only the main provider's host:port, so this provider gets a second
      // service, on a database of its own, that allows it.
      const secondDatabase = await openTestDatabase(engine);
      const second = await startService(secondDatabase, {
        environment: {
          DMARCDESK_OIDC_ALLOWED_HOSTS: userInfoOnly.hostPort,
        },
      });
      try {
        const account = await createTestAccount(second.app, 'UserInfo MSP');
        await createTestUser(second.app, account.accountId, 'ivan@userinfo.example', 'viewer');
        userInfoOnly.setPerson('ivan-sub', {
          email: 'ivan@userinfo.example',
          email_verified: true,
        });
        const put = await apiClient(second.url, account.token)('PUT', '/auth/oidc/provider', {
          issuer: userInfoOnly.issuer,
          clientId: userInfoOnly.clientId,
          clientSecret: userInfoOnly.clientSecret,
          allowedDomains: ['userinfo.example'],
        });
        assert.equal(put.status, 200, JSON.stringify(put.body));

        const started = await fetch(`${second.url}/api/v1/auth/oidc/${account.accountId}/start`, {
          redirect: 'manual',
        });
        const cookie = started.headers.getSetCookie()[0]!.split(';')[0]!;
        const back = await userInfoOnly.authorize(started.headers.get('location')!, 'ivan-sub');
        const result = await fetch(`${second.url}/api/v1/auth/oidc/callback${back.search}`, {
          redirect: 'manual',
          headers: { cookie },
        });
        assert.equal(result.status, 303, await result.text());
      } finally {
        await second.stop();
        await secondDatabase.drop();
        await userInfoOnly.stop();
      }
    });

    test('client secret appears in no response or log', async () => {
      const view = await owner('GET', '/auth/oidc/provider');
      assert.equal(view.status, 200);
      seen.push(JSON.stringify(view.body));
      assert.equal('clientSecret' in view.body, false);
      const audit = await owner('GET', '/audit-log?action=oidc_provider.updated');
      seen.push(JSON.stringify(audit.body));
      assert.ok(audit.body.entries.length > 0);

      assert.ok(seen.length > 40, `only ${seen.length} responses were recorded`);
      assert.ok(logLines.length > 0, 'the service logged nothing');
      const leaks = [...seen, ...logLines].filter((text) => text.includes(idp.clientSecret));
      assert.deepEqual(leaks, []);

      const [stored] = await service.app.db.query<{ client_secret_encrypted: Uint8Array }>(
        'SELECT client_secret_encrypted FROM oidc_providers WHERE account_id = $1',
        [accountId],
      );
      assert.equal(Buffer.from(stored!.client_secret_encrypted).includes(idp.clientSecret), false);
    });
  });
}
