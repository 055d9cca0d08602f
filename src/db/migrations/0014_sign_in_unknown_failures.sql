-- Failed sign-ins for email addresses that have no user who may sign in with a password (none
-- at all, a disabled user, or one without a password). They lock like a user's own count, so
-- that a lockout answer does not tell which addresses have accounts. Rows are deleted once
-- their lockout window has passed.
CREATE TABLE sign_in_unknown_failures (
  email text PRIMARY KEY,
  failed_sign_ins integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_unknown_failures_updated_idx ON sign_in_unknown_failures (updated_at);
