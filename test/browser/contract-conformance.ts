// Type-level checks, run by `npm run typecheck`: each service type the auth and platform routes
// send must fit the shape that src/contract promises the web app. A renamed or retyped field on
// either side fails the type check here. The integration routes are checked where they are
// declared, because they import their response types from src/contract directly.
import type { MsspAccount } from '../../src/platform/accounts.ts';
import type { Customer } from '../../src/platform/customers.ts';
import type { DomainGroup } from '../../src/platform/domain-groups.ts';
import type { Domain } from '../../src/platform/domains.ts';
import type { User } from '../../src/auth/users.ts';
import type {
  AccountView,
  CustomerView,
  DomainGroupView,
  DomainView,
  UserView,
} from '../../src/contract/platform.ts';
import type { ErrorBody } from '../../src/http/error-boundary.ts';
import type { ApiErrorBody } from '../../src/contract/platform.ts';

/** Compiles only when `Actual` can be sent where `Promised` is expected. */
type Fits<Actual extends Promised, Promised> = [Actual, Promised];

export type ContractConformance = [
  Fits<MsspAccount, AccountView<Date>>,
  Fits<Customer, CustomerView<Date>>,
  Fits<Domain, DomainView<Date>>,
  Fits<DomainGroup, DomainGroupView>,
  Fits<User, UserView<Date>>,
  Fits<ErrorBody, ApiErrorBody>,
  Fits<ApiErrorBody, ErrorBody>,
];
