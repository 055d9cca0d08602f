-- The first schema: MSSP accounts and their API tokens, customers, domains and domain groups,
-- aggregate reports, threshold rules and alerts, and the HaloPSA integration.

CREATE TABLE mssp_accounts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  halopsa_integration_enabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  name text NOT NULL,
  -- SHA-256 of the token; the token itself is shown once and never stored.
  token_hash text NOT NULL UNIQUE,
  token_prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE TABLE customers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, id)
);
CREATE UNIQUE INDEX customers_account_name_key ON customers (account_id, lower(name));

CREATE TABLE domains (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL,
  customer_id uuid NOT NULL,
  name text NOT NULL CHECK (name = lower(name)),
  -- Only 'active' domains are billable and count towards a customer's subscription.
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'pending', 'paused')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, customer_id) REFERENCES customers (account_id, id) ON DELETE CASCADE,
  UNIQUE (account_id, name),
  UNIQUE (account_id, id)
);
CREATE INDEX domains_customer_idx ON domains (customer_id);

CREATE TABLE domain_groups (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL,
  customer_id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, customer_id) REFERENCES customers (account_id, id) ON DELETE CASCADE,
  UNIQUE (account_id, id)
);
CREATE UNIQUE INDEX domain_groups_customer_name_key ON domain_groups (customer_id, lower(name));

CREATE TABLE domain_group_members (
  group_id uuid NOT NULL REFERENCES domain_groups (id) ON DELETE CASCADE,
  domain_id uuid NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, domain_id)
);

CREATE TABLE aggregate_reports (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  -- Null when the report is for a domain that no customer of the account monitors.
  domain_id uuid REFERENCES domains (id) ON DELETE SET NULL,
  policy_domain text NOT NULL,
  org_name text NOT NULL,
  reporter_email text,
  report_id text NOT NULL,
  period_begin timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  schema text NOT NULL,
  policy jsonb NOT NULL,
  message_count integer NOT NULL,
  failed_count integer NOT NULL,
  warnings jsonb NOT NULL DEFAULT '[]',
  content_sha256 text NOT NULL,
  received_via text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, org_name, report_id),
  UNIQUE (account_id, content_sha256)
);
CREATE INDEX aggregate_reports_domain_idx ON aggregate_reports (domain_id, period_begin);
CREATE INDEX aggregate_reports_policy_domain_idx ON aggregate_reports (account_id, policy_domain);

CREATE TABLE aggregate_records (
  id bigserial PRIMARY KEY,
  report_id uuid NOT NULL REFERENCES aggregate_reports (id) ON DELETE CASCADE,
  source_ip text NOT NULL,
  message_count integer NOT NULL,
  disposition text NOT NULL,
  dkim_aligned text NOT NULL,
  spf_aligned text NOT NULL,
  header_from text NOT NULL,
  envelope_from text,
  envelope_to text,
  reasons jsonb NOT NULL DEFAULT '[]',
  dkim_results jsonb NOT NULL DEFAULT '[]',
  spf_results jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX aggregate_records_report_idx ON aggregate_records (report_id);

CREATE TABLE threshold_rules (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL,
  domain_id uuid NOT NULL,
  -- An alert fires when more messages than this fail DMARC in one report's period.
  max_failed_messages integer NOT NULL CHECK (max_failed_messages >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, domain_id) REFERENCES domains (account_id, id) ON DELETE CASCADE,
  UNIQUE (domain_id)
);

CREATE TABLE alerts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  domain_id uuid REFERENCES domains (id) ON DELETE SET NULL,
  domain_name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('dns', 'threshold', 'forensic')),
  -- Identifies the condition, not the wording, so that the same firing is stored once.
  fingerprint text NOT NULL,
  summary text NOT NULL,
  evidence jsonb NOT NULL,
  aggregate_report_id uuid REFERENCES aggregate_reports (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- not_routed: no ticket rule covers it; pending: a ticket job is queued; created; failed.
  ticket_status text NOT NULL DEFAULT 'not_routed'
    CHECK (ticket_status IN ('not_routed', 'pending', 'created', 'failed')),
  halopsa_ticket_id integer,
  ticket_error text,
  UNIQUE (account_id, fingerprint)
);
CREATE INDEX alerts_account_created_idx ON alerts (account_id, created_at DESC);

CREATE TABLE halopsa_connections (
  account_id uuid PRIMARY KEY REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  base_url text NOT NULL,
  client_id text NOT NULL,
  tenant text,
  -- AES-256-GCM: version byte, 12-byte nonce, ciphertext, 16-byte tag; bound to account and URL.
  client_secret_encrypted bytea NOT NULL,
  status text NOT NULL DEFAULT 'healthy' CHECK (status IN ('healthy', 'needs_attention')),
  status_detail text,
  last_checked_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE halopsa_customer_mappings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL,
  customer_id uuid NOT NULL,
  halo_client_id integer NOT NULL,
  halo_client_name text NOT NULL,
  halo_item_id integer NOT NULL,
  halo_item_name text NOT NULL,
  halo_licence_id integer,
  synced_count integer,
  synced_at timestamptz,
  sync_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, customer_id) REFERENCES customers (account_id, id) ON DELETE CASCADE,
  UNIQUE (customer_id)
);
CREATE INDEX halopsa_customer_mappings_account_idx ON halopsa_customer_mappings (account_id);

CREATE TABLE halopsa_ticket_rules (
  customer_id uuid PRIMARY KEY,
  account_id uuid NOT NULL,
  ticket_type_id integer NOT NULL,
  ticket_type_name text NOT NULL,
  site_id integer,
  site_name text,
  user_id integer,
  user_name text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, customer_id) REFERENCES customers (account_id, id) ON DELETE CASCADE,
  CHECK (user_id IS NULL OR site_id IS NOT NULL)
);

CREATE TABLE halopsa_ticket_rule_targets (
  customer_id uuid NOT NULL REFERENCES halopsa_ticket_rules (customer_id) ON DELETE CASCADE,
  alert_kind text NOT NULL CHECK (alert_kind IN ('dns', 'threshold', 'forensic')),
  domain_id uuid REFERENCES domains (id) ON DELETE CASCADE,
  group_id uuid REFERENCES domain_groups (id) ON DELETE CASCADE,
  CHECK ((domain_id IS NULL) <> (group_id IS NULL)),
  CHECK (group_id IS NULL OR alert_kind = 'threshold')
);
CREATE UNIQUE INDEX halopsa_ticket_rule_targets_domain_key
  ON halopsa_ticket_rule_targets (customer_id, alert_kind, domain_id) WHERE domain_id IS NOT NULL;
CREATE UNIQUE INDEX halopsa_ticket_rule_targets_group_key
  ON halopsa_ticket_rule_targets (customer_id, alert_kind, group_id) WHERE group_id IS NOT NULL;

-- What the integration did, per account, for operators and for the account's own history.
CREATE TABLE integration_events (
  id bigserial PRIMARY KEY,
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  customer_id uuid,
  event text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
  message text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integration_events_account_idx ON integration_events (account_id, id DESC);
