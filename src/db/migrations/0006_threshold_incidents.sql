-- Threshold rules over rolling windows and domain groups, and incidents: the alerts that share
-- a fingerprint (account, customer, domain or group, alert kind, rule) while the condition
-- lasts, with one HaloPSA ticket and the notes added to it.

-- A rule belongs to one domain or one domain group. It fires on a count, a rate or both.
-- A rule without window_hours judges each aggregate report alone, as rules did before.
ALTER TABLE threshold_rules
  ALTER COLUMN domain_id DROP NOT NULL,
  ALTER COLUMN max_failed_messages DROP NOT NULL,
  ADD COLUMN group_id uuid,
  -- Percentage of messages failing DMARC, 0 to 100, judged only from min_messages messages up.
  ADD COLUMN max_failure_percent numeric(5, 2)
    CHECK (max_failure_percent >= 0 AND max_failure_percent <= 100),
  ADD COLUMN min_messages integer NOT NULL DEFAULT 0 CHECK (min_messages >= 0),
  ADD COLUMN window_hours integer CHECK (window_hours BETWEEN 1 AND 2160),
  -- Report time the condition must stay clear before its incident resolves; null uses the
  -- window (or 24 hours for a rule without one).
  ADD COLUMN clear_after_hours integer CHECK (clear_after_hours BETWEEN 1 AND 2160),
  ADD CONSTRAINT threshold_rules_group_fkey FOREIGN KEY (account_id, group_id)
    REFERENCES domain_groups (account_id, id) ON DELETE CASCADE,
  ADD CONSTRAINT threshold_rules_subject_check CHECK ((domain_id IS NULL) <> (group_id IS NULL)),
  ADD CONSTRAINT threshold_rules_limit_check
    CHECK (max_failed_messages IS NOT NULL OR max_failure_percent IS NOT NULL),
  ADD CONSTRAINT threshold_rules_group_window_check
    CHECK (group_id IS NULL OR window_hours IS NOT NULL);
CREATE UNIQUE INDEX threshold_rules_group_key ON threshold_rules (group_id)
  WHERE group_id IS NOT NULL;

-- Windows are found by the period end of a domain's reports.
CREATE INDEX aggregate_reports_domain_end_idx ON aggregate_reports (domain_id, period_end);

CREATE TABLE alert_incidents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  fingerprint text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('dns', 'threshold', 'forensic')),
  domain_id uuid REFERENCES domains (id) ON DELETE SET NULL,
  group_id uuid REFERENCES domain_groups (id) ON DELETE SET NULL,
  -- The domain's or the group's name when the incident opened.
  subject_name text NOT NULL,
  -- The threshold rule, kept as a plain id so that history outlives a deleted rule.
  rule_id uuid,
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  -- observed: resolved when clear observations (report time) cover clear_after_seconds past
  -- the last firing; idle: resolved when nothing fired for clear_after_seconds of wall time.
  clear_mode text NOT NULL CHECK (clear_mode IN ('observed', 'idle')),
  clear_after_seconds integer NOT NULL CHECK (clear_after_seconds > 0),
  opened_at timestamptz NOT NULL DEFAULT now(),
  last_fired_at timestamptz NOT NULL DEFAULT now(),
  firing_count integer NOT NULL DEFAULT 1,
  reopen_count integer NOT NULL DEFAULT 0,
  -- The time each observation is about (a window's end for thresholds), not when it was made.
  last_firing_observed_at timestamptz NOT NULL,
  last_clear_observed_at timestamptz,
  resolved_at timestamptz,
  resolution text,
  -- The alert whose job makes the ticket: the first one, unless it was not routed.
  ticket_alert_id uuid,
  -- not_routed: no ticket rule covered it; pending: a ticket job is queued; created; failed.
  ticket_status text NOT NULL DEFAULT 'not_routed'
    CHECK (ticket_status IN ('not_routed', 'pending', 'created', 'failed')),
  halopsa_ticket_id integer,
  -- When the ticket was made or a note was last sent: notes keep a minimum interval from it.
  last_note_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- At most one open incident per fingerprint; resolved ones stay as history.
CREATE UNIQUE INDEX alert_incidents_open_key ON alert_incidents (account_id, fingerprint)
  WHERE status = 'open';
CREATE INDEX alert_incidents_fingerprint_idx
  ON alert_incidents (account_id, fingerprint, opened_at DESC);
CREATE INDEX alert_incidents_account_idx ON alert_incidents (account_id, opened_at DESC);

-- Notes added to an incident's HaloPSA ticket: one per batch of firings, and the closing note.
CREATE TABLE alert_incident_notes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  incident_id uuid NOT NULL REFERENCES alert_incidents (id) ON DELETE CASCADE,
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('firing', 'closing')),
  status text NOT NULL CHECK (status IN ('sent', 'failed')),
  alert_ids uuid[] NOT NULL DEFAULT '{}',
  halopsa_ticket_id integer NOT NULL,
  halopsa_action_id integer,
  outcome_id integer NOT NULL,
  error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_incident_notes_incident_idx ON alert_incident_notes (incident_id, created_at);

-- An alert is one firing. Its fingerprint names the condition and is shared by the firings of
-- one incident; dedupe_key names the firing, so the same firing is stored once.
ALTER TABLE alerts
  ADD COLUMN group_id uuid REFERENCES domain_groups (id) ON DELETE SET NULL,
  ADD COLUMN incident_id uuid REFERENCES alert_incidents (id) ON DELETE SET NULL,
  ADD COLUMN dedupe_key text;
-- Fingerprints were unique per firing until now, so they serve as the old rows' dedupe keys.
UPDATE alerts SET dedupe_key = fingerprint;
ALTER TABLE alerts
  ALTER COLUMN dedupe_key SET NOT NULL,
  DROP CONSTRAINT alerts_account_id_fingerprint_key,
  ADD CONSTRAINT alerts_account_dedupe_key UNIQUE (account_id, dedupe_key),
  -- held: a firing of an open incident that waits for the next note (the minimum interval
  -- between notes has not passed); noted: a note on the incident's ticket covered it.
  DROP CONSTRAINT alerts_ticket_status_check,
  ADD CONSTRAINT alerts_ticket_status_check CHECK (ticket_status IN
    ('not_routed', 'pending', 'created', 'failed', 'held', 'noted'));
CREATE INDEX alerts_incident_idx ON alerts (incident_id, created_at);

-- The outcome the connection check last verified for notes, and what it found.
ALTER TABLE halopsa_connections
  ADD COLUMN note_outcome_id integer,
  ADD COLUMN note_outcome_status text NOT NULL DEFAULT 'unverified'
    CHECK (note_outcome_status IN ('verified', 'unverified')),
  ADD COLUMN note_outcome_detail text;
