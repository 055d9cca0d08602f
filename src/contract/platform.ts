// Response shapes of the sign-in, session, account and customer routes that the web app reads.
// `Time` is Date on the server and an ISO 8601 string in the browser, as in ./halopsa.ts.
// NOTE: the auth and platform routes do not import these types yet; the type checks in
// test/browser/contract-conformance.ts tie them to the service types instead.

/** The error body of every failed API call. */
export interface ApiErrorBody {
  error: {
    code: string;
    /** A sentence that says what was wrong, on which value, and what to do. */
    message: string;
    /** The request field the error is about, as a dotted path such as `mappings.0.haloClientId`. */
    field?: string;
    details?: Record<string, unknown>;
  };
}

export interface SignInRequest {
  email: string;
  password: string;
}

export interface RoleView {
  id: string;
  name: string;
  builtIn: boolean;
  permissions: string[];
}

export interface UserView<Time = string> {
  id: string;
  accountId: string;
  email: string;
  displayName: string;
  role: RoleView;
  hasPassword: boolean;
  disabled: boolean;
  createdAt: Time;
}

/** Response of POST /auth/sign-in. The session itself travels in an HttpOnly cookie. */
export interface SignInResponse<Time = string> {
  user: UserView<Time>;
  /** Sent back in the X-CSRF-Token header of every request that changes something. */
  csrfToken: string;
  expiresAt: Time;
}

/** Response of GET /auth/session. */
export interface SessionResponse<Time = string> {
  kind: 'user' | 'api_token';
  accountId: string;
  user: UserView<Time> | null;
  permissions: string[];
  csrfToken: string | null;
}

/** Response of GET /account. */
export interface AccountView<Time = string> {
  id: string;
  name: string;
  halopsaIntegrationEnabled: boolean;
  createdAt: Time;
}

export interface CustomerView<Time = string> {
  id: string;
  accountId: string;
  name: string;
  createdAt: Time;
  domainCount: number;
  billableDomainCount: number;
}

export interface CustomersResponse<Time = string> {
  customers: CustomerView<Time>[];
}

export interface DomainView<Time = string> {
  id: string;
  accountId: string;
  customerId: string;
  name: string;
  /** Only `active` domains are billable. */
  status: 'active' | 'pending' | 'paused';
  billable: boolean;
  createdAt: Time;
  updatedAt: Time;
}

export interface DomainsResponse<Time = string> {
  domains: DomainView<Time>[];
}

export interface DomainGroupView {
  id: string;
  accountId: string;
  customerId: string;
  name: string;
  domainIds: string[];
}

export interface DomainGroupsResponse {
  groups: DomainGroupView[];
}
