-- A failure report was a duplicate of any stored report whose mail had the same Message-ID, so
-- a reporter that reuses Message-IDs lost every report after the first. The same report sent
-- again has the same reported domain, source, arrival time and original message too, so the
-- Message-ID now counts as a match only together with those.
DROP INDEX failure_reports_message_id_key;
CREATE UNIQUE INDEX failure_reports_message_id_key
  ON failure_reports (
    account_id,
    report_message_id,
    reported_domain,
    coalesce(source_ip, ''),
    coalesce(arrival_date, '-infinity'::timestamptz),
    coalesce(original_headers ->> 'messageId', '')
  )
  WHERE report_message_id IS NOT NULL;
