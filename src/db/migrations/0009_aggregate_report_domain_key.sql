-- A reporter numbers its reports, but some reuse one report id for the reports of several
-- policy domains sent together. A report is therefore identified by the account, the
-- reporter, the report id and the policy domain, compared without case as DNS names are.
ALTER TABLE aggregate_reports DROP CONSTRAINT IF EXISTS aggregate_reports_account_id_org_name_report_id_key;
CREATE UNIQUE INDEX aggregate_reports_reporter_report_domain_key
  ON aggregate_reports (account_id, org_name, report_id, lower(policy_domain));
