import { useEffect, useState, type ReactNode } from 'react';
import { AlertPage } from './alerts/AlertPage.tsx';
import { messageOf } from './api.ts';
import { Notice } from './components/Notice.tsx';
import { Progress } from './components/Progress.tsx';
import { HaloPsaWizard } from './halopsa/Wizard.tsx';
import { HomePage } from './pages/HomePage.tsx';
import { IntegrationsPage } from './pages/IntegrationsPage.tsx';
import { NotFoundPage } from './pages/NotFoundPage.tsx';
import { SignInPage } from './pages/SignInPage.tsx';
import { Link, navigate, useLocation } from './router.tsx';
import { useSession, useSignedIn } from './session.tsx';

/** Pick the page for the current path, behind sign-in. */
export function App() {
  const { state } = useSession();
  const { path, query } = useLocation();

  const signedOut = state.status === 'signed-out';
  useEffect(() => {
    if (signedOut && path !== '/sign-in') {
      const next = `${window.location.pathname}${window.location.search}`;
      navigate(`/sign-in?next=${encodeURIComponent(next)}`, { replace: true });
    }
    if (state.status === 'signed-in' && path === '/sign-in') {
      const next = query.get('next');
      // Only a path of this site, never another origin such as //example.com.
      navigate(next && /^\/(?!\/)/.test(next) ? next : '/', { replace: true });
    }
  }, [signedOut, state.status, path, query]);

  if (state.status === 'loading') {
    return (
      <main className="page page--centred" id="main">
        <Progress label="Loading dmarcdesk…" />
      </main>
    );
  }
  if (state.status === 'signed-out') return <SignInPage notice={state.notice} />;
  if (path === '/sign-in') return null;

  return <Layout>{pageFor(path)}</Layout>;
}

function pageFor(path: string): ReactNode {
  if (path === '/') return <HomePage />;
  if (path === '/integrations') return <IntegrationsPage />;
  if (path === '/integrations/halopsa' || path.startsWith('/integrations/halopsa/')) {
    return <HaloPsaWizard />;
  }
  const alert = /^\/alerts\/([^/]+)$/.exec(path);
  if (alert) return <AlertPage key={alert[1]} alertId={alert[1]!} />;
  return <NotFoundPage />;
}

function Layout({ children }: { children: ReactNode }) {
  const { session, halo } = useSignedIn();
  const { signOut } = useSession();
  const { path } = useLocation();
  const [signOutError, setSignOutError] = useState<string | null>(null);
  const current = (prefix: string) =>
    path === prefix || path.startsWith(`${prefix}/`) ? ('page' as const) : undefined;

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="masthead">
        <Link to="/" className="masthead__brand">
          dmarcdesk
        </Link>
        <nav aria-label="Main" className="masthead__nav">
          <ul>
            <li>
              <Link to="/" aria-current={path === '/' ? 'page' : undefined}>
                Home
              </Link>
            </li>
            {halo.allowed ? (
              <li>
                <Link to="/integrations" aria-current={current('/integrations')}>
                  Integrations
                </Link>
              </li>
            ) : null}
          </ul>
        </nav>
        <div className="masthead__user">
          <span>{session.user?.displayName ?? 'API token'}</span>
          <button
            type="button"
            className="button button--quiet"
            onClick={() => {
              setSignOutError(null);
              signOut().catch((error: unknown) => setSignOutError(messageOf(error)));
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className="page" id="main" tabIndex={-1}>
        {signOutError ? <Notice kind="error">{signOutError}</Notice> : null}
        {children}
      </main>
    </>
  );
}
