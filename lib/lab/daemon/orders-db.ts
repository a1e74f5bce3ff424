/**
 * The orders service's data access. `token` (unique) and `seq` are for the write ledger: a client-made
 * token proves a write survived a failover even when the promoted node reuses serial ids.
 */
import pg from 'pg';

// int8 comes back as a string by default; ids and ledger seqs stay far below 2^53, so numbers are exact.
pg.types.setTypeParser(20, (v) => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
});

export interface Order {
  id: number;
  item: string;
  token: string | null;
  seq: number | null;
  created_at: string;
}

export interface NewOrder {
  item: string;
  token?: string | null;
  seq?: number | null;
}

const SCHEMA_LOCK = 'drill.lab.orders.schema';

/**
 * Replicas start together and race to create the table; concurrent CREATE TABLE IF NOT EXISTS can still
 * fail on the catalog's unique index, so creation is serialised by a transaction-scoped advisory lock.
 */
export async function ensureSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [SCHEMA_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS orders (
      id bigserial PRIMARY KEY,
      item text NOT NULL,
      token text UNIQUE,
      seq bigint,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

export async function recentOrders(pool: pg.Pool, limit: number): Promise<Order[]> {
  const r = await query<Order>(pool, 'SELECT id, item, token, seq, created_at FROM orders ORDER BY id DESC LIMIT $1', [limit]);
  return r.rows;
}

/** The order a client wrote with `token` ([] when there is none). */
export async function ordersByToken(pool: pg.Pool, token: string): Promise<Order[]> {
  const r = await query<Order>(pool, 'SELECT id, item, token, seq, created_at FROM orders WHERE token = $1', [token]);
  return r.rows;
}

export async function insertOrder(pool: pg.Pool, o: NewOrder): Promise<Order> {
  const r = await query<Order>(
    pool,
    'INSERT INTO orders (item, token, seq) VALUES ($1, $2, $3) RETURNING id, item, token, seq, created_at',
    [o.item, o.token ?? null, o.seq ?? null],
  );
  return r.rows[0]!;
}

/**
 * SQLSTATE classes after which the session is as good as before: the statement failed, not the connection
 * (cardinality, data, integrity, transaction rollback, syntax or access rule such as an undefined table, WITH
 * CHECK OPTION, feature not supported).
 */
const SESSION_KEEPING_CLASSES = new Set(['21', '22', '23', '40', '42', '44', '0A']);

/**
 * Whether a failed query leaves its connection fit for the next one. Anything else (no SQLSTATE: a broken
 * socket or the client's query timeout; class 08 connection, 25 read-only on a demoted node, 53 resources,
 * 57 shutdown, 58 system, XX internal) drops it, so the next query reconnects through the endpoint.
 */
export function keepsSession(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && SESSION_KEEPING_CLASSES.has(code.slice(0, 2));
}

/**
 * pool.query, keeping the connection after a statement's own error. node-postgres' pool.query closes the
 * connection on any error: once a table was dropped, every request opened a new backend (200 a second under
 * the lab drill's load), which took the lab's two cores from the restore meant to bring the table back, and
 * requests timed out instead of failing fast. A production pool (HikariCP, pgx) drops only broken connections.
 */
async function query<T extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[]): Promise<pg.QueryResult<T>> {
  const client = await pool.connect();
  // pool.query listens too: a checked-out client's connection error must not reach the process unhandled.
  const onError = () => {};
  client.on('error', onError);
  let failure: unknown;
  try {
    return await client.query<T>(text, values);
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    client.removeListener('error', onError);
    client.release(failure === undefined || keepsSession(failure) ? undefined : (failure as Error));
  }
}

/** Validates a POST body; returns the order to insert or a message for a 400. */
export function parseNewOrder(body: unknown): NewOrder | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.item !== 'string' || b.item.length === 0 || b.item.length > 200) return '`item` must be a string of 1-200 characters';
  if (b.token !== undefined && b.token !== null && (typeof b.token !== 'string' || b.token.length === 0 || b.token.length > 200)) {
    return '`token` must be a string of 1-200 characters';
  }
  let seq: number | null = null;
  if (b.seq !== undefined && b.seq !== null) {
    seq = typeof b.seq === 'string' && /^-?\d+$/.test(b.seq) ? Number(b.seq) : (b.seq as number);
    if (!Number.isSafeInteger(seq)) return '`seq` must be an integer within ±2^53';
  }
  return { item: b.item, token: (b.token as string | undefined) ?? null, seq };
}
