-- A note outcome that HaloPSA rejected is told apart from one not checked yet, so that the
-- summary can say that notes wait while tickets still go out.
ALTER TABLE halopsa_connections DROP CONSTRAINT IF EXISTS halopsa_connections_note_outcome_status_check;
ALTER TABLE halopsa_connections
  ADD CONSTRAINT halopsa_connections_note_outcome_status_check
    CHECK (note_outcome_status IN ('verified', 'unverified', 'forbidden'));
