import type { App } from '../../src/app.ts';
import { createUser } from '../../src/auth/users.ts';

export interface SignedIn {
  cookie: string;
  csrfToken: string;
  setCookie: string;
}

/** Sign in through the API and return the session cookie and CSRF token. */
export async function signIn(baseUrl: string, email: string, password: string): Promise<SignedIn> {
  const response = await fetch(`${baseUrl}/api/v1/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (response.status !== 200)
    throw new Error(`sign-in as ${email} failed with ${response.status}: ${await response.text()}`);
  const setCookie = response.headers.get('set-cookie') ?? '';
  const body = (await response.json()) as { csrfToken: string };
  return { cookie: setCookie.split(';')[0]!, csrfToken: body.csrfToken, setCookie };
}

/** Create a user with a password in an account, for tests that sign in. */
export async function createTestUser(
  app: App,
  accountId: string,
  email: string,
  roleId: string,
  password = 'correct horse battery staple',
) {
  const user = await createUser(app.db, accountId, {
    email,
    displayName: email.split('@')[0]!,
    password,
    roleId,
  });
  return { user, password };
}

/** A fetch wrapper that sends the session cookie and, unless told not to, the CSRF token. */
export function sessionClient(baseUrl: string, session: { cookie: string; csrfToken: string }) {
  return async function call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    options: { csrf?: boolean; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { cookie: session.cookie, ...options.headers };
    if (options.csrf !== false) headers['x-csrf-token'] = session.csrfToken;
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${baseUrl}/api/v1${path}`, init);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  };
}
