// The WAL shipper follows its database when it is replaced by a point-in-time restore at the same address:
// the restored cluster forks a new timeline before the point the archive reached, so pg_receivewal cannot
// go on from its spool; the shipper must notice, start over from the slot on the new timeline, archive the
// new history file and segments, and report no hole (the restored cluster still holds its WAL) nor a lag
// that reads the old timeline's position as archived. And a session that fails while pg_receivewal streams
// stops that pg_receivewal, or the next session would find the slot taken; and `--follow` aimed at a standby
// is refused at once. Real PostgreSQL 15 and Azurite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runWalShipper, type ShipperEvent } from '../../lib/adapters/postgres/backup/wal-shipper.ts';
import { lagNowMs, readWalArchiveState, type WalArchiveState } from '../../lib/adapters/postgres/backup/wal-state.ts';
import { formatLsn, lastSwitch, parseLsn, parseSegmentName, segmentNumberOf } from '../../lib/backup/wal-names.ts';
import { listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { dropScratch, readCatalog, restoreBackup, scratchRoot, takePhysicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { giveToServerUser, runServerBinary, startCluster, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { blobServiceFromEnv } from '../../lib/adapters/blob/index.ts';
import { walFolder } from '../../lib/backup/naming.ts';
import { startBackupSource } from '../support/backup-source.ts';
import { makeTempDir } from '../support/tmp.ts';
import { drillCli } from '../support/cli.ts';
import { freePort } from '../support/ports.ts';

const ARCHIVE_LAG_MS = 4000;

async function position(port: number): Promise<{ lsn: string; walFile: string }> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (
      await c.query<{ lsn: string; walFile: string }>(
        'SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS "walFile"',
      )
    ).rows[0]!;
  } finally {
    await c.end();
  }
}

/** Polls the state file until `ok` holds; returns the last state read. */
async function until(
  stateFile: string,
  ok: (s: WalArchiveState) => boolean | Promise<boolean>,
  ms: number,
): Promise<WalArchiveState | null> {
  let s: WalArchiveState | null = null;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(250)) {
    s = await readWalArchiveState(stateFile);
    if (s && (await ok(s))) return s;
  }
  return s;
}

test('a database replaced by a point-in-time restore at the same port: the new timeline is archived, no hole, lag on the new timeline', {
  timeout: 180_000,
}, async () => {
  const tmp = await makeTempDir('wal-shipper-pitr');
  const source = await startBackupSource(tmp.path);
  const ac = new AbortController();
  let restoredRoot: string | null = null;
  let shipper: Promise<void> | null = null;
  try {
    const store = source.store('pitr/');
    const stateFile = join(tmp.path, 'state.json');
    const events: ShipperEvent[] = [];
    shipper = runWalShipper(
      {
        src: source.src,
        store,
        spoolDir: join(tmp.path, 'spool'),
        stateFile,
        archiveLagMs: ARCHIVE_LAG_MS,
        firstConnect: 'fail',
        onEvent: (e) => events.push(e),
      },
      ac.signal,
    );
    const base = await takePhysicalBackup(source.src, store);
    const cluster = base.manifest.cluster.name;
    // Writes before the restore point, then after it; the archive reaches past the restore point.
    for (let i = 0; i < 20; i++) await source.insertOrders(500, 'before');
    await sleep(1100);
    const pointInTime = new Date().toISOString();
    await sleep(1100);
    for (let i = 0; i < 20; i++) await source.insertOrders(500, 'after');
    const before = await until(stateFile, async (s) => lagNowMs(s, await position(source.port), Date.now()) === 0, 30_000);
    assert.ok(before?.archivedThrough, `archived before the restore: ${JSON.stringify(before)}`);
    assert.equal(before.archivedThrough.timeline, 1);

    // The database is lost and restored to the point in time, then put where the old one was.
    await stopCluster(source.dataDir, 'immediate');
    const [entry] = await readCatalog(store, { kind: 'physical', cluster });
    restoredRoot = await scratchRoot(join(tmp.path, 'restores'));
    const restored = await restoreBackup({ store, manifest: entry!.manifest!, root: restoredRoot, pointInTime });
    assert.ok(restored.ok && restored.scratch, `restored: ${restored.problem}`);
    const dataDir = restored.scratch.dataDir;
    await stopCluster(dataDir, 'fast');
    await appendFile(join(dataDir, 'postgresql.auto.conf'), `\nport = ${source.port}\n`);
    await appendFile(join(dataDir, 'pg_hba.conf'), 'host replication all 127.0.0.1/32 trust\n');
    await startCluster(dataDir, { logFile: join(tmp.path, 'restored.log') });
    const restoredAt = await position(source.port);
    const timeline = parseSegmentName(restoredAt.walFile)!.timeline;
    assert.ok(timeline > 1, `a new timeline: ${restoredAt.walFile}`);

    // Straight after the restore the archive holds nothing of the new timeline: that is lag, not "archived".
    const right = await readWalArchiveState(stateFile);
    assert.ok(lagNowMs(right!, restoredAt, Date.now()) > 0, 'the old timeline position does not count for the new one');

    const writer = (async () => {
      for (let i = 0; i < 30; i++) {
        const c = new pg.Client({ host: '127.0.0.1', port: source.port, user: 'postgres', database: 'orders' });
        await c.connect().then(
          () =>
            c.query(
              `INSERT INTO orders (item, token, seq) SELECT 'restored', 'r-' || g || '-' || md5(random()::text), g FROM generate_series(1, 500) g`,
            ),
          () => undefined,
        );
        await c.end().catch(() => undefined);
        await sleep(200);
      }
    })();
    const after = await until(
      stateFile,
      async (s) => s.archivedThrough?.timeline === timeline && lagNowMs(s, await position(source.port), Date.now()) <= ARCHIVE_LAG_MS,
      60_000,
    );
    await writer;
    assert.equal(
      after?.archivedThrough?.timeline,
      timeline,
      `the new timeline is archived: ${JSON.stringify(after)}\n${JSON.stringify(events.filter((e) => e.type !== 'uploaded'))}`,
    );
    assert.deepEqual(after.holes, [], 'no hole: the restored cluster still had its WAL from the fork on');
    const tlHex = restoredAt.walFile.slice(0, 8);
    const names = await listArchivedWal(store, cluster);
    const blobs: string[] = [];
    for await (const b of store.container.listBlobsFlat({ prefix: walFolder(store.prefix, cluster) })) blobs.push(b.name);
    assert.ok(
      blobs.some((n) => n.endsWith(`${tlHex}.history`)),
      `history file archived: ${blobs.join(' ')}`,
    );
    const newSegments = names.filter((n) => n.startsWith(tlHex) && parseSegmentName(n)).map((n) => parseSegmentName(n)!.segno);
    assert.ok(newSegments.length > 0, names.join(' '));
    // The new timeline is archived from the segment it forked in, with no segment missing after it.
    const history = (
      await store.container.getBlockBlobClient(`${walFolder(store.prefix, cluster)}${tlHex}.history`).downloadToBuffer()
    ).toString();
    const fork = lastSwitch(history)!;
    assert.equal(fork.parent, 1);
    assert.ok(fork.switchLsn < parseLsn(before.archivedThrough.endLsn), `forked at ${formatLsn(fork.switchLsn)}, behind the archive's end`);
    assert.equal(newSegments[0], segmentNumberOf(fork.switchLsn), `first segment of timeline ${timeline}: ${names.join(' ')}`);
    for (let i = 1; i < newSegments.length; i++) assert.equal(newSegments[i], newSegments[i - 1]! + 1n, names.join(' '));
    assert.ok(events.some((e) => e.type === 'connected' && e.timeline === timeline));
  } finally {
    ac.abort();
    await shipper?.catch(() => undefined);
    if (restoredRoot) await dropScratch(restoredRoot);
    await source.stop();
    await tmp.remove();
  }
});

test('a shipper that loses its SQL connection while pg_receivewal streams stops that pg_receivewal before starting another', {
  timeout: 120_000,
}, async () => {
  const tmp = await makeTempDir('wal-shipper-session');
  const source = await startBackupSource(tmp.path);
  const ac = new AbortController();
  let shipper: Promise<void> | null = null;
  try {
    const store = source.store('session/');
    const stateFile = join(tmp.path, 'state.json');
    shipper = runWalShipper(
      { src: source.src, store, spoolDir: join(tmp.path, 'spool'), stateFile, archiveLagMs: ARCHIVE_LAG_MS, firstConnect: 'fail' },
      ac.signal,
    );
    const first = await until(stateFile, (s) => s.state === 'streaming' && s.receiverPid !== null && s.archivedThrough !== null, 30_000);
    assert.ok(first?.receiverPid, JSON.stringify(first));
    const oldReceiver = first.receiverPid;
    // The shipper's own SQL session (not its walsender) is cut, as a restarted pooler or a network blip would.
    const cut = await source.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND query LIKE '%pg_current_wal_lsn%'`,
    );
    assert.equal(cut[0]!.n, 1, "the shipper's SQL session was cut");
    const again = await until(stateFile, (s) => s.state === 'streaming' && s.receiverPid !== null && s.receiverPid !== oldReceiver, 20_000);
    assert.ok(again?.receiverPid && again.receiverPid !== oldReceiver, `a new pg_receivewal streams: ${JSON.stringify(again)}`);
    assert.throws(() => process.kill(oldReceiver, 0), 'the old pg_receivewal is gone');
    // And it ships: WAL written now reaches Blob within archiveLag, with no hole.
    await source.insertOrders(2000, 'after-cut');
    const written = await position(source.port);
    const shipped = await until(
      stateFile,
      (s) => s.archivedThrough !== null && parseLsn(s.archivedThrough.endLsn) > parseLsn(written.lsn),
      3 * ARCHIVE_LAG_MS,
    );
    assert.ok(
      shipped && parseLsn(shipped.archivedThrough!.endLsn) > parseLsn(written.lsn),
      `archived past ${written.lsn}: ${JSON.stringify(shipped)}`,
    );
    assert.deepEqual(shipped.holes, []);
  } finally {
    ac.abort();
    await shipper?.catch(() => undefined);
    await source.stop();
    await tmp.remove();
  }
});

test('drill backup --kind wal --follow pointed at a standby says so and exits 2, creating nothing', { timeout: 120_000 }, async () => {
  const tmp = await makeTempDir('wal-follow-standby');
  const source = await startBackupSource(tmp.path);
  const standbyDir = join(tmp.path, 'standby');
  try {
    await mkdir(standbyDir, { mode: 0o755 });
    await giveToServerUser(standbyDir);
    const data = join(standbyDir, 'data');
    const copy = await runServerBinary('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(source.port),
      '-U',
      'postgres',
      '-D',
      data,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    assert.equal(copy.code, 0, copy.stderr);
    const port = await freePort();
    await appendFile(join(data, 'postgresql.auto.conf'), `\nport = ${port}\nunix_socket_directories = '${standbyDir}'\n`);
    await startCluster(data, { logFile: join(standbyDir, 'standby.log') });
    const cli = drillCli(
      [
        'backup',
        `postgres://postgres@127.0.0.1:${port}/orders`,
        '--kind',
        'wal',
        '--follow',
        '--container',
        'standby-c',
        '--spool',
        join(tmp.path, 'spool'),
      ],
      { ...source.env, DRILL_LAB_DIR: join(tmp.path, 'nolab') },
    );
    // A shipper that waits for the standby to be promoted never returns: cut it off, so the test fails instead.
    const deadline = setTimeout(() => cli.child.kill('SIGKILL'), 30_000);
    const r = await cli.done;
    clearTimeout(deadline);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /is a standby \(in recovery\)/);
    assert.match(r.stderr, /point the URL at the primary/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const slots = await source.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'drill_wal_archive'",
    );
    assert.equal(slots[0]!.n, 0, 'no slot made on the primary either');
    const containers: string[] = [];
    for await (const c of blobServiceFromEnv(source.env).listContainers()) containers.push(c.name);
    assert.ok(!containers.includes('standby-c'), `no container created: ${containers.join(' ')}`);
  } finally {
    await stopCluster(join(standbyDir, 'data'), 'immediate').catch(() => undefined);
    await source.stop();
    await tmp.remove();
  }
});
