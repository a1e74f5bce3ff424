// The lab's continuous WAL archive, on the real lab (PostgreSQL 15 pair, Azurite, the orders service): a fresh lab
// has a base backup and WAL; under a steady write load through the front the archive's lag, as `lab status` reports
// it, stays within archiveLag; the archiver SIGKILLed by PID mid-stream is restarted and the archive has no missing
// segment; a stopped archiver is a `wal-archive` problem (`drill lab status` exit 1) until it runs again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { LAB_BACKUP_CONTAINER, labBlobEnv } from '../../lib/lab/azurite.ts';
import { backupStoreFromEnv, readCatalog } from '../../lib/adapters/postgres/backup/index.ts';
import { listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { gapsIn, compareSegments } from '../../lib/adapters/postgres/backup/wal-segments.ts';
import { parseSegmentName } from '../../lib/backup/wal-names.ts';
import { readWalArchiveState } from '../../lib/adapters/postgres/backup/wal-state.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { isProcessUnder } from '../../lib/util/proc.ts';
import { labFixture } from '../support/lab.ts';
import { drillCli } from '../support/cli.ts';
import { createLabDatabase } from '../../lib/targets/lab/database.ts';

const ARCHIVE_LAG_MS = 4000;

/** POSTs an order through the front every 50 ms until stopped; counts what was acknowledged. */
function steadyWrites(serviceUrl: string): { stop(): Promise<number> } {
  let running = true;
  let acked = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const r = await fetch(`${serviceUrl}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: `archive-load-${i}`, token: `archive-${Date.now()}-${i}` }),
        signal: AbortSignal.timeout(2000),
      }).catch(() => null);
      if (r?.status === 201) acked++;
      await r?.arrayBuffer();
      await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return acked;
    },
  };
}

async function archiverPid(dir: string): Promise<number | null> {
  return (await labStatus({ dir })).archive?.pid ?? null;
}

describe('the lab WAL archive', { timeout: 240_000 }, () => {
  const lab = labFixture('lab-wal-archive');

  test('keeps up under load, survives its archiver being killed without a hole, and a stopped archiver is a problem', async () => {
    const info = await labUp({ dir: lab.dir, replicas: 2, archiveLagMs: ARCHIVE_LAG_MS });
    const first = await labStatus({ dir: lab.dir });
    assert.deepEqual(first.problems, []);
    assert.ok(first.archive?.baseBackup, `a fresh lab has a base backup: ${JSON.stringify(first.archive)}`);
    assert.ok(first.archive?.archivedThrough, 'and archived WAL');
    assert.equal(first.archive?.archiveLagSeconds, ARCHIVE_LAG_MS / 1000);
    const pid0 = first.archive!.pid!;
    lab.seen.add(pid0);

    const writes = steadyWrites(info.serviceUrl);
    let acked = 0;
    try {
      // Steady load: the lag `lab status` reports, every 500 ms for 15 s (after the first switch at half the lag).
      await sleep(ARCHIVE_LAG_MS);
      const lags: number[] = [];
      for (const until = Date.now() + 15_000; Date.now() < until; await sleep(500)) {
        const s = await labStatus({ dir: lab.dir });
        lags.push(s.archive?.lagSeconds ?? Number.NaN);
        assert.deepEqual(
          s.problems.filter((p) => p.part === 'wal-archive'),
          [],
        );
      }
      const worst = Math.max(...lags);
      process.stdout.write(
        `# lab archive lag under load: worst ${worst}s over ${lags.length} readings (allowed ${ARCHIVE_LAG_MS / 1000}s)\n`,
      );
      assert.ok(worst <= ARCHIVE_LAG_MS / 1000, `worst lag ${worst}s: ${lags.join(' ')}`);
      assert.ok(
        lags.some((l) => l > 0),
        'lag measured',
      );

      // SIGKILL mid-stream: the daemon starts another; the one it leaves behind (pg_receivewal) is stopped by it.
      const receiver = (await readWalArchiveState(labPaths(lab.dir).walArchive.state))?.receiverPid;
      assert.ok(receiver, 'a pg_receivewal streams');
      process.kill(pid0, 'SIGKILL');
      let pid1: number | null = null;
      for (const until = Date.now() + 15_000; Date.now() < until && (pid1 === null || pid1 === pid0); await sleep(200))
        pid1 = await archiverPid(lab.dir);
      assert.ok(pid1 !== null && pid1 !== pid0, `restarted: ${pid1}`);
      lab.seen.add(pid1);
      for (const until = Date.now() + 10_000; Date.now() < until && (await isProcessUnder(receiver, lab.dir)); ) await sleep(200);
      assert.equal(await isProcessUnder(receiver, lab.dir), false, `the orphaned pg_receivewal ${receiver} was stopped`);
      await sleep(8000);
    } finally {
      acked = await writes.stop();
    }
    assert.ok(acked > 50, `writes acknowledged: ${acked}`);

    // Everything written is archived within the lag, with no segment missing from the base backup's first on.
    let s = await labStatus({ dir: lab.dir });
    for (const until = Date.now() + 2 * ARCHIVE_LAG_MS; Date.now() < until && s.archive?.lagSeconds !== 0; await sleep(250))
      s = await labStatus({ dir: lab.dir });
    assert.equal(s.archive?.lagSeconds, 0, JSON.stringify(s.archive));
    assert.equal(s.archive?.restarts, 1);
    const blob = await labBlobEnv(lab.dir);
    const store = backupStoreFromEnv(LAB_BACKUP_CONTAINER, '', blob!.env);
    const [base] = await readCatalog(store, { kind: 'physical' });
    assert.ok(base, 'base backup listed');
    const cluster = base.manifest!.cluster.name;
    const segments = (await listArchivedWal(store, cluster)).filter((n) => !n.endsWith('.history'));
    const from = segments.filter((n) => compareSegments(parseSegmentName(n)!, parseSegmentName(base.manifest!.walStartSegment!)!) >= 0);
    assert.equal(from[0], base.manifest!.walStartSegment, `the archive starts at the base backup's first segment: ${segments.join(' ')}`);
    assert.deepEqual(gapsIn(from), [], `contiguous: ${from.join(' ')}`);
    assert.equal(from.at(-1), s.archive?.archivedThrough);
    assert.ok(from.length >= 6, `segments: ${from.length}`);

    // A stopped archiver (SIGSTOP: the daemon sees it alive, it ships nothing): a problem once the lag passes archiveLag.
    const pid = s.archive!.pid!;
    process.kill(pid, 'SIGSTOP');
    const more = steadyWrites(info.serviceUrl);
    try {
      let cli = await drillCli(['lab', 'status'], { DRILL_LAB_DIR: lab.dir }).done;
      for (const until = Date.now() + 4 * ARCHIVE_LAG_MS; Date.now() < until && cli.code === 0; await sleep(500))
        cli = await drillCli(['lab', 'status'], { DRILL_LAB_DIR: lab.dir }).done;
      assert.equal(cli.code, 1, cli.stdout);
      assert.match(cli.stdout, /problem: wal-archive: the archive lags [\d.]+s behind the primary \(allowed 4s\)/);
      assert.match(cli.stdout, /wal archive {2}streaming \(pid \d+\), archived through [0-9A-F]{24}/);
    } finally {
      process.kill(pid, 'SIGCONT');
      await more.stop();
    }
    let healed = await labStatus({ dir: lab.dir });
    for (const until = Date.now() + 3 * ARCHIVE_LAG_MS; Date.now() < until && healed.problems.length > 0; await sleep(250))
      healed = await labStatus({ dir: lab.dir });
    assert.deepEqual(healed.problems, [], 'the archive caught up once the archiver ran again');

    // lab down stops the archiver with the daemon.
    await labDown({ dir: lab.dir });
    assert.equal(await isProcessUnder(pid, lab.dir), false, 'archiver stopped by lab down');
  });
});

describe('the lab WAL archive across a failover', { timeout: 240_000 }, () => {
  const lab = labFixture('lab-wal-failover');

  test('after the primary is killed and the standby promoted, the new timeline is archived with its history file, contiguous with the old one', async () => {
    const info = await labUp({ dir: lab.dir, replicas: 1, archiveLagMs: ARCHIVE_LAG_MS });
    const db = createLabDatabase(info);
    const writes = steadyWrites(info.serviceUrl);
    let newPrimary = '';
    try {
      await sleep(3000);
      const old = (await db.provider.topology()).primary!;
      await db.crash(old, 'kill');
      const r = await db.provider.failover({ timeoutMs: 30_000, signal: AbortSignal.timeout(60_000) });
      newPrimary = r.newPrimary.name;
      await sleep(3 * ARCHIVE_LAG_MS);
      // The old primary rejoins as the standby, from the new primary's WAL (the archiver's switches must not have cost it that WAL).
      await db.provider.rejoin(old, { timeoutMs: 90_000, signal: AbortSignal.timeout(120_000) });
    } finally {
      await writes.stop();
    }
    let s = await labStatus({ dir: lab.dir });
    for (
      const until = Date.now() + 20_000;
      Date.now() < until && (s.archive?.timeline !== 2 || s.archive?.lagSeconds !== 0);
      await sleep(500)
    )
      s = await labStatus({ dir: lab.dir });
    if (s.archive?.pid) lab.seen.add(s.archive.pid);
    assert.equal(s.database?.primary, newPrimary);
    assert.deepEqual(s.problems, [], 'the lab is whole again, its archive included');
    assert.equal(s.archive?.timeline, 2, `archive on the new timeline: ${JSON.stringify(s.archive)}`);
    assert.deepEqual(s.archive?.holes, []);
    const blob = await labBlobEnv(lab.dir);
    const store = backupStoreFromEnv(LAB_BACKUP_CONTAINER, '', blob!.env);
    const [base] = await readCatalog(store, { kind: 'physical' });
    const names = await listArchivedWal(store, base!.manifest!.cluster.name);
    assert.ok(names.includes('00000002.history'), `history file archived: ${names.join(' ')}`);
    const segments = names.filter((n) => !n.endsWith('.history'));
    assert.ok(segments.some((n) => n.startsWith('00000001')) && segments.some((n) => n.startsWith('00000002')), segments.join(' '));
    assert.deepEqual(gapsIn(segments), [], `contiguous across the switch: ${segments.join(' ')}`);
  });
});
