// Storage of DNS observations and of each record's monitoring state. Every function takes the
// account id and filters by it, so a row of another MSSP account reads as not found.
import { createHash } from 'node:crypto';

import type { Queryable } from '../db/database.ts';
import type { Finding } from './findings.ts';
import type {
  Observation,
  ObservationComparison,
  ObservedLookup,
  RecordKind,
  RecordMeaning,
} from './observation.ts';

/** The cause of a check: the schedule, the second lookup of a change, or a request. */
export type CheckTrigger = 'scheduled' | 'confirmation' | 'manual';

/**
 * The monitor's conclusion from one observation. `baseline`: the first successful lookup of
 * the record, taken as its state. `unchanged`: same meaning as the current state (perhaps in
 * another form). `change_pending`: differs in meaning and waits for a second lookup.
 * `change_confirmed`: the second lookup agreed, the change is the new state.
 * `change_reverted`: the record is back to its state before a pending change was confirmed.
 * `lookup_problem`: the lookup failed, which tells nothing about the record.
 */
export type ObservationOutcome =
  | 'baseline'
  | 'unchanged'
  | 'change_pending'
  | 'change_confirmed'
  | 'change_reverted'
  | 'lookup_problem';

/**
 * The change an observation shows against the record's current state: a kind of
 * `compareObservations`, or `invalid_at_first_check` for a record that was invalid when the
 * domain was first checked.
 */
export type MonitorChangeKind = ObservationComparison['kind'] | 'invalid_at_first_check';

/** An observation as stored, with the monitor's conclusion about it. */
export interface StoredObservation extends Observation {
  id: string;
  accountId: string;
  domainId: string;
  checkId: string;
  /** The DKIM selector, or null for DMARC and SPF. */
  selector: string | null;
  trigger: CheckTrigger;
  /** SHA-256 of the meaning and the first CNAME hop; null for a lookup problem. */
  meaningHash: string | null;
  outcome: ObservationOutcome;
  changeKind: MonitorChangeKind | null;
  comparison: ObservationComparison | null;
}

export interface NewObservation {
  accountId: string;
  domainId: string;
  checkId: string;
  selector: string | null;
  trigger: CheckTrigger;
  observation: Observation;
  outcome: ObservationOutcome;
  changeKind: MonitorChangeKind | null;
  comparison: ObservationComparison | null;
}

interface ObservationRow {
  id: string;
  account_id: string;
  domain_id: string;
  check_id: string;
  record_kind: RecordKind;
  name: string;
  selector: string | null;
  observed_at: Date;
  trigger: CheckTrigger;
  lookup_status: string;
  lookup_problem: boolean;
  lookup: ObservedLookup;
  raw: string[][];
  normalised: string[];
  meaning: RecordMeaning | null;
  meaning_hash: string | null;
  findings: Finding[];
  summary: string;
  outcome: ObservationOutcome;
  change_kind: MonitorChangeKind | null;
  comparison: ObservationComparison | null;
}

function toStoredObservation(row: ObservationRow): StoredObservation {
  return {
    id: row.id,
    accountId: row.account_id,
    domainId: row.domain_id,
    checkId: row.check_id,
    kind: row.record_kind,
    name: row.name,
    selector: row.selector,
    observedAt: new Date(row.observed_at).toISOString(),
    trigger: row.trigger,
    lookup: row.lookup,
    lookupProblem: row.lookup_problem,
    raw: row.raw,
    normalised: row.normalised,
    meaning: row.meaning,
    meaningHash: row.meaning_hash,
    findings: row.findings,
    summary: row.summary,
    outcome: row.outcome,
    changeKind: row.change_kind,
    comparison: row.comparison,
  };
}

/** Order object keys by their UTF-16 code units, the same on every runtime and locale. */
function compareKeys(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

/** Serialise a JSON value with object keys sorted, so that equal values give equal text. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => compareKeys(a, b));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Hash what an observation means: the parsed meaning and the first CNAME hop, which is the
 * customer's own setting. Text, string splits, record order and TTLs are not part of it, so a
 * cosmetic edit keeps the hash. Returns null for a lookup problem, which has no meaning.
 */
export function meaningHash(observation: Observation): string | null {
  if (observation.lookupProblem || !observation.meaning) return null;
  const subject = {
    kind: observation.kind,
    meaning: observation.meaning,
    delegation: observation.lookup.cnameChain[0] ?? null,
  };
  return createHash('sha256').update(stableJson(subject)).digest('hex');
}

/**
 * Insert one observation with the monitor's conclusion and return it as stored. Observations
 * are kept until their domain is deleted, except those that showed no change, which
 * purgeUnchangedObservations deletes once they are old.
 */
export async function insertObservation(
  db: Queryable,
  input: NewObservation,
): Promise<StoredObservation> {
  const observation = input.observation;
  const [row] = await db.query<ObservationRow>(
    `INSERT INTO dns_observations (account_id, domain_id, check_id, record_kind, name, selector,
                                   observed_at, trigger, lookup_status, lookup_problem, lookup,
                                   raw, normalised, meaning, meaning_hash, findings, summary,
                                   outcome, change_kind, comparison)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20)
     RETURNING *`,
    [
      input.accountId,
      input.domainId,
      input.checkId,
      observation.kind,
      observation.name,
      input.selector,
      observation.observedAt,
      input.trigger,
      observation.lookup.status,
      observation.lookupProblem,
      JSON.stringify(observation.lookup),
      JSON.stringify(observation.raw),
      JSON.stringify(observation.normalised),
      observation.meaning === null ? null : JSON.stringify(observation.meaning),
      meaningHash(observation),
      JSON.stringify(observation.findings),
      observation.summary,
      input.outcome,
      input.changeKind,
      input.comparison === null ? null : JSON.stringify(input.comparison),
    ],
  );
  return toStoredObservation(row!);
}

/** Load observations by id, in no particular order; ids of other accounts are skipped. */
export async function getObservations(
  db: Queryable,
  accountId: string,
  ids: string[],
): Promise<Map<string, StoredObservation>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<ObservationRow>(
    'SELECT * FROM dns_observations WHERE account_id = $1 AND id = ANY($2::uuid[])',
    [accountId, ids],
  );
  return new Map(rows.map((row) => [row.id, toStoredObservation(row)]));
}

export interface ObservationFilter {
  kind?: RecordKind | undefined;
  selector?: string | undefined;
  /** Only observations made before this time (for paging back through history). */
  before?: Date | undefined;
  limit?: number | undefined;
}

/** List a domain's observations, newest first. */
export async function listObservations(
  db: Queryable,
  accountId: string,
  domainId: string,
  filter: ObservationFilter = {},
): Promise<StoredObservation[]> {
  const rows = await db.query<ObservationRow>(
    `SELECT * FROM dns_observations
      WHERE account_id = $1 AND domain_id = $2
        AND ($3::text IS NULL OR record_kind = $3)
        AND ($4::text IS NULL OR selector = $4)
        AND ($5::timestamptz IS NULL OR observed_at < $5)
      ORDER BY observed_at DESC, record_kind, name, id
      LIMIT $6`,
    [
      accountId,
      domainId,
      filter.kind ?? null,
      filter.selector ?? null,
      filter.before?.toISOString() ?? null,
      filter.limit ?? 50,
    ],
  );
  return rows.map(toStoredObservation);
}

/** The monitoring state of one record of a domain. */
export interface RecordState {
  accountId: string;
  domainId: string;
  kind: RecordKind;
  name: string;
  selector: string | null;
  currentObservationId: string | null;
  pendingObservationId: string | null;
  lastObservationId: string | null;
  consecutiveProblems: number;
  updatedAt: Date;
}

interface RecordStateRow {
  account_id: string;
  domain_id: string;
  record_kind: RecordKind;
  name: string;
  selector: string | null;
  current_observation_id: string | null;
  pending_observation_id: string | null;
  last_observation_id: string | null;
  consecutive_problems: number;
  updated_at: Date;
}

function toRecordState(row: RecordStateRow): RecordState {
  return {
    accountId: row.account_id,
    domainId: row.domain_id,
    kind: row.record_kind,
    name: row.name,
    selector: row.selector,
    currentObservationId: row.current_observation_id,
    pendingObservationId: row.pending_observation_id,
    lastObservationId: row.last_observation_id,
    consecutiveProblems: row.consecutive_problems,
    updatedAt: row.updated_at,
  };
}

/**
 * Return the state of one record, creating an empty one first, and lock its row until the
 * transaction ends, so that two checks of one record never decide from the same old state.
 */
export async function lockRecordState(
  db: Queryable,
  key: {
    accountId: string;
    domainId: string;
    kind: RecordKind;
    name: string;
    selector: string | null;
  },
): Promise<RecordState> {
  await db.query(
    `INSERT INTO dns_record_states (account_id, domain_id, record_kind, name, selector)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (domain_id, record_kind, name) DO NOTHING`,
    [key.accountId, key.domainId, key.kind, key.name, key.selector],
  );
  const [row] = await db.query<RecordStateRow>(
    `SELECT * FROM dns_record_states
      WHERE account_id = $1 AND domain_id = $2 AND record_kind = $3 AND name = $4
      FOR UPDATE`,
    [key.accountId, key.domainId, key.kind, key.name],
  );
  return toRecordState(row!);
}

/** Store the observations a record's state now points at, after a decision. */
export async function updateRecordState(
  db: Queryable,
  state: Pick<RecordState, 'accountId' | 'domainId' | 'kind' | 'name'>,
  update: {
    currentObservationId: string | null;
    pendingObservationId: string | null;
    lastObservationId: string;
    consecutiveProblems: number;
  },
): Promise<void> {
  await db.query(
    `UPDATE dns_record_states
        SET current_observation_id = $5, pending_observation_id = $6, last_observation_id = $7,
            consecutive_problems = $8, updated_at = now()
      WHERE account_id = $1 AND domain_id = $2 AND record_kind = $3 AND name = $4`,
    [
      state.accountId,
      state.domainId,
      state.kind,
      state.name,
      update.currentObservationId,
      update.pendingObservationId,
      update.lastObservationId,
      update.consecutiveProblems,
    ],
  );
}

/** List the monitoring states of a domain's records. */
export async function listRecordStates(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<RecordState[]> {
  const rows = await db.query<RecordStateRow>(
    `SELECT * FROM dns_record_states WHERE account_id = $1 AND domain_id = $2
      ORDER BY record_kind, name`,
    [accountId, domainId],
  );
  return rows.map(toRecordState);
}

/**
 * Delete the states of DKIM records whose selector is no longer configured. Their
 * observations stay in the history.
 */
export async function deleteUnlistedDkimStates(
  db: Queryable,
  accountId: string,
  domainId: string,
  selectors: string[],
): Promise<void> {
  await db.query(
    `DELETE FROM dns_record_states
      WHERE account_id = $1 AND domain_id = $2 AND record_kind = 'dkim'
        AND NOT (selector = ANY($3::text[]))`,
    [accountId, domainId, selectors],
  );
}

/**
 * Delete the observations older than `days` days that showed nothing new: a lookup whose
 * record was unchanged. Baselines, changes, reverted changes and failed lookups stay, and so
 * does every observation a record's state still points at, so the history keeps each state a
 * record was in and when it changed. A domain with three records checked every 6 hours adds
 * about 4,400 observations a year, nearly all of them unchanged. Returns how many were deleted.
 */
export async function purgeUnchangedObservations(db: Queryable, days: number): Promise<number> {
  const [row] = await db.query<{ count: string }>(
    `WITH gone AS (
       DELETE FROM dns_observations o
        WHERE o.outcome = 'unchanged'
          AND o.observed_at < now() - make_interval(days => $1)
          AND NOT EXISTS (
            SELECT 1 FROM dns_record_states s
             WHERE o.id IN (s.current_observation_id, s.pending_observation_id,
                            s.last_observation_id))
       RETURNING 1)
     SELECT count(*) AS count FROM gone`,
    [days],
  );
  return Number(row?.count ?? 0);
}
