/**
 * A real backup source for tests: Azurite's Blob service and a PostgreSQL 15 cluster holding an
 * `orders` database (the lab's orders table plus a table of awkward types), both on loopback, both
 * stopped by `stop()`.
 */
import { join } from 'node:path';
import pg from 'pg';
import { startAzurite, type AzuriteHandle } from '../../lib/adapters/blob/index.ts';
import { initCluster, startCluster, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { backupStoreFromEnv, parseSourceUrl, type BackupStore, type PgSource } from '../../lib/adapters/postgres/backup/index.ts';
import { freePort } from './ports.ts';

export interface BackupSource {
  az: AzuriteHandle;
  port: number;
  url: string;
  src: PgSource;
  dataDir: string;
  env: Record<string, string>;
  store(prefix: string, container?: string): BackupStore;
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  insertOrders(n: number, item: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startBackupSource(dir: string): Promise<BackupSource> {
  const az = await startAzurite({ dir: join(dir, 'azurite') });
  const port = await freePort();
  const dataDir = join(dir, 'source');
  try {
    await initCluster(dataDir, { port, socketDir: join(dir, 'ss') });
    await startCluster(dataDir, { logFile: join(dir, 'source.log') });
  } catch (e) {
    await az.stop();
    throw e;
  }
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE orders');
  await admin.end();
  const url = `postgres://postgres@127.0.0.1:${port}/orders`;
  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'orders' });
    await c.connect();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end();
    }
  };
  await query(
    `CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL, token text UNIQUE, seq bigint, created_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
  await query(
    `CREATE TABLE awkward (id int PRIMARY KEY, price numeric(12,4), ratio double precision, doc jsonb, raw bytea, at timestamptz, note text)`,
  );
  await query(
    `INSERT INTO awkward SELECT g, g * 1.2345, g / 7.0, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)), decode(md5(g::text), 'hex'), '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 hour', CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END FROM generate_series(1, 500) g`,
  );
  const insertOrders = async (n: number, item: string) => {
    await query(
      `INSERT INTO orders (item, token, seq) SELECT $1, $1 || '-' || g || '-' || md5(random()::text), g FROM generate_series(1, $2::int) g`,
      [item, n],
    );
  };
  await insertOrders(2000, 'base');
  const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  return {
    az,
    port,
    url,
    src: parseSourceUrl(url),
    dataDir,
    env,
    store: (prefix, container = 'pg-backups') => backupStoreFromEnv(container, prefix, env),
    query,
    insertOrders,
    async stop() {
      await stopCluster(dataDir, 'immediate').catch(() => undefined);
      await az.stop();
    },
  };
}

/** Every row of a table as text, in key order: what "row for row" compares. */
export async function rowsOf(conn: { host: string; port: number; user: string; database: string }, table: string): Promise<string[]> {
  const c = new pg.Client(conn);
  await c.connect();
  try {
    await c.query("SET TimeZone = 'UTC'; SET extra_float_digits = 1");
    const r = await c.query<{ t: string }>(`SELECT t::text AS t FROM ${table} AS t ORDER BY 1`);
    return r.rows.map((x) => x.t);
  } finally {
    await c.end();
  }
}
