import { PageHeading } from '../components/PageHeading.tsx';
import { Link, useLocation } from '../router.tsx';

export function NotFoundPage() {
  const { path } = useLocation();
  return (
    <>
      <PageHeading>Page not found</PageHeading>
      <p>dmarcdesk has no page at {path}.</p>
      <p>
        <Link to="/">Go to the start page</Link>
      </p>
    </>
  );
}
