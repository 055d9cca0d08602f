-- Users who sign in, custom roles, database-backed sessions, API token permissions, and the
-- append-only audit log.

CREATE TABLE roles (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  permissions text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, id)
);
CREATE UNIQUE INDEX roles_account_name_key ON roles (account_id, lower(name));

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  email text NOT NULL CHECK (email = lower(email)),
  display_name text NOT NULL,
  -- argon2id PHC string; null for users who sign in only through OpenID Connect.
  password_hash text,
  -- One of the built-in roles by key, or a custom role of the same account.
  built_in_role text CHECK (built_in_role IN ('mssp_owner', 'mssp_admin', 'mssp_analyst', 'viewer')),
  custom_role_id uuid,
  failed_sign_ins integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  disabled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, custom_role_id) REFERENCES roles (account_id, id),
  CHECK ((built_in_role IS NULL) <> (custom_role_id IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE sessions (
  -- SHA-256 of the session token in the cookie; the token itself is never stored.
  id_hash text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- The permissions an API token grants; tokens made before this column get every permission.
ALTER TABLE api_tokens ADD COLUMN permissions text[];
UPDATE api_tokens SET permissions = ARRAY['account.read', 'account.manage', 'users.manage',
  'customers.read', 'customers.write', 'reports.read', 'reports.upload', 'alerts.read',
  'alerts.manage', 'halopsa.access', 'audit.read'];
ALTER TABLE api_tokens ALTER COLUMN permissions SET NOT NULL;

CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  account_id uuid NOT NULL,
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'api_token', 'system')),
  actor_id text,
  action text NOT NULL,
  customer_id uuid,
  target_type text NOT NULL,
  target_id text,
  before jsonb,
  after jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id DESC);
CREATE INDEX audit_log_customer_idx ON audit_log (account_id, customer_id, id DESC);

-- The audit log is append-only: rows can be added, never changed or removed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END
$body$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
