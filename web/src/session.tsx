// The signed-in user, their permissions and account, and whether they may use the HaloPSA
// integration. Every page reads this through useSession().
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import type {
  AccountView,
  SessionResponse,
  SignInRequest,
  SignInResponse,
} from '../../src/contract/platform.ts';
import { api, ApiError, onSessionEnded, setCsrfToken } from './api.ts';

/** Access to the HaloPSA integration, with the reason when it is hidden. */
export type HaloAccess =
  { allowed: true } | { allowed: false; reason: 'permission' | 'disabled' | 'unknown' };

export type SessionState =
  | { status: 'loading' }
  | { status: 'signed-out'; notice: string | null }
  | {
      status: 'signed-in';
      session: SessionResponse;
      account: AccountView | null;
      halo: HaloAccess;
    };

interface SessionContextValue {
  state: SessionState;
  signIn(input: SignInRequest): Promise<void>;
  signOut(): Promise<void>;
  /** Read the session again, after a change of role or account settings. */
  refresh(): Promise<void>;
}

const SessionContext = createContext<SessionContextValue | null>(null);

async function haloAccessOf(
  session: SessionResponse,
  account: AccountView | null,
): Promise<HaloAccess> {
  if (!session.permissions.includes('halopsa.access')) {
    return { allowed: false, reason: 'permission' };
  }
  if (account) {
    return account.halopsaIntegrationEnabled
      ? { allowed: true }
      : { allowed: false, reason: 'disabled' };
  }
  // Without account.read the account setting is unknown, so ask an integration route.
  try {
    await api.get('/integrations/halopsa/connection');
    return { allowed: true };
  } catch (error) {
    if (error instanceof ApiError && error.code === 'integration_disabled') {
      return { allowed: false, reason: 'disabled' };
    }
    return { allowed: false, reason: 'unknown' };
  }
}

async function loadSession(): Promise<SessionState> {
  let session: SessionResponse;
  try {
    session = await api.get<SessionResponse>('/auth/session');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      return { status: 'signed-out', notice: null };
    }
    throw error;
  }
  setCsrfToken(session.csrfToken);
  const account = session.permissions.includes('account.read')
    ? await api.get<AccountView>('/account')
    : null;
  return { status: 'signed-in', session, account, halo: await haloAccessOf(session, account) };
}

/** Provide the session to the app, loading it once at start. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<SessionState>({ status: 'loading' });
  const [loadError, setLoadError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      setState(await loadSession());
      setLoadError(null);
    } catch (error) {
      setLoadError(error instanceof Error ? error.message : String(error));
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  // NOTE: a session that ends mid-edit replaces the page with the sign-in form, so edits not yet
  // saved are lost; the leave guard only covers reloads and navigation inside the app.
  useEffect(
    () =>
      onSessionEnded(() => {
        setCsrfToken(null);
        setState((current) =>
          current.status === 'signed-in'
            ? { status: 'signed-out', notice: 'Your session has ended. Sign in again.' }
            : current,
        );
      }),
    [],
  );

  const signIn = useCallback(async (input: SignInRequest) => {
    const response = await api.post<SignInResponse>('/auth/sign-in', input);
    setCsrfToken(response.csrfToken);
    setState(await loadSession());
  }, []);

  const signOut = useCallback(async () => {
    try {
      await api.post('/auth/sign-out');
    } catch (error) {
      // A session that already ended needs no sign-out; anything else is shown to the user.
      if (!(error instanceof ApiError && error.status === 401)) throw error;
    }
    setCsrfToken(null);
    setState({ status: 'signed-out', notice: 'You have signed out.' });
  }, []);

  if (loadError) {
    return (
      <main className="page page--centred" id="main">
        <h1>dmarcdesk is not available</h1>
        <p role="alert">{loadError}</p>
        <button type="button" className="button" onClick={() => void refresh()}>
          Try again
        </button>
      </main>
    );
  }

  return (
    <SessionContext.Provider value={{ state, signIn, signOut, refresh }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession() needs a SessionProvider above it.');
  return value;
}

/** Return the signed-in session; only for components rendered after sign-in. */
export function useSignedIn(): Extract<SessionState, { status: 'signed-in' }> {
  const { state } = useSession();
  if (state.status !== 'signed-in') throw new Error('useSignedIn() needs a signed-in session.');
  return state;
}
