-- OpenID Connect sign-in: one identity provider per MSSP account, the sign-in attempts that
-- are waiting for the provider's answer, and the provider identity each user is linked to.

CREATE TABLE oidc_providers (
  account_id uuid PRIMARY KEY REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  -- The issuer exactly as the provider's discovery document states it.
  issuer text NOT NULL,
  client_id text NOT NULL,
  -- AES-256-GCM under the service secret key; the associated data binds it to the account and
  -- the issuer, so a copy in another row does not decrypt.
  client_secret_encrypted bytea NOT NULL,
  -- Lower-case domains; only verified email addresses in them may sign in.
  allowed_domains text[] NOT NULL CHECK (cardinality(allowed_domains) > 0),
  -- Whether a person with no user in the account gets one on first sign-in.
  provision_users boolean NOT NULL DEFAULT false,
  -- The role of those users: a built-in role key or the id of a custom role of the account.
  provision_role_id text NOT NULL DEFAULT 'viewer',
  -- Whether the role was chosen by a caller holding every permission; only then may it
  -- grant more than the Viewer role does.
  provision_role_set_by_owner boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per sign-in that was started and has not come back yet. The browser holds a random
-- id in a short-lived cookie; only its SHA-256 is stored. A row is deleted when it is used.
CREATE TABLE oidc_sign_in_attempts (
  id_hash text PRIMARY KEY,
  account_id uuid NOT NULL REFERENCES mssp_accounts (id) ON DELETE CASCADE,
  issuer text NOT NULL,
  state text NOT NULL,
  nonce text NOT NULL,
  code_verifier text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_sign_in_attempts_expiry_idx ON oidc_sign_in_attempts (expires_at);

-- The provider identity (issuer and subject) a user signed in with. Once set, sign-in matches
-- the user by it rather than by email address.
ALTER TABLE users ADD COLUMN oidc_issuer text;
ALTER TABLE users ADD COLUMN oidc_subject text;
ALTER TABLE users ADD CONSTRAINT users_oidc_link_check
  CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));
CREATE UNIQUE INDEX users_oidc_identity_key ON users (account_id, oidc_issuer, oidc_subject)
  WHERE oidc_subject IS NOT NULL;
