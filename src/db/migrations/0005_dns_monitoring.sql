-- Scheduled DNS monitoring: the check interval of each MSSP account, the DKIM selectors checked
-- per domain, when each domain is checked next, every observation of a record, and the state of
-- each record (its current observation and a change that waits for a second lookup).

-- One row per account that changed the interval; accounts without a row use the default.
CREATE TABLE dns_monitor_settings (
  account_id uuid PRIMARY KEY REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  check_interval_minutes integer NOT NULL CHECK (check_interval_minutes BETWEEN 15 AND 10080),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dns_dkim_selectors (
  account_id uuid NOT NULL,
  domain_id uuid NOT NULL,
  selector text NOT NULL CHECK (selector = lower(selector) AND length(selector) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, domain_id) REFERENCES domains (account_id, id) ON DELETE CASCADE,
  PRIMARY KEY (domain_id, selector)
);

-- When each domain is checked next. The sweep adds a row for every domain it has not seen and
-- claims due rows with FOR UPDATE SKIP LOCKED, so processes that sweep together never queue
-- the same domain twice.
CREATE TABLE dns_check_schedule (
  domain_id uuid PRIMARY KEY,
  account_id uuid NOT NULL,
  next_check_at timestamptz NOT NULL,
  -- confirmation: a record changed and the next check is its second lookup.
  next_check_reason text NOT NULL DEFAULT 'scheduled'
    CHECK (next_check_reason IN ('scheduled', 'confirmation')),
  last_checked_at timestamptz,
  FOREIGN KEY (account_id, domain_id) REFERENCES domains (account_id, id) ON DELETE CASCADE
);
CREATE INDEX dns_check_schedule_due_idx ON dns_check_schedule (next_check_at);

-- Every lookup of every record, kept as history: the TXT strings as received, the normalised
-- text, the parsed meaning, the resolver's outcome and the findings.
CREATE TABLE dns_observations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL,
  domain_id uuid NOT NULL,
  -- The observations made by one check of a domain share this id.
  check_id uuid NOT NULL,
  record_kind text NOT NULL CHECK (record_kind IN ('dmarc', 'spf', 'dkim')),
  name text NOT NULL,
  selector text,
  observed_at timestamptz NOT NULL,
  trigger text NOT NULL CHECK (trigger IN ('scheduled', 'confirmation', 'manual')),
  lookup_status text NOT NULL,
  lookup_problem boolean NOT NULL,
  lookup jsonb NOT NULL,
  raw jsonb NOT NULL,
  normalised jsonb NOT NULL,
  -- Null when the lookup failed, because such an observation tells nothing about the record.
  meaning jsonb,
  meaning_hash text,
  findings jsonb NOT NULL,
  summary text NOT NULL,
  -- What the monitor concluded from this observation (see src/dns/monitor-decision.ts).
  outcome text NOT NULL CHECK (outcome IN ('baseline', 'unchanged', 'change_pending',
    'change_confirmed', 'change_reverted', 'lookup_problem')),
  change_kind text,
  -- The comparison with the record's current observation, when there was one.
  comparison jsonb,
  FOREIGN KEY (account_id, domain_id) REFERENCES domains (account_id, id) ON DELETE CASCADE,
  CHECK ((selector IS NULL) = (record_kind <> 'dkim')),
  CHECK (lookup_problem = (meaning IS NULL))
);
CREATE INDEX dns_observations_record_idx
  ON dns_observations (domain_id, record_kind, name, observed_at DESC);
CREATE INDEX dns_observations_domain_idx ON dns_observations (domain_id, observed_at DESC);

CREATE TABLE dns_record_states (
  account_id uuid NOT NULL,
  domain_id uuid NOT NULL,
  record_kind text NOT NULL CHECK (record_kind IN ('dmarc', 'spf', 'dkim')),
  name text NOT NULL,
  selector text,
  -- The last observation taken as the record's state; changes are compared against it.
  current_observation_id uuid REFERENCES dns_observations (id) ON DELETE SET NULL,
  -- An observation that differs from the current one in meaning and waits for a second lookup.
  pending_observation_id uuid REFERENCES dns_observations (id) ON DELETE SET NULL,
  last_observation_id uuid REFERENCES dns_observations (id) ON DELETE SET NULL,
  -- Failed lookups in a row; reset by the next lookup that gets an answer.
  consecutive_problems integer NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, domain_id) REFERENCES domains (account_id, id) ON DELETE CASCADE,
  PRIMARY KEY (domain_id, record_kind, name)
);
