/**
 * Logical backup: `pg_dump -Fc` streamed into a block blob (parallel block upload, sha256 on the way,
 * no local copy), its table facts read in the very snapshot pg_dump dumps, then the manifest.
 */
import pg from 'pg';
import { uploadStream, type TransferProgressEvent } from '../../blob/index.ts';
import { DATA_FILE, MANIFEST_FILE, backupFolder, checkNamePart } from '../../../backup/naming.ts';
import type { BackupManifest } from '../../../backup/manifest.ts';
import { clusterIdentity, newestDataAt, tableFacts } from './facts.ts';
import { libpqArgs, type PgSource } from './source.ts';
import { lastLines, startTool, type ToolRun } from './tools.ts';
import { ensureContainer, putJson, type BackupStore } from './store.ts';
import { harnessVersion } from './version.ts';

export interface TakeBackupOptions {
  /** Name of the cluster in Blob names; default its system identifier. */
  cluster?: string;
  /** SQL returning the time of the newest row (e.g. `SELECT max(created_at) FROM orders`), for RPO. */
  freshnessQuery?: string;
  blockSize?: number;
  concurrency?: number;
  onProgress?: (p: TransferProgressEvent) => void;
  /** Told the backup's folder before anything is written to it: a caller killed mid-backup can find what it left. */
  onFolder?: (folder: string) => Promise<void>;
  signal?: AbortSignal;
}

export interface TakenBackup {
  folder: string;
  manifestBlob: string;
  manifest: BackupManifest;
  durationMs: number;
}

/** A tool's stdout that fails (instead of ending quietly) when the tool exits non-zero, so a half dump is never committed. */
export async function* checkedOutput(tool: ToolRun, what: string): AsyncGenerator<Buffer> {
  for await (const chunk of tool.stdout) yield chunk as Buffer;
  const r = await tool.done;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code ?? r.signal}): ${lastLines(r.stderr)}`);
}

export function connect(src: PgSource): pg.Client {
  // pg reads PGPASSWORD from the environment itself: the password never passes through here.
  return new pg.Client({ host: src.host, port: src.port, user: src.user, database: src.database, connectionTimeoutMillis: 10_000 });
}

export async function takeLogicalBackup(src: PgSource, store: BackupStore, o: TakeBackupOptions = {}): Promise<TakenBackup> {
  const t0 = performance.now();
  const client = connect(src);
  await client.connect();
  try {
    // One snapshot for the dump and the counts: pg_dump attaches to the snapshot this transaction exports.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = await client.query<{ snapshot: string; lsn: string; at: Date }>(
      'SELECT pg_export_snapshot() AS snapshot, CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn, clock_timestamp() AS at',
    );
    const { snapshot, lsn: startLsn, at } = snap.rows[0]!;
    const startedAt = new Date().toISOString();
    const id = await clusterIdentity(client);
    const cluster = o.cluster ?? id.systemIdentifier;
    checkNamePart('cluster name', cluster);
    checkNamePart('database name', src.database);
    const folder = backupFolder({ prefix: store.prefix, cluster, kind: 'logical', database: src.database, startedAt });
    const blobName = folder + DATA_FILE.logical;
    await o.onFolder?.(folder);
    await ensureContainer(store);

    const dump = startTool('pg_dump', ['-Fc', `--snapshot=${snapshot}`, ...libpqArgs(src)], { signal: o.signal });
    const upload = uploadStream(store.container, blobName, checkedOutput(dump, 'pg_dump'), {
      blockSize: o.blockSize,
      concurrency: o.concurrency,
      metadata: { backup_timestamp: startedAt, backup_kind: 'logical', backup_database: src.database },
      contentType: 'application/octet-stream',
      onProgress: o.onProgress,
      signal: o.signal,
    });
    // The counts run on this connection while pg_dump reads on its own, both in the same snapshot.
    const [tables, uploaded] = await Promise.all([
      tableFacts(client),
      upload.catch(async (e) => {
        dump.child.kill('SIGTERM');
        await dump.done;
        throw e;
      }),
    ]);
    const newest = o.freshnessQuery ? await newestDataAt(client, o.freshnessQuery) : null;
    await client.query('COMMIT');
    const end = await client.query<{ lsn: string }>(
      'SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn',
    );
    const manifest: BackupManifest = {
      schemaVersion: 1,
      kind: 'logical',
      database: src.database,
      cluster: { name: cluster, ...id },
      startedAt,
      endedAt: new Date().toISOString(),
      consistentAt: at.toISOString(),
      lsn: { start: startLsn, end: end.rows[0]!.lsn },
      blob: { name: blobName, bytes: uploaded.bytes, sha256: uploaded.sha256, tool: 'pg_dump -Fc' },
      walStartSegment: null,
      tables,
      newestDataAt: newest,
      harness: { version: harnessVersion() },
    };
    const manifestBlob = folder + MANIFEST_FILE;
    await putJson(store, manifestBlob, manifest, { backup_timestamp: startedAt, backup_kind: 'logical' });
    return { folder, manifestBlob, manifest, durationMs: performance.now() - t0 };
  } finally {
    await client.end().catch(() => {});
  }
}
