import { PageHeading } from '../components/PageHeading.tsx';
import { Link } from '../router.tsx';
import { useSignedIn } from '../session.tsx';

/** Render the start page after sign-in: who is signed in, and what they can open. */
export function HomePage() {
  const { session, account, halo } = useSignedIn();
  return (
    <>
      <PageHeading>Welcome{session.user ? `, ${session.user.displayName}` : ''}</PageHeading>
      <p>
        {account ? `You are signed in to ${account.name}` : 'You are signed in'}
        {session.user ? ` as ${session.user.role.name}.` : '.'}
      </p>
      {halo.allowed ? (
        <p>
          Connect HaloPSA, map your customers and choose which alerts become tickets under{' '}
          <Link to="/integrations/halopsa">Integrations, HaloPSA</Link>.
        </p>
      ) : (
        <p>
          Your role has no pages in the web interface yet. The REST API and the command line offer
          everything your role allows.
        </p>
      )}
    </>
  );
}
