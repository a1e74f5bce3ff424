/**
 * RTO of the lab's live point-in-time restore, in its steps, against a bare restore of the same backup and WAL:
 * a lab with `--mb` of incompressible data, a physical base backup in the lab's Azurite, then `--wal-minutes` of
 * steady writes whose WAL is archived every `--archive-every` seconds (the one-shot archive, as a cron or the
 * continuous shipper would), a restore point, a DROP TABLE, then
 *
 * - the baseline, "download + replay alone": the same base backup and segments downloaded with the same ranged
 *   SDK download, untarred, and replayed by a plain PostgreSQL recovery (`restore_command = cp`) until it pauses
 *   at the same target; no checks, no swap, nothing overlapped. Run before and after the restore (page cache and
 *   machine load move between runs); the figure used is their mean.
 * - `restoreLive` back to just before the DROP: download (base backup + WAL from Blob, sha256 checked; replay
 *   starts once the base backup is in, while the WAL still downloads), replay, promote, pg_amcheck, the swap,
 *   repoint (the service serves again), standby (copied from the restored copy, begun while pg_amcheck ran and
 *   finished behind the serving primary, then started).
 *
 *   node --import tsx test/bench/live-restore.ts                         # 100 MB, 5 minutes of WAL, about 10 minutes
 *   node --import tsx test/bench/live-restore.ts --mb 10 --wal-minutes 0.5 --archive-every 10   # a quick check
 *
 * Steps overlap, so the breakdown is read from when each ended: "download ∪ replay" is from the first byte asked
 * for to the target reached; "checks and swap" is what the restore spends outside the named steps (finding the
 * backup and planning the archive, pg_amcheck, killing and moving the damaged nodes aside, linking the copy in
 * as the primary's data directory); "serving again" is when the endpoint was repointed to the restored primary.
 *
 * Not part of `npm test`. Writes results/bench/live-restore.json.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { downloadToFileParallel, freeLoopbackPort } from '../../lib/adapters/blob/index.ts';
import { giveToServerUser, isRoot, startCluster, stopCluster, writeNodeConf } from '../../lib/adapters/postgres/cluster.ts';
import { archiveWal, takePhysicalBackup, type BackupStore } from '../../lib/adapters/postgres/backup/index.ts';
import { listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { planArchive } from '../../lib/adapters/postgres/backup/pitr.ts';
import { run } from '../../lib/adapters/postgres/backup/scratch.ts';
import type { BackupManifest } from '../../lib/backup/manifest.ts';
import { walFolder } from '../../lib/backup/naming.ts';
import { resolveBackupStore } from '../../lib/adapters/postgres/backup/resolve.ts';
import { ensureContainer } from '../../lib/adapters/postgres/backup/store.ts';
import { parseLsn } from '../../lib/backup/wal-names.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lib/lab/azurite.ts';
import { labDown, labUp } from '../../lib/lab/index.ts';
import { createLabLiveRestore } from '../../lib/targets/lab/live-restore.ts';
import { scratchDir } from '../support/tmp.ts';
import { forgetConfiguredBlobStorage, labPrimaryPort } from '../support/lab.ts';

const MB = 1_000_000;
const { values: args } = parseArgs({
  options: {
    mb: { type: 'string', default: '100' },
    'wal-minutes': { type: 'string', default: '5' },
    'archive-every': { type: 'string', default: '60' },
    /** Rows a second during the WAL phase, 1 KB of random bytes each. */
    rate: { type: 'string', default: '200' },
  },
});
const targetMb = Number(args.mb);
const walMs = Number(args['wal-minutes']) * 60_000;
const archiveEveryMs = Number(args['archive-every']) * 1000;
const rate = Number(args.rate);
forgetConfiguredBlobStorage();

const say = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const work = scratchDir('bench-live-restore');
const dir = join(work, 'lab');
const stop = new AbortController();
process.once('SIGINT', () => stop.abort(new Error('interrupted')));

let result: Record<string, unknown> = {};
try {
  const info = await labUp({ dir, replicas: 1 });
  const conn = (database = 'orders') => ({ host: '127.0.0.1', port: labPrimaryPort(info.dir), user: 'postgres', database });
  const c = new pg.Client(conn());
  await c.connect();
  const sysid = (await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]!.id;

  // 32 KB of random bytes per row: neither TOAST nor the tar compresses it.
  let t = performance.now();
  await c.query('CREATE TABLE payload (id int PRIMARY KEY, body bytea NOT NULL)');
  await c.query('CREATE TABLE ledger (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)');
  await c.query('CREATE TABLE probe (id int PRIMARY KEY, v text NOT NULL)');
  const perRow = 2048 * 16;
  const n = Math.ceil((targetMb * MB) / perRow);
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

  const r = await resolveBackupStore({ lab: labBlobSource(dir), container: LAB_BACKUP_CONTAINER });
  if ('missing' in r) throw new Error('the lab Azurite resolved to no container');
  const store = r.store;
  await ensureContainer(store);
  t = performance.now();
  const taken = await takePhysicalBackup(conn(), store, {});
  say(`base backup: ${(taken.manifest.blob.bytes / MB).toFixed(0)} MB in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // Steady writes for the WAL phase, archived every archiveEvery as the continuous shipper bounds the lag.
  const walStart = (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
  const archiver = new pg.Client(conn('postgres'));
  await archiver.connect();
  const end = performance.now() + walMs;
  let nextArchive = performance.now() + archiveEveryMs;
  let written = 0;
  let archived = 0;
  const perTick = Math.max(1, Math.round(rate / 10));
  while (performance.now() < end) {
    stop.signal.throwIfAborted();
    const tick = performance.now();
    await c.query(
      `INSERT INTO ledger (body) SELECT (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex') FROM generate_series(1, 64) i) FROM generate_series(1, $1::int) g`,
      [perTick],
    );
    written += perTick;
    if (performance.now() >= nextArchive) {
      archived += (await archiveWal(archiver, conn(), store, sysid)).uploaded.length;
      nextArchive += archiveEveryMs;
    }
    const wait = 100 - (performance.now() - tick);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  const probeBefore = (await c.query<{ s: string }>("SELECT md5(string_agg(id || v, ',' ORDER BY id)) AS s FROM probe")).rows[0]!.s;
  const live = createLabLiveRestore(dir, async () => info.controlUrl);
  const mark = await live.markRestorePoint(stop.signal);
  await c.query('DROP TABLE probe');
  archived += (await archiveWal(archiver, conn(), store, sysid)).uploaded.length;
  await archiver.end();
  await c.end();
  const walBytes = Number(parseLsn(mark.lsn) - parseLsn(walStart));
  // The lab's own archiver ships most segments before the bench's one-shot archive looks: count what Blob holds.
  const inArchive = (await listArchivedWal(store, sysid)).filter((n) => !n.endsWith('.history')).length;
  say(
    `WAL phase: ${written} rows in ${(walMs / 60_000).toFixed(1)} min, ${(walBytes / MB).toFixed(0)} MB of WAL; ${inArchive} segments in the archive (${archived} shipped by the bench's one-shot archive, the rest by the lab's archiver)`,
  );

  const target = { lsn: mark.lsn, inclusive: false as const };
  const bare = async (label: string) => {
    const b = await bareRestore(store, taken.manifest, target.lsn, join(work, `bare-${label}`));
    say(`baseline (${label}): download ${(b.downloadMs / 1000).toFixed(2)} s, replay ${(b.replayMs / 1000).toFixed(2)} s`);
    return b;
  };
  const before = await bare('before');

  const timings: Record<string, number> = {};
  /** When each step ended, from the start of the restore. */
  const endedAt: Record<string, number> = {};
  const load: string[] = [readLoad()];
  const loadTimer = setInterval(() => load.push(readLoad()), 5000);
  t = performance.now();
  const out = await live.restoreLive({
    runId: 'bench',
    target,
    signal: stop.signal,
    onStep: (s, ms) => {
      timings[s] = ms;
      endedAt[s] = performance.now() - t;
      say(`${s}: ${(ms / 1000).toFixed(2)} s`);
    },
    log: say,
  });
  const totalMs = performance.now() - t;
  clearInterval(loadTimer);
  load.push(readLoad());
  if (!out.ok) throw new Error(`the restore failed: ${out.problem}`);
  const check = new pg.Client(conn());
  await check.connect();
  const probeAfter = (await check.query<{ s: string }>("SELECT md5(string_agg(id || v, ',' ORDER BY id)) AS s FROM probe")).rows[0]!.s;
  await check.end();
  if (probeAfter !== probeBefore) throw new Error('the restored probe table differs from the one at the mark');
  const after = await bare('after');

  const ms = (k: string) => timings[k] ?? 0;
  const downloadStart = endedAt.download! - ms('download');
  const downloadReplayMs = endedAt.replay! - downloadStart;
  const servingMs = endedAt.repoint!;
  const checksMs = downloadStart + (endedAt.repoint! - ms('repoint') - endedAt.promote!);
  const baseline = { downloadMs: (before.downloadMs + after.downloadMs) / 2, replayMs: (before.replayMs + after.replayMs) / 2 };
  const baselineMs = baseline.downloadMs + baseline.replayMs;
  result = {
    at: new Date().toISOString(),
    dataMb: dbBytes / MB,
    baseBackupMb: taken.manifest.blob.bytes / MB,
    walMb: walBytes / MB,
    downloadedMb: before.bytes / MB,
    walMinutes: walMs / 60_000,
    rowsWritten: written,
    timingsMs: timings,
    downloadReplayMs,
    checksAndSwapMs: checksMs,
    totalMs,
    servingMs,
    baselineMs: { before, after, mean: baseline },
    ratioTotalToBaseline: totalMs / baselineMs,
    ratioServingToBaseline: servingMs / baselineMs,
    loadAverage: load,
    reachedLsn: out.reachedLsn,
    markLsn: mark.lsn,
  };
  const sec = (x: number) => (x / 1000).toFixed(2);
  console.log(
    `Data ${(dbBytes / MB).toFixed(0)} MB (base backup ${(taken.manifest.blob.bytes / MB).toFixed(0)} MB), ${(walMs / 60_000).toFixed(1)} min of writes = ${(walBytes / MB).toFixed(0)} MB of WAL replayed; ${(before.bytes / MB).toFixed(0)} MB downloaded.\n`,
  );
  console.log('| step | s |\n|---|---:|');
  for (const [name, x] of [
    ['download (base backup + WAL)', ms('download')],
    ['replay (from the base backup in)', ms('replay')],
    ['download ∪ replay (wall)', downloadReplayMs],
    ['promote', ms('promote')],
    ['checks and swap', checksMs],
    ['repoint', ms('repoint')],
    ['**serving again**', servingMs],
    ['standby (after serving)', ms('standby')],
    ['**total**', totalMs],
  ] as [string, number][])
    console.log(`| ${name} | ${sec(x)} |`);
  console.log(
    `\nbaseline download + replay alone: ${sec(baseline.downloadMs)} + ${sec(baseline.replayMs)} = ${sec(baselineMs)} s (before ${sec(before.downloadMs + before.replayMs)}, after ${sec(after.downloadMs + after.replayMs)})`,
  );
  console.log(
    `whole restore / baseline: ${(totalMs / baselineMs).toFixed(2)}; serving again / baseline: ${(servingMs / baselineMs).toFixed(2)}; load average during the restore: ${load[0]} .. ${load[load.length - 1]}`,
  );
} finally {
  await labDown({ dir }).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
await mkdir('results/bench', { recursive: true });
await writeFile('results/bench/live-restore.json', `${JSON.stringify(result, null, 2)}\n`);

function readLoad(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

/**
 * Download + replay alone: the backup and the same segments fetched (base and segments at once, as fast as the
 * restore's own download), untarred, and a plain recovery to the target, timed until it pauses there.
 */
async function bareRestore(
  store: BackupStore,
  manifest: BackupManifest,
  lsn: string,
  root: string,
): Promise<{ downloadMs: number; replayMs: number; bytes: number }> {
  const { plan, histories } = await planArchive(store, manifest, { lsn, inclusive: false });
  const data = join(root, 'data');
  const wal = join(root, 'wal');
  await mkdir(wal, { recursive: true, mode: 0o755 });
  let bytes = 0;
  let t = performance.now();
  const queue = [...plan.needed];
  const folder = walFolder(store.prefix, manifest.cluster.name);
  const segments = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const got = await downloadToFileParallel(store.container.getBlobClient(folder + f), join(wal, f), { concurrency: 2 });
      bytes += got.bytes;
    }
  };
  const base = downloadToFileParallel(store.container.getBlobClient(manifest.blob.name), join(root, 'base.tar'), { concurrency: 4 });
  const [got] = await Promise.all([base, segments(), segments(), segments()]);
  bytes += got.bytes;
  for (const [f, text] of histories) await writeFile(join(wal, f), text);
  const downloadMs = performance.now() - t;

  t = performance.now();
  await mkdir(data, { mode: 0o700 });
  await run('tar', ['-xf', join(root, 'base.tar'), '-C', data]);
  const port = await freeLoopbackPort();
  await writeNodeConf(data, { port, socketDir: join(root, 'sock') });
  await writeFile(
    join(data, 'postgresql.auto.conf'),
    `restore_command = 'cp ${wal}/%f %p'\nrecovery_target_lsn = '${lsn}'\nrecovery_target_inclusive = false\nrecovery_target_action = 'pause'\n`,
  );
  for (const f of ['standby.signal', 'postmaster.pid']) await rm(join(data, f), { force: true });
  await writeFile(join(data, 'recovery.signal'), '');
  if (isRoot()) await run('chown', ['-R', 'postgres:postgres', root]);
  await giveToServerUser(root);
  await startCluster(data, { logFile: join(root, 'postgres.log'), timeoutMs: 600_000 });
  try {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      for (;;) {
        const r = await c.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s');
        if (r.rows[0]!.s === 'paused') break;
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally {
      await c.end();
    }
    return { downloadMs, replayMs: performance.now() - t, bytes };
  } finally {
    await stopCluster(data, 'immediate', { timeoutMs: 30_000 });
    await rm(root, { recursive: true, force: true });
  }
}
