-- HaloPSA may do a ticket or note write whose response is lost. Recording each write before it
-- is sent lets a later attempt look HaloPSA up only when an earlier one may have done the write,
-- instead of spending a request on a lookup before every write.

-- When a POST of this alert's ticket was first sent; null while none has been.
ALTER TABLE alerts ADD COLUMN ticket_write_started_at timestamptz;

-- The place among the incident's notes of the note whose POST was sent last. When it equals
-- the place of the note to send, that note may be on the ticket already.
ALTER TABLE alert_incidents ADD COLUMN note_write_sequence integer;

-- Writes that older versions may have sent count as possibly done, so that their next attempt
-- looks them up as before.
UPDATE alerts SET ticket_write_started_at = now()
 WHERE ticket_status IN ('pending', 'failed') AND halopsa_ticket_id IS NULL;
UPDATE alert_incidents i
   SET note_write_sequence =
       (SELECT count(*)::int + 1 FROM alert_incident_notes n WHERE n.incident_id = i.id)
 WHERE i.ticket_status = 'created';
