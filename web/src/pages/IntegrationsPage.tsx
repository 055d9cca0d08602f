import { PageHeading } from '../components/PageHeading.tsx';
import { Link } from '../router.tsx';
import { useSignedIn } from '../session.tsx';
import { NoAccess } from './NoAccess.tsx';

/** Render the list of integrations, of which HaloPSA is the only one. */
export function IntegrationsPage() {
  const { halo } = useSignedIn();
  if (!halo.allowed) return <NoAccess access={halo} />;
  return (
    <>
      <PageHeading>Integrations</PageHeading>
      <ul className="card-list">
        <li className="card">
          <h2 className="card__title">
            <Link to="/integrations/halopsa">HaloPSA</Link>
          </h2>
          <p>
            Keep one billing subscription per customer in step with its domains, and raise a HaloPSA
            ticket for each alert you choose.
          </p>
        </li>
      </ul>
    </>
  );
}
