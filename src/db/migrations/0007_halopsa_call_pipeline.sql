-- The shared request budget of each HaloPSA instance, keyed by its normalised URL. Every
-- process on this database takes a grant here before calling HaloPSA, under a row lock on the
-- instance row, so that two processes never both take the last slot of the rolling window.
CREATE TABLE halopsa_rate_instances (
  instance_key text PRIMARY KEY,
  -- Set after HaloPSA answered 429: no grant is given before this time.
  paused_until timestamptz
);

CREATE TABLE halopsa_rate_grants (
  id bigserial PRIMARY KEY,
  instance_key text NOT NULL REFERENCES halopsa_rate_instances (instance_key) ON DELETE CASCADE,
  granted_at timestamptz NOT NULL,
  priority text NOT NULL CHECK (priority IN ('urgent', 'standard', 'background'))
);
CREATE INDEX halopsa_rate_grants_instance_idx ON halopsa_rate_grants (instance_key, granted_at);

-- One row per HTTP call to HaloPSA: no header, body, query string or secret.
CREATE TABLE halopsa_call_log (
  id bigserial PRIMARY KEY,
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  customer_id uuid,
  method text NOT NULL,
  path text NOT NULL,
  purpose text NOT NULL CHECK (purpose IN ('token', 'api')),
  -- NULL when no response arrived; error_code then says why.
  status integer,
  error_code text,
  duration_ms integer NOT NULL,
  priority text NOT NULL,
  job_kind text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX halopsa_call_log_account_idx ON halopsa_call_log (account_id, id DESC);
CREATE INDEX halopsa_call_log_created_idx ON halopsa_call_log (created_at);
CREATE INDEX integration_events_created_idx ON integration_events (created_at);
