-- Mappings that no longer work because a HaloPSA record they name is gone or changed. A
-- problem stays open until a later check of the same customer passes; then resolved_at is set.
CREATE TABLE integration_problems (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL,
  customer_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind IN ('client_missing', 'client_inactive', 'client_merged',
                                     'item_missing', 'site_missing', 'user_missing',
                                     'ticket_type_missing', 'ticket_type_field_required')),
  halo_record_type text NOT NULL CHECK (halo_record_type IN ('client', 'item', 'site', 'user',
                                                             'ticket_type')),
  halo_record_id integer NOT NULL,
  -- One sentence of what the operator must do to fix it.
  action text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  opened_at timestamptz NOT NULL DEFAULT now(),
  checked_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  FOREIGN KEY (account_id, customer_id) REFERENCES customers (account_id, id) ON DELETE CASCADE
);
-- At most one open problem of each kind per customer.
CREATE UNIQUE INDEX integration_problems_open_key
  ON integration_problems (customer_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX integration_problems_account_idx ON integration_problems (account_id, resolved_at);

-- Alerts whose ticket waits for the customer's open problems to be resolved. The ticket job
-- is queued again when they are.
CREATE TABLE integration_deferred_tickets (
  alert_id uuid PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
  account_id uuid NOT NULL,
  customer_id uuid NOT NULL,
  deferred_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, customer_id) REFERENCES customers (account_id, id) ON DELETE CASCADE
);
CREATE INDEX integration_deferred_tickets_customer_idx
  ON integration_deferred_tickets (customer_id, deferred_at);
