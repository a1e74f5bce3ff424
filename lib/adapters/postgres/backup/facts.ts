/**
 * What a backup's manifest says about the data, and what a restore is checked against: per table,
 * the row count and an order-independent checksum of the rows' text form, read in one snapshot.
 */
import type pg from 'pg';
import type { TableFacts } from '../../../backup/manifest.ts';

/**
 * Session settings that make a row's text form the same on every server (time zone, date style,
 * float digits): a checksum taken on the source must equal the one taken after a restore.
 */
export const STABLE_TEXT =
  "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

const USER_TABLES = `
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2`;

/**
 * Sum of the first 60 bits of each row's md5, as numeric: independent of row order (no sort of a big
 * table), and unlike XOR a duplicated row changes it.
 */
function checksumSql(client: pg.ClientBase, schema: string, name: string): string {
  const rel = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
  return `SELECT count(*)::bigint AS rows, coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text AS sum FROM ${rel} AS t`;
}

/** Row counts and checksums of every user table, in the client's current transaction/snapshot. */
export async function tableFacts(client: pg.ClientBase): Promise<TableFacts[]> {
  await client.query(STABLE_TEXT);
  const tables = await client.query<{ schema: string; name: string }>(USER_TABLES);
  const out: TableFacts[] = [];
  for (const t of tables.rows) {
    const r = await client.query<{ rows: string; sum: string }>(checksumSql(client, t.schema, t.name));
    const rows = Number(r.rows[0]!.rows);
    out.push({ schema: t.schema, name: t.name, rows, checksum: `md5sum60:${r.rows[0]!.sum}` });
  }
  return out;
}

export interface ClusterIdentity {
  systemIdentifier: string;
  serverVersion: string;
  timeline: number;
}

/**
 * A primary's timeline, from the WAL it writes (SQL, one int). pg_control's is its last checkpoint's, and a promoted
 * node runs on the new timeline for as long as the checkpoint after its promotion takes (it is not waited for).
 */
export const PRIMARY_TIMELINE_SQL = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int";

export async function clusterIdentity(client: pg.ClientBase): Promise<ClusterIdentity> {
  const r = await client.query<{ id: string; version: string; tli: number }>(
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS id, current_setting('server_version') AS version,
            CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
                 ELSE ${PRIMARY_TIMELINE_SQL} END AS tli`,
  );
  const row = r.rows[0]!;
  return { systemIdentifier: row.id, serverVersion: row.version, timeline: Number(row.tli) };
}

/** The freshness query's answer as ISO time; null when it returns no row or NULL. */
export async function newestDataAt(client: pg.ClientBase, sql: string): Promise<string | null> {
  const r = await client.query(sql);
  const v = r.rows[0] ? Object.values(r.rows[0] as Record<string, unknown>)[0] : null;
  if (v === null || v === undefined) return null;
  const d = v instanceof Date ? v : new Date(String(v));
  if (Number.isNaN(d.getTime())) throw new Error(`the freshness query returned ${JSON.stringify(v)}, not a time`);
  return d.toISOString();
}
