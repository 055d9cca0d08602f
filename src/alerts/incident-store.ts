import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';
import type { Alert, AlertKind, IncidentChange } from './alert-store.ts';

export type IncidentStatus = 'open' | 'resolved';
export const INCIDENT_STATUSES: readonly IncidentStatus[] = ['open', 'resolved'];

/**
 * The rule that resolves an incident. observed: clear observations must cover clearAfterSeconds of the
 * time they are about (report time for thresholds) past the last firing. idle: nothing fired
 * for clearAfterSeconds of wall time, for alerts such as failure reports that have no clear
 * observation.
 */
export type ClearMode = 'observed' | 'idle';

export type IncidentTicketStatus = 'not_routed' | 'pending' | 'created' | 'failed';

/** The alerts of one fingerprint while its condition lasts, and the ticket they share. */
export interface Incident {
  id: string;
  accountId: string;
  customerId: string;
  fingerprint: string;
  kind: AlertKind;
  domainId: string | null;
  groupId: string | null;
  subjectName: string;
  ruleId: string | null;
  status: IncidentStatus;
  clearMode: ClearMode;
  clearAfterSeconds: number;
  openedAt: Date;
  lastFiredAt: Date;
  firingCount: number;
  reopenCount: number;
  /** The time the latest firing is about, such as the end of the window that exceeded. */
  lastFiringObservedAt: Date;
  /** The latest time the condition was seen clear, after the last firing; null when never. */
  lastClearObservedAt: Date | null;
  resolvedAt: Date | null;
  resolution: string | null;
  /** The alert whose job makes the ticket: the first one, unless it was not routed. */
  ticketAlertId: string | null;
  ticketStatus: IncidentTicketStatus;
  halopsaTicketId: number | null;
  lastNoteAt: Date | null;
  updatedAt: Date;
}

/** A note added to an incident's HaloPSA ticket, or an attempt that failed. */
export interface IncidentNote {
  id: string;
  incidentId: string;
  kind: 'firing' | 'closing';
  status: 'sent' | 'failed';
  alertIds: string[];
  halopsaTicketId: number;
  halopsaActionId: number | null;
  outcomeId: number;
  error: string | null;
  createdAt: Date;
}

interface IncidentRow {
  id: string;
  account_id: string;
  customer_id: string;
  fingerprint: string;
  kind: AlertKind;
  domain_id: string | null;
  group_id: string | null;
  subject_name: string;
  rule_id: string | null;
  status: IncidentStatus;
  clear_mode: ClearMode;
  clear_after_seconds: number;
  opened_at: Date;
  last_fired_at: Date;
  firing_count: number;
  reopen_count: number;
  last_firing_observed_at: Date;
  last_clear_observed_at: Date | null;
  resolved_at: Date | null;
  resolution: string | null;
  ticket_alert_id: string | null;
  ticket_status: IncidentTicketStatus;
  halopsa_ticket_id: number | null;
  last_note_at: Date | null;
  updated_at: Date;
}

function toIncident(row: IncidentRow): Incident {
  return {
    id: row.id,
    accountId: row.account_id,
    customerId: row.customer_id,
    fingerprint: row.fingerprint,
    kind: row.kind,
    domainId: row.domain_id,
    groupId: row.group_id,
    subjectName: row.subject_name,
    ruleId: row.rule_id,
    status: row.status,
    clearMode: row.clear_mode,
    clearAfterSeconds: row.clear_after_seconds,
    openedAt: row.opened_at,
    lastFiredAt: row.last_fired_at,
    firingCount: row.firing_count,
    reopenCount: row.reopen_count,
    lastFiringObservedAt: row.last_firing_observed_at,
    lastClearObservedAt: row.last_clear_observed_at,
    resolvedAt: row.resolved_at,
    resolution: row.resolution,
    ticketAlertId: row.ticket_alert_id,
    ticketStatus: row.ticket_status,
    halopsaTicketId: row.halopsa_ticket_id,
    lastNoteAt: row.last_note_at,
    updatedAt: row.updated_at,
  };
}

/** Options that decide which incident a firing joins, and how that incident resolves. */
export interface FiringOptions {
  /** The time the firing is about; defaults to now. */
  observedAt: Date;
  clearMode: ClearMode;
  clearAfterSeconds: number;
  ruleId: string | null;
  /** A firing this soon (wall time) after its incident resolved reopens it. */
  reopenWithinSeconds: number;
}

/**
 * Attach a new alert to the incident of its fingerprint, in the alert's transaction: the open
 * one, a recently resolved one (reopened), a resolved one whose clear observations already
 * cover the firing's time (a late report), or a new one.
 */
export async function attachFiring(
  tx: Queryable,
  alert: Alert,
  options: FiringOptions,
): Promise<{ incident: Incident; change: IncidentChange }> {
  const attached = await attachToExisting(tx, alert, options);
  if (attached) return linkAlert(tx, alert, attached);

  const [created] = await tx.query<IncidentRow>(
    `INSERT INTO alert_incidents (account_id, customer_id, fingerprint, kind, domain_id, group_id,
        subject_name, rule_id, clear_mode, clear_after_seconds, last_firing_observed_at,
        ticket_alert_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (account_id, fingerprint) WHERE status = 'open' DO NOTHING
     RETURNING *`,
    [
      alert.accountId,
      alert.customerId,
      alert.fingerprint,
      alert.kind,
      alert.domainId,
      alert.groupId,
      alert.domainName,
      options.ruleId,
      options.clearMode,
      options.clearAfterSeconds,
      options.observedAt,
      alert.id,
    ],
  );
  if (created) return linkAlert(tx, alert, { incident: toIncident(created), change: 'opened' });

  // Another transaction opened the incident between the look-up and the insert, and has
  // committed by now (the insert waited for it), so it is found this time.
  const raced = await attachToExisting(tx, alert, options);
  if (!raced) throw new Error(`The open incident of ${alert.fingerprint} could not be found.`);
  return linkAlert(tx, alert, raced);
}

async function attachToExisting(
  tx: Queryable,
  alert: Alert,
  options: FiringOptions,
): Promise<{ incident: Incident; change: IncidentChange } | null> {
  const [open] = await tx.query<IncidentRow>(
    `UPDATE alert_incidents
        SET firing_count = firing_count + 1, last_fired_at = now(),
            last_firing_observed_at = greatest(last_firing_observed_at, $3),
            clear_after_seconds = $4, updated_at = now()
      WHERE account_id = $1 AND fingerprint = $2 AND status = 'open'
      RETURNING *`,
    [alert.accountId, alert.fingerprint, options.observedAt, options.clearAfterSeconds],
  );
  if (open) return { incident: toIncident(open), change: 'fired' };

  const [latest] = await tx.query<IncidentRow>(
    `SELECT * FROM alert_incidents
      WHERE account_id = $1 AND fingerprint = $2 AND status = 'resolved'
      ORDER BY resolved_at DESC LIMIT 1
      FOR UPDATE`,
    [alert.accountId, alert.fingerprint],
  );
  if (!latest) return null;

  // TODO: only the latest clear time is kept, so a late firing between the last firing and
  // that clear time counts as late even when no report showed its own time clear.
  if (
    latest.clear_mode === 'observed' &&
    latest.last_clear_observed_at !== null &&
    options.observedAt <= latest.last_clear_observed_at
  ) {
    const [late] = await tx.query<IncidentRow>(
      `UPDATE alert_incidents SET firing_count = firing_count + 1, updated_at = now()
        WHERE id = $1 RETURNING *`,
      [latest.id],
    );
    return { incident: toIncident(late!), change: 'late' };
  }

  const [reopened] = await tx.query<IncidentRow>(
    `UPDATE alert_incidents
        SET status = 'open', resolved_at = NULL, resolution = NULL,
            reopen_count = reopen_count + 1, firing_count = firing_count + 1,
            last_fired_at = now(), last_firing_observed_at = greatest(last_firing_observed_at, $2),
            last_clear_observed_at = NULL, clear_after_seconds = $3, updated_at = now()
      WHERE id = $1 AND resolved_at > now() - make_interval(secs => $4)
      RETURNING *`,
    [latest.id, options.observedAt, options.clearAfterSeconds, options.reopenWithinSeconds],
  );
  return reopened ? { incident: toIncident(reopened), change: 'reopened' } : null;
}

async function linkAlert(
  tx: Queryable,
  alert: Alert,
  attached: { incident: Incident; change: IncidentChange },
): Promise<{ incident: Incident; change: IncidentChange }> {
  await tx.query('UPDATE alerts SET incident_id = $2 WHERE id = $1', [
    alert.id,
    attached.incident.id,
  ]);
  alert.incidentId = attached.incident.id;
  return attached;
}

/**
 * Record that the condition of `fingerprint` was clear at `observedAt`, and resolve its open
 * incident when clear observations now cover its clear time past the last firing. Returns the
 * incident when this call resolved it.
 */
export async function recordClearObservation(
  tx: Queryable,
  input: { accountId: string; fingerprint: string; observedAt: Date },
): Promise<Incident | null> {
  const [row] = await tx.query<IncidentRow>(
    `UPDATE alert_incidents
        SET last_clear_observed_at = greatest(coalesce(last_clear_observed_at, $3), $3),
            updated_at = now()
      WHERE account_id = $1 AND fingerprint = $2 AND status = 'open' AND clear_mode = 'observed'
        AND $3 > last_firing_observed_at
      RETURNING *`,
    [input.accountId, input.fingerprint, input.observedAt],
  );
  if (!row || row.last_clear_observed_at === null) return null;
  const clearFor = row.last_clear_observed_at.getTime() - row.last_firing_observed_at.getTime();
  if (clearFor < row.clear_after_seconds * 1000) return null;

  const hours = Math.round(row.clear_after_seconds / 360) / 10;
  const [resolved] = await tx.query<IncidentRow>(
    `UPDATE alert_incidents SET status = 'resolved', resolved_at = now(), resolution = $2,
            updated_at = now()
      WHERE id = $1 AND status = 'open' RETURNING *`,
    [
      row.id,
      `The condition stayed clear for at least ${hours} hours of report time, from the last ` +
        `firing at ${row.last_firing_observed_at.toISOString()} to ` +
        `${row.last_clear_observed_at.toISOString()}.`,
    ],
  );
  return resolved ? toIncident(resolved) : null;
}

/**
 * Resolve every open idle-mode incident whose last firing is clearAfterSeconds before `now`.
 * resolved_at is the database's own clock even when `now` is later, because closing notes are
 * matched to a resolution by the time they were stored.
 */
export async function resolveIdleIncidents(tx: Queryable, now: Date): Promise<Incident[]> {
  const rows = await tx.query<IncidentRow>(
    `UPDATE alert_incidents
        SET status = 'resolved', resolved_at = now(), updated_at = now(),
            resolution = 'Nothing fired for ' ||
              round(clear_after_seconds / 3600.0, 1)::text || ' hours after the last firing at ' ||
              to_char(last_fired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '.'
      WHERE status = 'open' AND clear_mode = 'idle'
        AND last_fired_at <= $1::timestamptz - make_interval(secs => clear_after_seconds)
      RETURNING *`,
    [now],
  );
  return rows.map(toIncident);
}

export async function getIncident(
  db: Queryable,
  accountId: string,
  incidentId: string,
): Promise<Incident> {
  const [row] = await db.query<IncidentRow>(
    'SELECT * FROM alert_incidents WHERE account_id = $1 AND id = $2',
    [accountId, incidentId],
  );
  if (!row) throw notFound('incident', incidentId);
  return toIncident(row);
}

export async function listIncidents(
  db: Queryable,
  accountId: string,
  filter: {
    status?: IncidentStatus | undefined;
    customerId?: string | undefined;
    kind?: AlertKind | undefined;
    limit?: number | undefined;
  } = {},
): Promise<Incident[]> {
  const rows = await db.query<IncidentRow>(
    `SELECT * FROM alert_incidents
      WHERE account_id = $1
        AND ($2::text IS NULL OR status = $2)
        AND ($3::uuid IS NULL OR customer_id = $3)
        AND ($4::text IS NULL OR kind = $4)
      ORDER BY opened_at DESC, id
      LIMIT $5`,
    [
      accountId,
      filter.status ?? null,
      filter.customerId ?? null,
      filter.kind ?? null,
      filter.limit ?? 100,
    ],
  );
  return rows.map(toIncident);
}

interface NoteRow {
  id: string;
  incident_id: string;
  kind: 'firing' | 'closing';
  status: 'sent' | 'failed';
  alert_ids: string[];
  halopsa_ticket_id: number;
  halopsa_action_id: number | null;
  outcome_id: number;
  error: string | null;
  created_at: Date;
}

function toNote(row: NoteRow): IncidentNote {
  return {
    id: row.id,
    incidentId: row.incident_id,
    kind: row.kind,
    status: row.status,
    alertIds: row.alert_ids,
    halopsaTicketId: row.halopsa_ticket_id,
    halopsaActionId: row.halopsa_action_id,
    outcomeId: row.outcome_id,
    error: row.error,
    createdAt: row.created_at,
  };
}

export async function listIncidentNotes(
  db: Queryable,
  accountId: string,
  incidentId: string,
): Promise<IncidentNote[]> {
  const rows = await db.query<NoteRow>(
    `SELECT * FROM alert_incident_notes WHERE account_id = $1 AND incident_id = $2
      ORDER BY created_at, id`,
    [accountId, incidentId],
  );
  return rows.map(toNote);
}

/** Store the outcome of one attempt to add a note to an incident's ticket. */
export async function insertIncidentNote(
  db: Queryable,
  note: Omit<IncidentNote, 'id' | 'createdAt'> & { accountId: string },
): Promise<IncidentNote> {
  const [row] = await db.query<NoteRow>(
    `INSERT INTO alert_incident_notes (incident_id, account_id, kind, status, alert_ids,
        halopsa_ticket_id, halopsa_action_id, outcome_id, error)
     VALUES ($1, $2, $3, $4, $5::uuid[], $6, $7, $8, $9)
     RETURNING *`,
    [
      note.incidentId,
      note.accountId,
      note.kind,
      note.status,
      note.alertIds,
      note.halopsaTicketId,
      note.halopsaActionId,
      note.outcomeId,
      note.error,
    ],
  );
  return toNote(row!);
}

/**
 * Set the ticket state of an incident; a ticket id, once set, is kept. ticketAlertId names the
 * alert whose job makes the ticket, which is not the first alert when earlier ones were not
 * routed. noteAt 'now' starts the minimum interval before the first note.
 */
export async function setIncidentTicket(
  db: Queryable,
  incidentId: string,
  update: {
    status: IncidentTicketStatus;
    ticketId?: number;
    ticketAlertId?: string;
    noteAt?: 'now';
  },
): Promise<void> {
  await db.query(
    `UPDATE alert_incidents
        SET ticket_status = $2, halopsa_ticket_id = COALESCE($3, halopsa_ticket_id),
            ticket_alert_id = COALESCE($5, ticket_alert_id),
            last_note_at = CASE WHEN $4 THEN now() ELSE last_note_at END, updated_at = now()
      WHERE id = $1`,
    [
      incidentId,
      update.status,
      update.ticketId ?? null,
      update.noteAt === 'now',
      update.ticketAlertId ?? null,
    ],
  );
}

/** Record that a note was just added to the incident's ticket. */
export async function markNoteSent(db: Queryable, incidentId: string): Promise<void> {
  await db.query(
    'UPDATE alert_incidents SET last_note_at = now(), updated_at = now() WHERE id = $1',
    [incidentId],
  );
}

/**
 * Check whether a note may be added to the incident's ticket now: none was added, and the ticket
 * was not made, within `intervalSeconds`.
 */
export async function noteIntervalPassed(
  db: Queryable,
  incidentId: string,
  intervalSeconds: number,
): Promise<boolean> {
  // clock_timestamp(), not now(): inside a transaction now() is its start, which can be earlier
  // than a ticket or note another transaction recorded meanwhile, and the firing would be held
  // although the interval has passed.
  const [row] = await db.query<{ passed: boolean }>(
    `SELECT last_note_at IS NULL
            OR last_note_at <= clock_timestamp() - make_interval(secs => $2) AS passed
       FROM alert_incidents WHERE id = $1`,
    [incidentId, intervalSeconds],
  );
  return row?.passed ?? false;
}

/** List the firings of an incident that wait for a note (pending or held), oldest first. */
export async function listUnnotedFirings(db: Queryable, incidentId: string): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM alerts WHERE incident_id = $1 AND ticket_status IN ('pending', 'held')
        AND id <> (SELECT coalesce(ticket_alert_id, '00000000-0000-0000-0000-000000000000'::uuid)
                     FROM alert_incidents WHERE id = $1)
      ORDER BY created_at, id`,
    [incidentId],
  );
  return rows.map((row) => row.id);
}

/** Check whether the incident is resolved and no closing note was tried since it resolved. */
export async function closingNoteOwed(db: Queryable, incidentId: string): Promise<boolean> {
  const [row] = await db.query<{ owed: boolean }>(
    `SELECT i.status = 'resolved' AND NOT EXISTS (
              SELECT 1 FROM alert_incident_notes n
               WHERE n.incident_id = i.id AND n.kind = 'closing' AND n.created_at >= i.resolved_at
            ) AS owed
       FROM alert_incidents i WHERE i.id = $1`,
    [incidentId],
  );
  return row?.owed ?? false;
}

/**
 * List the incidents of every account whose ticket exists and that owe a note (held firings, or a
 * closing note) whose minimum interval has passed, for the periodic flush. Pending firings count
 * too: their note job is normally queued already, and queueing it again does nothing, but a
 * firing whose job was lost is still noted.
 */
export async function listIncidentsOwingNotes(
  db: Queryable,
  intervalSeconds: number,
  limit: number,
): Promise<{ accountId: string; incidentId: string }[]> {
  return db.query(
    `SELECT i.account_id AS "accountId", i.id AS "incidentId"
       FROM alert_incidents i
      WHERE i.ticket_status = 'created'
        AND (i.last_note_at IS NULL OR i.last_note_at <= now() - make_interval(secs => $1))
        AND (EXISTS (SELECT 1 FROM alerts a
                      WHERE a.incident_id = i.id AND a.ticket_status IN ('held', 'pending')
                        AND a.id <> coalesce(i.ticket_alert_id,
                                             '00000000-0000-0000-0000-000000000000'::uuid))
             OR (i.status = 'resolved' AND NOT EXISTS (
                   SELECT 1 FROM alert_incident_notes n
                    WHERE n.incident_id = i.id AND n.kind = 'closing'
                      AND n.created_at >= i.resolved_at)))
      ORDER BY i.updated_at
      LIMIT $2`,
    [intervalSeconds, limit],
  );
}
