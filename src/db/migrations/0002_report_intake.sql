-- Failure (forensic) reports, rejected input kept for inspection, and the per-account token of
-- the address that reports are mailed to.

CREATE TABLE failure_reports (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  -- Null when the report is for a domain that no customer of the account monitors.
  domain_id uuid REFERENCES domains (id) ON DELETE SET NULL,
  reported_domain text NOT NULL,
  format text NOT NULL CHECK (format IN ('arf', 'text')),
  feedback_type text NOT NULL,
  reporter text NOT NULL,
  user_agent text,
  -- The Message-ID of the report mail, without angle brackets.
  report_message_id text,
  report_subject text,
  report_date timestamptz,
  -- When the reporter received the original message (Arrival-Date).
  arrival_date timestamptz,
  source_ip text,
  auth_failure jsonb NOT NULL DEFAULT '[]',
  identity_alignment jsonb,
  delivery_result text,
  authentication_results jsonb NOT NULL DEFAULT '[]',
  authentication jsonb NOT NULL,
  original_mail_from text,
  original_rcpt_to jsonb NOT NULL DEFAULT '[]',
  original_envelope_id text,
  -- Details that a ticket does not show: DKIM and SPF DNS fields, URIs, incidents, text facts.
  details jsonb NOT NULL DEFAULT '{}',
  original_content text NOT NULL CHECK (original_content IN ('message', 'headers', 'none')),
  -- From, To, Subject, Date and Message-ID of the original message, decoded.
  original_headers jsonb NOT NULL,
  original_header_text text,
  -- The report mail as received, kept only when DMARCDESK_KEEP_FAILURE_MESSAGES is on.
  raw_message bytea,
  warnings jsonb NOT NULL DEFAULT '[]',
  content_sha256 text NOT NULL,
  received_via text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, content_sha256)
);
CREATE UNIQUE INDEX failure_reports_message_id_key
  ON failure_reports (account_id, report_message_id) WHERE report_message_id IS NOT NULL;
CREATE INDEX failure_reports_account_received_idx ON failure_reports (account_id, received_at DESC);
CREATE INDEX failure_reports_domain_idx ON failure_reports (domain_id, received_at DESC);
CREATE INDEX failure_reports_reported_domain_idx ON failure_reports (account_id, reported_domain);

-- Files and mails that were rejected, with their first bytes, so that an operator can see why.
CREATE TABLE rejected_inputs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Null when the input could not be tied to an account (an IMAP mail for no known address).
  account_id uuid REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  received_via text NOT NULL CHECK (received_via IN ('upload', 'smtp', 'imap', 'folder')),
  -- Where it came from: a file name, an IMAP mailbox and UID, or the SMTP envelope.
  origin text NOT NULL,
  reason_code text NOT NULL,
  reason text NOT NULL,
  size_bytes bigint NOT NULL,
  content bytea NOT NULL,
  content_truncated boolean NOT NULL,
  content_sha256 text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_inputs_account_idx ON rejected_inputs (account_id, received_at DESC);

-- The token in an account's receiving address, such as reports+<token>@reports.example.com.
CREATE TABLE report_receiving_tokens (
  account_id uuid PRIMARY KEY REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  token text NOT NULL UNIQUE CHECK (token ~ '^[a-z0-9]{8,32}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);
