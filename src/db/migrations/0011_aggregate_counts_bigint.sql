-- Message counts are 64-bit, because one record or one report may count more than 2^31 - 1
-- messages, and the sums over a window of reports grow past that sooner. Changing the type
-- keeps every stored value.
ALTER TABLE aggregate_reports
  ALTER COLUMN message_count TYPE bigint,
  ALTER COLUMN failed_count TYPE bigint;
ALTER TABLE aggregate_records ALTER COLUMN message_count TYPE bigint;
