/**
 * Physical backup: `pg_basebackup -Ft -X fetch` written to stdout and streamed into a block blob (one
 * tar holding the data directory, the WAL it needs to be consistent and PostgreSQL's backup_manifest),
 * then the WAL archive brought up to date, then the manifest.
 *
 * The table facts of a physical backup are read right after pg_basebackup ends, in a fresh snapshot:
 * exact when nothing writes during the backup, otherwise a close neighbour of the backup's end point.
 */
import { uploadStream } from '../../blob/index.ts';
import { DATA_FILE, MANIFEST_FILE, backupFolder, checkNamePart } from '../../../backup/naming.ts';
import type { BackupManifest } from '../../../backup/manifest.ts';
import { clusterIdentity, newestDataAt, tableFacts } from './facts.ts';
import { checkedOutput, connect, type TakeBackupOptions, type TakenBackup } from './logical.ts';
import type { PgSource } from './source.ts';
import { startTool } from './tools.ts';
import { ensureContainer, putJson, type BackupStore } from './store.ts';
import { archiveWal, ensureArchiveSlot, type WalArchiveResult } from './wal.ts';
import { harnessVersion } from './version.ts';

export async function takePhysicalBackup(
  src: PgSource,
  store: BackupStore,
  o: TakeBackupOptions = {},
): Promise<TakenBackup & { wal: WalArchiveResult }> {
  const t0 = performance.now();
  const client = connect(src);
  await client.connect();
  try {
    const id = await clusterIdentity(client);
    const cluster = o.cluster ?? id.systemIdentifier;
    checkNamePart('cluster name', cluster);
    // The slot first: WAL written from here on stays on the server until it is in the archive.
    await ensureArchiveSlot(client);
    const startedAt = new Date().toISOString();
    const folder = backupFolder({ prefix: store.prefix, cluster, kind: 'physical', database: src.database, startedAt });
    const blobName = folder + DATA_FILE.physical;
    await o.onFolder?.(folder);
    await ensureContainer(store);
    const base = startTool(
      'pg_basebackup',
      ['-h', src.host, '-p', String(src.port), '-U', src.user, '-D', '-', '-Ft', '-X', 'fetch', '-c', 'fast', '-v'],
      { signal: o.signal },
    );
    const uploaded = await uploadStream(store.container, blobName, checkedOutput(base, 'pg_basebackup'), {
      blockSize: o.blockSize,
      concurrency: o.concurrency,
      metadata: { backup_timestamp: startedAt, backup_kind: 'physical' },
      contentType: 'application/x-tar',
      onProgress: o.onProgress,
      signal: o.signal,
    }).catch(async (e) => {
      base.child.kill('SIGTERM');
      await base.done;
      throw e;
    });
    const log = (await base.done).stderr;
    const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/.exec(log);
    const end = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/.exec(log);
    if (!start || !end) throw new Error(`pg_basebackup did not report its WAL range: ${log.slice(-400)}`);
    const endedAt = new Date().toISOString();
    const seg = await client.query<{ f: string }>('SELECT pg_walfile_name($1::pg_lsn) AS f', [start[1]]);
    const timeline = Number(start[2]);
    // pg_walfile_name uses the server's current timeline; the backup's own is the one pg_basebackup named.
    const walStartSegment = timeline.toString(16).toUpperCase().padStart(8, '0') + seg.rows[0]!.f.slice(8);

    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const tables = await tableFacts(client);
    const newest = o.freshnessQuery ? await newestDataAt(client, o.freshnessQuery) : null;
    await client.query('COMMIT');
    const wal = await archiveWal(client, src, store, cluster, o.signal);

    const manifest: BackupManifest = {
      schemaVersion: 1,
      kind: 'physical',
      database: src.database,
      cluster: { name: cluster, ...id, timeline },
      startedAt,
      endedAt,
      consistentAt: endedAt,
      lsn: { start: start[1]!, end: end[1]! },
      blob: { name: blobName, bytes: uploaded.bytes, sha256: uploaded.sha256, tool: 'pg_basebackup -Ft -X fetch' },
      walStartSegment,
      tables,
      newestDataAt: newest,
      harness: { version: harnessVersion() },
    };
    const manifestBlob = folder + MANIFEST_FILE;
    await putJson(store, manifestBlob, manifest, { backup_timestamp: startedAt, backup_kind: 'physical' });
    return { folder, manifestBlob, manifest, durationMs: performance.now() - t0, wal };
  } finally {
    await client.end().catch(() => {});
  }
}
