import type { HaloAccess } from '../session.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { Link } from '../router.tsx';

const REASONS: Record<Exclude<HaloAccess, { allowed: true }>['reason'], string> = {
  permission:
    'Your role does not hold the permission "Access HaloPSA Integration". An MSSP Owner can give it to your role, or move you to the MSSP Admin role.',
  disabled:
    'The HaloPSA Integration setting is off for this MSSP account. An MSSP Owner can turn it on in the account settings.',
  unknown:
    'dmarcdesk could not check whether you may use the HaloPSA integration. Reload the page to try again.',
};

/** Render the page shown instead of the HaloPSA integration to users who may not use it. */
export function NoAccess({ access }: { access: Exclude<HaloAccess, { allowed: true }> }) {
  return (
    <>
      <PageHeading>No access to the HaloPSA integration</PageHeading>
      <p>{REASONS[access.reason]}</p>
      <p>
        <Link to="/">Back to the start page</Link>
      </p>
    </>
  );
}
