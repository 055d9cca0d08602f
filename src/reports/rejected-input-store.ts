import { createHash } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';

/** The ways a report reaches dmarcdesk. */
export const RECEIVED_VIA = ['upload', 'smtp', 'imap', 'folder'] as const;
export type ReceivedVia = (typeof RECEIVED_VIA)[number];

/** A rejected file or mail, without its bytes. */
export interface RejectedInput {
  id: string;
  accountId: string | null;
  receivedVia: ReceivedVia;
  origin: string;
  reasonCode: string;
  reason: string;
  sizeBytes: number;
  contentTruncated: boolean;
  contentSha256: string;
  receivedAt: Date;
}

interface RejectedInputRow {
  id: string;
  account_id: string | null;
  received_via: ReceivedVia;
  origin: string;
  reason_code: string;
  reason: string;
  size_bytes: string | number;
  content_truncated: boolean;
  content_sha256: string;
  received_at: Date;
}

function toRejectedInput(row: RejectedInputRow): RejectedInput {
  return {
    id: row.id,
    accountId: row.account_id,
    receivedVia: row.received_via,
    origin: row.origin,
    reasonCode: row.reason_code,
    reason: row.reason,
    sizeBytes: Number(row.size_bytes),
    contentTruncated: row.content_truncated,
    contentSha256: row.content_sha256,
    receivedAt: row.received_at,
  };
}

const COLUMNS = `id, account_id, received_via, origin, reason_code, reason, size_bytes,
  content_truncated, content_sha256, received_at`;

/**
 * Store a rejected input with its first keepBytes bytes. sizeBytes is the whole input's size,
 * which may be more than the bytes given when a receiver stopped reading at its limit.
 */
export async function storeRejectedInput(
  db: Queryable,
  input: {
    accountId: string | null;
    receivedVia: ReceivedVia;
    origin: string;
    reasonCode: string;
    reason: string;
    bytes: Buffer;
    sizeBytes?: number;
    keepBytes: number;
  },
): Promise<RejectedInput> {
  const kept = input.bytes.subarray(0, input.keepBytes);
  const sizeBytes = input.sizeBytes ?? input.bytes.length;
  const [row] = await db.query<RejectedInputRow>(
    `INSERT INTO rejected_inputs (account_id, received_via, origin, reason_code, reason,
        size_bytes, content, content_truncated, content_sha256)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     RETURNING ${COLUMNS}`,
    [
      input.accountId,
      input.receivedVia,
      input.origin.slice(0, 1000),
      input.reasonCode,
      input.reason.slice(0, 2000),
      sizeBytes,
      kept,
      kept.length < sizeBytes,
      createHash('sha256').update(input.bytes).digest('hex'),
    ],
  );
  return toRejectedInput(row!);
}

/**
 * List an account's rejected inputs, newest first.
 * NOTE: inputs tied to no account (an IMAP mail for no known address) are in the table and the
 * log, but no route lists them yet.
 */
export async function listRejectedInputs(
  db: Queryable,
  accountId: string,
  filter: { receivedVia?: ReceivedVia | undefined; limit?: number } = {},
): Promise<RejectedInput[]> {
  const rows = await db.query<RejectedInputRow>(
    `SELECT ${COLUMNS} FROM rejected_inputs
      WHERE account_id = $1 AND ($2::text IS NULL OR received_via = $2)
      ORDER BY received_at DESC, id
      LIMIT $3`,
    [accountId, filter.receivedVia ?? null, filter.limit ?? 100],
  );
  return rows.map(toRejectedInput);
}

export async function getRejectedInput(
  db: Queryable,
  accountId: string,
  id: string,
): Promise<RejectedInput> {
  const [row] = await db.query<RejectedInputRow>(
    `SELECT ${COLUMNS} FROM rejected_inputs WHERE account_id = $1 AND id = $2`,
    [accountId, id],
  );
  if (!row) throw notFound('rejected input', id);
  return toRejectedInput(row);
}

/** Returns the stored first bytes of a rejected input. */
export async function getRejectedInputContent(
  db: Queryable,
  accountId: string,
  id: string,
): Promise<Buffer> {
  const [row] = await db.query<{ content: Uint8Array }>(
    'SELECT content FROM rejected_inputs WHERE account_id = $1 AND id = $2',
    [accountId, id],
  );
  if (!row) throw notFound('rejected input', id);
  return Buffer.from(row.content);
}
