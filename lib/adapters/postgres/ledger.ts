/**
 * Reads a write ledger's tokens back from PostgreSQL, after a failover, from whatever the stable
 * endpoint now points at. One REPEATABLE READ snapshot, read two ways (index lookups of every token in
 * batches, and a scan for every row carrying the run's tag), so the load that keeps writing meanwhile
 * cannot make the two disagree, and a damaged index or heap can. It returns the rows; judging them is
 * the probe's (lib/scenario/probes/ledger-readback.ts).
 */
import pg from 'pg';
import type { ReadBackRows } from '../../measure/ledger-readback.ts';

/** How to reach the database the writes went to (the target's stable endpoint). */
export type LedgerConnection = pg.ClientConfig;

/** Where the service keeps its writes' tokens. The lab's orders table is the default. */
export interface LedgerTable {
  table: string;
  tokenColumn: string;
  /** Column holding the `{{seq}}` the write carried; null when the service does not store it. */
  seqColumn: string | null;
}

export const LAB_ORDERS_TABLE: LedgerTable = { table: 'orders', tokenColumn: 'token', seqColumn: 'seq' };

export interface ReadBackOptions {
  table?: LedgerTable;
  /** Tokens per index-lookup query (default 5000). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Per-statement limit, ms (default 30 s). */
  statementTimeoutMs?: number;
}

export interface ReadBackResult extends ReadBackRows {
  batches: number;
  ms: number;
}

function toSeq(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

export async function readBackTokens(
  conn: LedgerConnection,
  tokens: readonly string[],
  tag: string,
  options: ReadBackOptions = {},
): Promise<ReadBackResult> {
  if (!/^[0-9a-f]{8}$/.test(tag)) throw new Error(`ledger tag "${tag}" is not 8 hex digits`);
  const t0 = performance.now();
  const { table, tokenColumn, seqColumn } = options.table ?? LAB_ORDERS_TABLE;
  const batchSize = options.batchSize ?? 5000;
  const client = new pg.Client({
    ...conn,
    connectionTimeoutMillis: 5000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    application_name: 'drill-ledger-readback',
  });
  const onAbort = () => void client.end().catch(() => undefined);
  options.signal?.throwIfAborted();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
    const tbl = client.escapeIdentifier(table);
    const tok = client.escapeIdentifier(tokenColumn);
    const seq = seqColumn ? client.escapeIdentifier(seqColumn) : 'NULL';
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const byToken = new Map<string, number | null>();
    let batches = 0;
    for (let k = 0; k < tokens.length; k += batchSize) {
      options.signal?.throwIfAborted();
      const r = await client.query<{ token: string; seq: unknown }>(
        `SELECT ${tok} AS token, ${seq} AS seq FROM ${tbl} WHERE ${tok} = ANY($1::text[])`,
        [tokens.slice(k, k + batchSize)],
      );
      for (const row of r.rows) byToken.set(row.token, toSeq(row.seq));
      batches++;
    }
    // The other access path: the heap, never the token index, so the two can catch each other out.
    await client.query('SET LOCAL enable_indexscan = off');
    await client.query('SET LOCAL enable_bitmapscan = off');
    await client.query('SET LOCAL enable_indexonlyscan = off');
    const scan = await client.query<{ token: string; seq: unknown }>(
      `SELECT ${tok} AS token, ${seq} AS seq FROM ${tbl} WHERE ${tok} LIKE $1`,
      [`${tag}%`],
    );
    await client.query('COMMIT');
    return { byToken, byScan: scan.rows.map((r) => ({ token: r.token, seq: toSeq(r.seq) })), batches, ms: performance.now() - t0 };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await client.end().catch(() => undefined);
  }
}
