/**
 * RTO of the lab's live point-in-time restore, in its steps: a lab with `--mb` of incompressible data, a
 * physical base backup in the lab's Azurite, then `--wal-minutes` of steady writes whose WAL is archived every
 * `--archive-every` seconds (the one-shot archive, as a cron or the continuous shipper would), a restore point,
 * a DROP TABLE, and `restoreLive` back to just before it: download (base backup + WAL from Blob, sha256
 * checked), replay, promote, repoint, standby (rebuilt with pg_basebackup from the restored primary).
 *
 *   node --import tsx test/bench/live-restore.ts                         # 100 MB, 5 minutes of WAL, about 9 minutes
 *   node --import tsx test/bench/live-restore.ts --mb 10 --wal-minutes 0.5   # a quick check that it runs
 *
 * "checks and swap" is what the restore spends outside the named steps: finding the backup and planning the
 * archive, pg_amcheck of the restored copy, the clean stop and the move into the primary's place. The ratio
 * divides the whole restore by download + replay alone (what any restore of that backup and WAL costs).
 *
 * Not part of `npm test`. Writes results/bench/live-restore.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { archiveWal, takePhysicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { resolveBackupStore } from '../../lib/adapters/postgres/backup/resolve.ts';
import { ensureContainer } from '../../lib/adapters/postgres/backup/store.ts';
import { parseLsn } from '../../lib/backup/wal-names.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lib/lab/azurite.ts';
import { labDown, labUp } from '../../lib/lab/index.ts';
import { createLabLiveRestore } from '../../lib/targets/lab/live-restore.ts';
import { scratchDir } from '../support/tmp.ts';
import { forgetConfiguredBlobStorage } from '../support/lab.ts';

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
  const conn = (database = 'orders') => ({ host: '127.0.0.1', port: info.db.port, user: 'postgres', database });
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
  say(
    `WAL phase: ${written} rows in ${(walMs / 60_000).toFixed(1)} min, ${(walBytes / MB).toFixed(0)} MB of WAL, ${archived} segments archived`,
  );

  const timings: Record<string, number> = {};
  t = performance.now();
  const out = await live.restoreLive({
    runId: 'bench',
    target: { lsn: mark.lsn, inclusive: false },
    signal: stop.signal,
    onStep: (s, ms) => {
      timings[s] = ms;
      say(`${s}: ${(ms / 1000).toFixed(2)} s`);
    },
    log: say,
  });
  const totalMs = performance.now() - t;
  if (!out.ok) throw new Error(`the restore failed: ${out.problem}`);
  const check = new pg.Client(conn());
  await check.connect();
  const probeAfter = (await check.query<{ s: string }>("SELECT md5(string_agg(id || v, ',' ORDER BY id)) AS s FROM probe")).rows[0]!.s;
  await check.end();
  if (probeAfter !== probeBefore) throw new Error('the restored probe table differs from the one at the mark');

  const named = ['download', 'replay', 'promote', 'repoint', 'standby'];
  const stepsMs = named.reduce((s, k) => s + (timings[k] ?? 0), 0);
  const rows: [string, number][] = [...named.map((k) => [k, timings[k] ?? 0] as [string, number]), ['checks and swap', totalMs - stepsMs]];
  const baseline = (timings.download ?? 0) + (timings.replay ?? 0);
  result = {
    at: new Date().toISOString(),
    dataMb: dbBytes / MB,
    baseBackupMb: taken.manifest.blob.bytes / MB,
    walMb: walBytes / MB,
    walMinutes: walMs / 60_000,
    rowsWritten: written,
    timingsMs: timings,
    totalMs,
    servingMs: totalMs - (timings.standby ?? 0),
    ratioToDownloadPlusReplay: totalMs / baseline,
    reachedLsn: out.reachedLsn,
    markLsn: mark.lsn,
  };
  console.log(
    `Data ${(dbBytes / MB).toFixed(0)} MB (base backup ${(taken.manifest.blob.bytes / MB).toFixed(0)} MB), ${(walMs / 60_000).toFixed(1)} min of writes = ${(walBytes / MB).toFixed(0)} MB of WAL replayed.\n`,
  );
  console.log('| step | s | share |\n|---|---:|---:|');
  for (const [name, ms] of rows) console.log(`| ${name} | ${(ms / 1000).toFixed(2)} | ${((100 * ms) / totalMs).toFixed(0)}% |`);
  console.log(`| **total** | **${(totalMs / 1000).toFixed(2)}** | 100% |`);
  // The service answers from the restored primary once the endpoint is repointed; the standby is rebuilt after.
  const servingMs = totalMs - (timings.standby ?? 0);
  console.log(
    `\nserving again after ${(servingMs / 1000).toFixed(2)} s (all but the standby rebuild); whole restore / (download + replay alone): ${(totalMs / baseline).toFixed(2)}, serving / (download + replay): ${(servingMs / baseline).toFixed(2)}`,
  );
} finally {
  await labDown({ dir }).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
await mkdir('results/bench', { recursive: true });
await writeFile('results/bench/live-restore.json', `${JSON.stringify(result, null, 2)}\n`);
