/**
 * How long the secondary region's database restore takes, in its steps: a PostgreSQL 15 cluster with `--mb` of
 * incompressible data, a physical base backup in the primary account's Azurite, `--wal-mb` of writes archived in
 * 16 MB rounds, every blob copied to the secondary account with the replicator's checked copy, the primary's
 * Azurite stopped (its region is lost), then restoreSecondaryDb: download (base backup + WAL from the secondary
 * account, sha256 checked; replay starts once the base backup is in), replay (untar, start, WAL replay), promote
 * (end of recovery: new timeline, end-of-recovery checkpoint, accepting writes). The probe table must come back
 * row for row or the bench fails.
 *
 *   nice node --import tsx test/bench/region-restore.ts --mb 100
 *   nice node --import tsx test/bench/region-restore.ts --mb 1000
 *
 * Not part of `npm test`. Writes results/bench/region-restore-<mb>mb.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { copyBlobVerified, listForReplication } from '../../lib/adapters/blob/replicate.ts';
import { initCluster, startCluster, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { archiveWal, takePhysicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { backupStoreFromEnv } from '../../lib/adapters/postgres/backup/store.ts';
import { parseLsn } from '../../lib/backup/wal-names.ts';
import { LAB_BACKUP_CONTAINER, labBlobEnv, primaryAzurite, startAzuriteInstance, stopLabAzurite } from '../../lib/lab/azurite.ts';
import { freePort } from '../../lib/lab/ports.ts';
import { restoreSecondaryDb, stopSecondaryRestore } from '../../lib/lab/regions/secondary-restore.ts';
import { labSecondaryBlobEnv, startSecondaryAzurite, stopSecondaryAzurite } from '../../lib/lab/regions/secondary.ts';
import { forgetConfiguredBlobStorage } from '../support/lab.ts';
import { scratchDir } from '../support/tmp.ts';

const MB = 1_000_000;
const { values: args } = parseArgs({ options: { mb: { type: 'string', default: '100' }, 'wal-mb': { type: 'string', default: '64' } } });
const targetMb = Number(args.mb);
const walMb = Number(args['wal-mb']);
forgetConfiguredBlobStorage();

const say = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const work = scratchDir('bench-region-restore');
const labDir = join(work, 'lab');
const sourceData = join(work, 'source');
const stop = new AbortController();
process.once('SIGINT', () => stop.abort(new Error('interrupted')));
const readLoad = () => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
};

let result: Record<string, unknown> = {};
try {
  await mkdir(labDir, { recursive: true, mode: 0o755 });
  await Promise.all([startAzuriteInstance(primaryAzurite(labDir)), startSecondaryAzurite(labDir)]);
  const primary = backupStoreFromEnv(LAB_BACKUP_CONTAINER, undefined, (await labBlobEnv(labDir))!.env);
  const secondary = backupStoreFromEnv(LAB_BACKUP_CONTAINER, undefined, (await labSecondaryBlobEnv(labDir))!.env);
  const port = await freePort();
  await initCluster(sourceData, { port, socketDir: join(work, 'ss') });
  await startCluster(sourceData, { logFile: join(work, 'source.log') });
  const conn = (database = 'orders') => ({ host: '127.0.0.1', port, user: 'postgres', database });
  const admin = new pg.Client(conn('postgres'));
  await admin.connect();
  await admin.query('CREATE DATABASE orders');
  const sysid = (await admin.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]!.id;
  const c = new pg.Client(conn());
  await c.connect();

  // 32 KB of random bytes per row: neither TOAST nor the tar compresses it.
  let t = performance.now();
  await c.query('CREATE TABLE payload (id int PRIMARY KEY, body bytea NOT NULL)');
  await c.query('CREATE TABLE ledger (id bigserial PRIMARY KEY, body bytea NOT NULL)');
  await c.query('CREATE TABLE probe (id int PRIMARY KEY, v text NOT NULL)');
  const n = Math.ceil((targetMb * MB) / (2048 * 16));
  for (let from = 1; from <= n; from += 1000) {
    stop.signal.throwIfAborted();
    await c.query(
      `INSERT INTO payload SELECT g, (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex') FROM generate_series(1, 2048) i) FROM generate_series($1::int, $2::int) g`,
      [from, Math.min(n, from + 999)],
    );
  }
  await c.query("INSERT INTO probe SELECT g, 'row ' || g FROM generate_series(1, 1000) g");
  const dbBytes = Number((await c.query<{ b: string }>("SELECT pg_database_size('orders') AS b")).rows[0]!.b);
  say(`data: ${(dbBytes / MB).toFixed(0)} MB in database orders (${((performance.now() - t) / 1000).toFixed(0)} s)`);

  t = performance.now();
  const taken = await takePhysicalBackup(conn(), primary, {});
  say(`base backup: ${(taken.manifest.blob.bytes / MB).toFixed(0)} MB in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // WAL after the backup, archived one 16 MB round at a time as the shipper closes segments under writes.
  const walStart = (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
  for (let done = 0; done < walMb; done += 16) {
    stop.signal.throwIfAborted();
    await c.query(
      `INSERT INTO ledger (body) SELECT (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex') FROM generate_series(1, 64) i) FROM generate_series(1, 8000) g`,
    );
    await c.query(`UPDATE probe SET v = v || '.' WHERE id % 10 = ${(done / 16) % 10}`);
    await archiveWal(admin, conn('postgres'), primary, sysid);
  }
  const walEnd = (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
  const probe = (await c.query<{ s: string }>("SELECT md5(string_agg(id || v, ',' ORDER BY id)) AS s FROM probe")).rows[0]!.s;
  await c.end();
  await admin.end();
  const walBytes = Number(parseLsn(walEnd) - parseLsn(walStart));
  say(`WAL after the backup: ${(walBytes / MB).toFixed(0)} MB archived`);

  t = performance.now();
  await secondary.container.createIfNotExists();
  let copied = 0;
  for (const b of await listForReplication(primary.container)) {
    await copyBlobVerified(primary.container, secondary.container, b);
    copied += b.contentLength;
  }
  say(`copied ${(copied / MB).toFixed(0)} MB to the secondary account in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await stopCluster(sourceData, 'fast');
  await stopLabAzurite(labDir);
  say("the primary region's database and storage are gone; restoring in the secondary");

  const load = [readLoad()];
  t = performance.now();
  const out = await restoreSecondaryDb(labDir, {
    signal: stop.signal,
    onStep: (s, ms) => say(`${s}: ${(ms / 1000).toFixed(2)} s`),
    log: say,
  });
  const totalMs = performance.now() - t;
  load.push(readLoad());
  if (!out.ok || !out.db) throw new Error(`the restore failed: ${out.problem}`);
  const check = new pg.Client({ host: '127.0.0.1', port: out.db.port, user: 'postgres', database: 'orders' });
  await check.connect();
  const after = (await check.query<{ s: string }>("SELECT md5(string_agg(id || v, ',' ORDER BY id)) AS s FROM probe")).rows[0]!.s;
  await check.end();
  if (after !== probe) throw new Error('the restored probe table differs from the source');

  const s = (x: number | undefined) => ((x ?? 0) / 1000).toFixed(2);
  result = {
    at: new Date().toISOString(),
    dataMb: dbBytes / MB,
    baseBackupMb: taken.manifest.blob.bytes / MB,
    walMb: walBytes / MB,
    timingsMs: out.timings,
    totalMs,
    loadAverage: load,
    timeline: out.db.timeline,
    reachedLsn: out.reachedLsn,
  };
  console.log(
    `Data ${(dbBytes / MB).toFixed(0)} MB (base backup ${(taken.manifest.blob.bytes / MB).toFixed(0)} MB), ${(walBytes / MB).toFixed(0)} MB of WAL replayed, from the secondary account alone.\n`,
  );
  console.log('| step | s |\n|---|---:|');
  console.log(`| download (base backup + WAL, beside replay) | ${s(out.timings.downloadMs)} |`);
  console.log(`| replay (from the base backup in) | ${s(out.timings.replayMs)} |`);
  console.log(`| promote (end of recovery) | ${s(out.timings.promoteMs)} |`);
  console.log(`| **restore, wall** | ${s(totalMs)} |`);
  console.log(`\nload average: ${load.join(' .. ')}`);
} finally {
  await stopSecondaryRestore(labDir).catch(() => undefined);
  await stopCluster(sourceData, 'immediate').catch(() => undefined);
  await Promise.allSettled([stopLabAzurite(labDir), stopSecondaryAzurite(labDir)]);
  rmSync(work, { recursive: true, force: true });
}
await mkdir('results/bench', { recursive: true });
await writeFile(`results/bench/region-restore-${targetMb}mb.json`, `${JSON.stringify(result, null, 2)}\n`);
