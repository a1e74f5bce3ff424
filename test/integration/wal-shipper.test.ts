// The continuous WAL shipper against a real PostgreSQL 15 and a real Azurite: under a steady write load the
// archive's lag, read from the shipper's state file every 250 ms, stays within archiveLag; the Blob listing
// holds contiguous segments; and `drill backup --kind wal --follow` stops on SIGINT with exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runWalShipper, type ShipperEvent } from '../../lib/adapters/postgres/backup/wal-shipper.ts';
import { lagNowMs, readWalArchiveState, type WalArchiveState } from '../../lib/adapters/postgres/backup/wal-state.ts';
import { formatLsn, parseSegmentName, segmentEnd, segmentName } from '../../lib/backup/wal-names.ts';
import { writeJsonAtomic } from '../../lib/util/atomic-file.ts';
import { gapsIn } from '../../lib/adapters/postgres/backup/wal-segments.ts';
import { listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { clusterIdentity } from '../../lib/adapters/postgres/backup/facts.ts';
import { connect } from '../../lib/adapters/postgres/backup/logical.ts';
import { startBackupSource } from '../support/backup-source.ts';
import { makeTempDir } from '../support/tmp.ts';
import { drillCli } from '../support/cli.ts';

const ARCHIVE_LAG_MS = 4000;

async function systemId(src: Parameters<typeof connect>[0]): Promise<string> {
  const c = connect(src);
  await c.connect();
  try {
    return (await clusterIdentity(c)).systemIdentifier;
  } finally {
    await c.end();
  }
}

test('under a steady write load the archive lags at most archiveLag, and its segments are contiguous', { timeout: 120_000 }, async () => {
  const tmp = await makeTempDir('wal-shipper');
  const source = await startBackupSource(tmp.path);
  const ac = new AbortController();
  try {
    const store = source.store('ship/');
    const stateFile = join(tmp.path, 'state.json');
    const events: ShipperEvent[] = [];
    const shipper = runWalShipper(
      {
        src: source.src,
        store,
        spoolDir: join(tmp.path, 'spool'),
        stateFile,
        archiveLagMs: ARCHIVE_LAG_MS,
        firstConnect: 'fail',
        onEvent: (e) => events.push(Object.assign(e, { at: Date.now() })),
      },
      ac.signal,
    );
    // Writes for 20 s, a batch every 100 ms, while the lag is read as status would read it.
    const lags: number[] = [];
    const until = Date.now() + 20_000;
    let batches = 0;
    const writer = (async () => {
      while (Date.now() < until) {
        await source.insertOrders(50, `load-${batches++}`);
        await sleep(100);
      }
    })();
    await sleep(3000); // the first switch comes at half the lag; measured from then on
    while (Date.now() < until) {
      const s = await readWalArchiveState(stateFile);
      if (s?.state === 'streaming') {
        const [at] = await source.query<{ lsn: string; walFile: string }>(
          'SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS "walFile"',
        );
        lags.push(lagNowMs(s, at!, Date.now()));
      }
      await sleep(250);
    }
    await writer;
    ac.abort();
    await shipper;
    const cluster = await systemId(source.src);
    const names = await listArchivedWal(store, cluster);
    const segments = names.filter((n) => !n.endsWith('.history'));
    assert.ok(lags.length > 40, `lag read ${lags.length} times`);
    const worst = Math.max(...lags);
    const t0 = (events[0] as { at?: number }).at ?? 0;
    const timeline = events
      .filter((e) => e.type === 'switched' || e.type === 'uploaded')
      .map(
        (e) =>
          `${((e as { at?: number }).at! - t0) / 1000}s ${e.type === 'switched' ? `switch at lag ${e.lagMs}` : `uploaded in ${Math.round((e as { ms: number }).ms)} ms`}`,
      );
    assert.ok(
      worst <= ARCHIVE_LAG_MS,
      `worst archive lag ${worst} ms over ${lags.length} readings (limit ${ARCHIVE_LAG_MS} ms): ${lags.join(' ')}\n${timeline.join('\n')}`,
    );
    assert.ok(
      lags.some((l) => l > 0),
      'the lag was measured, not always 0',
    );
    assert.ok(segments.length >= 5, `segments archived: ${segments.join(', ')}`);
    assert.deepEqual(gapsIn(segments), [], `archive: ${segments.join(', ')}`);
    const uploaded = events.filter((e) => e.type === 'uploaded').map((e) => (e as { file: string }).file);
    assert.deepEqual([...uploaded].sort(), uploaded, 'uploaded in order');
    const final = await readWalArchiveState(stateFile);
    assert.equal(final?.state, 'stopped');
    assert.equal(final?.archivedThrough?.segment, segments.at(-1));
    assert.deepEqual(final?.holes, []);
    process.stdout.write(
      `# worst lag ${worst} ms, median ${lags.sort((a, b) => a - b)[lags.length >> 1]} ms, ${segments.length} segments\n`,
    );
  } finally {
    ac.abort();
    await source.stop();
    await tmp.remove();
  }
});

test('drill backup --kind wal --follow ships segments, prints them, and exits 0 on SIGINT', { timeout: 90_000 }, async () => {
  const tmp = await makeTempDir('wal-follow');
  const source = await startBackupSource(tmp.path);
  try {
    const run = drillCli(
      [
        'backup',
        source.url,
        '--kind',
        'wal',
        '--follow',
        '--container',
        'follow-c',
        '--prefix',
        'p1',
        '--archive-lag',
        '3s',
        '--spool',
        join(tmp.path, 'spool'),
      ],
      { ...source.env, DRILL_LAB_DIR: join(tmp.path, 'nolab') },
    );
    const child = run.child;
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const deadline = Date.now() + 40_000;
    while ((out.match(/^uploaded /gm) ?? []).length < 2 && Date.now() < deadline) {
      await source.insertOrders(200, 'follow');
      await sleep(200);
    }
    child.kill('SIGINT');
    const r = await run.done;
    const err = r.stderr;
    assert.equal(r.code, 0, `exit ${r.code}\n${out}\n${err}`);
    const lines = out.match(/^uploaded (\S+)/gm) ?? [];
    assert.ok(lines.length >= 2, `stdout:\n${out}\nstderr:\n${err}`);
    const names = await listArchivedWal(source.store('p1', 'follow-c'), await systemId(source.src));
    for (const l of lines) assert.ok(names.includes(l.split(' ')[1]!), `${l} is in Blob (${names.join(', ')})`);
  } finally {
    await source.stop();
    await tmp.remove();
  }
});

test('a shipper killed between an upload and its state write: the next one counts the uploaded segment, no hole', {
  timeout: 90_000,
}, async () => {
  const tmp = await makeTempDir('wal-shipper-kill');
  const source = await startBackupSource(tmp.path);
  try {
    const store = source.store('killed/');
    const stateFile = join(tmp.path, 'state.json');
    const spoolDir = join(tmp.path, 'spool');
    const ship = async (until: (s: WalArchiveState | null) => boolean) => {
      const ac = new AbortController();
      const run = runWalShipper({ src: source.src, store, spoolDir, stateFile, archiveLagMs: 2000, firstConnect: 'fail' }, ac.signal);
      try {
        for (const end = Date.now() + 40_000; Date.now() < end && !until(await readWalArchiveState(stateFile)); await sleep(200))
          await source.insertOrders(20, 'kill');
      } finally {
        ac.abort();
        await run;
      }
      return readWalArchiveState(stateFile);
    };
    const first = await ship((s) => (s?.archivedThrough ? parseSegmentName(s.archivedThrough.segment)!.segno >= 3n : false));
    const newest = parseSegmentName(first!.archivedThrough!.segment)!;
    assert.ok(existsSync(join(spoolDir, first!.archivedThrough!.segment)), 'the spool keeps its newest segment, uploaded');
    // The state as a shipper SIGKILLed right after uploading that segment left it: one segment behind.
    const behind = { timeline: newest.timeline, segno: newest.segno - 1n };
    writeJsonAtomic(stateFile, {
      ...first,
      archivedThrough: { ...first!.archivedThrough!, segment: segmentName(behind), endLsn: formatLsn(segmentEnd(behind)) },
    });
    const second = await ship((s) => (s?.archivedThrough ? parseSegmentName(s.archivedThrough.segment)!.segno > newest.segno + 1n : false));
    assert.ok(parseSegmentName(second!.archivedThrough!.segment)!.segno > newest.segno + 1n, JSON.stringify(second?.archivedThrough));
    assert.deepEqual(second?.holes, [], 'no hole reported');
    const segments = (await listArchivedWal(store, await systemId(source.src))).filter((n) => !n.endsWith('.history'));
    assert.deepEqual(gapsIn(segments), [], `archive: ${segments.join(', ')}`);
  } finally {
    await source.stop();
    await tmp.remove();
  }
});
