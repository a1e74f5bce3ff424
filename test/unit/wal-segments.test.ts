// The WAL shipper's segment arithmetic and lag: pure functions, checked on names PostgreSQL itself produces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  archiveLagMs,
  compareFollowed,
  gapBetween,
  gapsIn,
  pruneSamples,
  shouldSwitch,
  gapsOf,
  segmentsOnTheWay,
  switchAfterMs,
} from '../../lib/adapters/postgres/backup/wal-segments.ts';
import { formatLsn, lastSwitch, parseLsn, parseSegmentName, segmentEnd, segmentName, stillToArrive } from '../../lib/backup/wal-names.ts';
import { abandonedToDrop } from '../../lib/adapters/postgres/backup/wal-shipper.ts';
import { lagNowMs, type WalArchiveState } from '../../lib/adapters/postgres/backup/wal-state.ts';

const MB16 = 16 * 1024 * 1024;

test('segment names round-trip, and carry into the next log at 256 segments of 16 MB', () => {
  const id = parseSegmentName('0000000100000000000000FF')!;
  assert.deepEqual(id, { timeline: 1, segno: 255n });
  assert.equal(segmentName({ timeline: 1, segno: 256n }), '000000010000000100000000');
  assert.equal(segmentName({ timeline: 2, segno: 0x1_2345n }), '000000020000012300000045');
  assert.equal(parseSegmentName('00000002.history'), null);
  assert.equal(parseSegmentName('000000010000000000000003.partial'), null);
  // 64 MB segments: 64 per log.
  assert.equal(segmentName({ timeline: 1, segno: 64n }, 64 * 1024 * 1024), '000000010000000100000000');
});

test('LSNs parse and print as PostgreSQL writes them; a segment ends where the next begins', () => {
  assert.equal(parseLsn('16/B374D848'), 0x16_b374_d848n);
  assert.equal(formatLsn(0x16_b374_d848n), '16/B374D848');
  assert.equal(formatLsn(segmentEnd(parseSegmentName('000000010000000000000005')!)), '0/6000000');
  assert.equal(segmentEnd({ timeline: 1, segno: 255n }, MB16), 0x1_0000_0000n);
  assert.throws(() => parseLsn('nope'), /is not a WAL position/);
});

test('a gap is named by its first and last missing segment; a new timeline may repeat the switch segment', () => {
  const s = (n: string) => parseSegmentName(n)!;
  assert.equal(gapBetween(s('000000010000000000000005'), s('000000010000000000000006')), null);
  assert.deepEqual(gapBetween(s('000000010000000000000005'), s('000000010000000000000009')), {
    from: '000000010000000000000006',
    to: '000000010000000000000008',
    count: 3,
  });
  // Promotion inside segment 5: timeline 2 starts with its own copy of segment 5.
  assert.equal(gapBetween(s('000000010000000000000005'), s('000000020000000000000005')), null);
  assert.equal(gapBetween(null, s('000000010000000000000009')), null);
  assert.deepEqual(
    gapsIn([
      '000000010000000000000003',
      '00000002.history',
      '000000020000000000000005',
      '000000010000000000000004',
      '000000020000000000000007',
    ]),
    [{ from: '000000020000000000000006', to: '000000020000000000000006', count: 1 }],
  );
  assert.deepEqual(gapsIn(['0000000100000000000000FF', '000000010000000100000000']), []);
});

test('the lag is the age of the oldest WAL not archived, erring long by one sample at most; 0 when all is archived', () => {
  const samples = [
    { atMs: 1000, lsn: 100n },
    { atMs: 1500, lsn: 100n },
    { atMs: 2000, lsn: 300n },
    { atMs: 2500, lsn: 500n },
  ];
  // Archived through 200: the WAL after it appeared between 1500 and 2000; counted from 1500.
  assert.equal(archiveLagMs(samples, 200n, 4000), 2500);
  assert.equal(archiveLagMs(samples, 500n, 4000), 0);
  assert.equal(archiveLagMs(samples, null, 4000), 3000);
  assert.equal(archiveLagMs([], 0n, 4000), 0);
  assert.deepEqual(
    pruneSamples(samples, 200n).map((x) => x.atMs),
    [1500, 2000, 2500],
  );
  assert.deepEqual(
    pruneSamples(samples, 500n).map((x) => x.atMs),
    [2500],
  );
});

test('the segment is switched at half the allowed lag, and not again before the last switch had as long', () => {
  assert.equal(shouldSwitch(29_000, 60_000, 100_000), false);
  assert.equal(shouldSwitch(30_000, 60_000, 100_000), true);
  assert.equal(shouldSwitch(45_000, 60_000, 10_000), false);
  // A switched segment took 1.25 s to reach Blob: switch at 4 - 2 x 1.25 = 1.5 s, but never before a quarter of the lag.
  assert.equal(switchAfterMs(4000, 1250), 1500);
  assert.equal(switchAfterMs(4000, 0), 2000);
  assert.equal(switchAfterMs(4000, 5000), 1000);
  assert.equal(shouldSwitch(1600, 4000, 10_000, 1250), true);
  assert.equal(shouldSwitch(1600, 4000, 10_000, 0), false);
});

test("status reads the archive's lag from the state file and the primary's position", () => {
  const state = (o: Partial<WalArchiveState>): WalArchiveState => ({
    pid: 1,
    receiverPid: null,
    endpoint: 'postgres://postgres@127.0.0.1:5432/orders',
    cluster: 'c',
    slot: 'drill_wal_archive',
    state: 'streaming',
    archiveLagMs: 60_000,
    archivedThrough: { segment: '000000010000000000000005', timeline: 1, endLsn: '0/6000000', at: '2026-12-04T10:00:00.000Z' },
    unarchivedSince: null,
    serverLsn: '0/6000000',
    lagMs: 0,
    holes: [],
    lastError: null,
    baseBackup: null,
    updatedAt: '2026-12-04T10:00:10.000Z',
    ...o,
  });
  const now = Date.parse('2026-12-04T10:00:30.000Z');
  const at = (lsn: string, walFile = '000000010000000000000006') => ({ lsn, walFile });
  // The primary's position is archived: no lag, however old the state.
  assert.equal(lagNowMs(state({}), at('0/6000000', '000000010000000000000005'), now), 0);
  // WAL waited since 10:00:05.
  assert.equal(lagNowMs(state({ unarchivedSince: '2026-12-04T10:00:05.000Z' }), at('0/6000100'), now), 25_000);
  // The shipper saw nothing waiting when it last looked (10:00:10), and has not looked since: counted from then.
  assert.equal(lagNowMs(state({}), at('0/6000100'), now), 20_000);
  // A restored database on timeline 3 behind the archived point: its WAL is not archived, whatever its LSN.
  assert.equal(lagNowMs(state({}), at('0/3000100', '000000030000000000000003'), now), 20_000);
});

test('a timeline switch names what the archive misses on either side of the switch point, and nothing when it follows on', () => {
  const s = (n: string) => parseSegmentName(n)!;
  assert.deepEqual(lastSwitch('1\t0/58017570\tno recovery target specified\n'), { parent: 1, switchLsn: 0x5801_7570n });
  assert.deepEqual(lastSwitch('1\t0/58017570\tno recovery target specified\n\n2\t0/9A000028\tbefore 2026-12-04\n'), {
    parent: 2,
    switchLsn: 0x9a00_0028n,
  });
  assert.equal(lastSwitch('garbage'), null);
  const gaps = (prev: string, next: string, history: string) =>
    gapsOf(
      segmentsOnTheWay(
        s(prev),
        s(next),
        history.trim() === ''
          ? []
          : history
              .trim()
              .split('\n')
              .map((l) => ({ parent: Number(l.split('\t')[0]), switchLsn: parseLsn(l.split('\t')[1]!) })),
      ),
    );
  // Failover in segment 0x58, parent archived through 0x57, the new timeline's first segment 0x58: whole.
  assert.deepEqual(gaps('000000010000000000000057', '000000020000000000000058', '1\t0/58017570'), []);
  // The parent stopped at 0x55 and the new primary's slot began at 0x5A: both sides named.
  assert.deepEqual(gaps('000000010000000000000055', '00000002000000000000005A', '1\t0/58017570'), [
    { from: '000000010000000000000056', to: '000000010000000000000057', count: 2 },
    { from: '000000020000000000000058', to: '000000020000000000000059', count: 2 },
  ]);
  // A point-in-time restore back to 0x30 while the archive reached 0x70: the parent is archived past the switch.
  assert.deepEqual(gaps('000000010000000000000070', '000000030000000000000030', '1\t0/30000100'), []);
  // Same timeline: the numbers between, on it.
  assert.deepEqual(gaps('000000020000000000000010', '000000020000000000000013', ''), [
    { from: '000000020000000000000011', to: '000000020000000000000012', count: 2 },
  ]);
  // The shipper last archived 3/09, then four restores each forked a timeline while it reconnected (the crash
  // matrix, 2026-12-05): what the next segment on timeline 7 needs is named on timelines 4, 5 and 6, never on 3.
  const seven = '1\t0/5001000\n2\t0/80044F0\n3\t0/A0041E0\n4\t0/C004260\n5\t0/E002BE0\n6\t0/F0035C0';
  assert.deepEqual(gaps('000000030000000000000009', '00000007000000000000000F', seven), [
    { from: '00000004000000000000000A', to: '00000004000000000000000B', count: 2 },
    { from: '00000005000000000000000C', to: '00000005000000000000000D', count: 2 },
    { from: '00000006000000000000000E', to: '00000006000000000000000E', count: 1 },
  ]);
  // Ordering a followed history: the later timeline is newer even at a lower position.
  assert.ok(compareFollowed(s('000000030000000000000030'), s('000000010000000000000070')) > 0);
  assert.ok(compareFollowed(s('000000010000000000000031'), s('000000010000000000000030')) > 0);
});

test('the spool keeps the newest abandoned partial segments and drops the rest', () => {
  const files = [
    { f: 'a.partial.abandoned', mtime: 10 },
    { f: 'd.partial.abandoned', mtime: 40 },
    { f: 'b.partial.abandoned', mtime: 20 },
    { f: 'c.partial.abandoned', mtime: 30 },
    { f: 'e.partial.abandoned', mtime: 50 },
  ];
  assert.deepEqual(abandonedToDrop(files, 3).sort(), ['a.partial.abandoned', 'b.partial.abandoned']);
  assert.deepEqual(abandonedToDrop(files.slice(0, 2), 3), []);
});

test('a missing segment still to arrive is one after the newest archived by timeline, then number; one below it is a hole', () => {
  // Right after a failover at 0/120389F0: the old timeline's segment 12 is archived, the new timeline's is not yet.
  const archived = ['000000080000000000000011', '000000080000000000000012', '00000009.history'];
  assert.deepEqual(stillToArrive(['000000090000000000000012'], archived), ['000000090000000000000012']);
  assert.deepEqual(stillToArrive(['000000090000000000000013', '000000090000000000000012'], archived), [
    '000000090000000000000013',
    '000000090000000000000012',
  ]);
  // Below the newest on the same timeline, or on a timeline the archive has moved past: a hole, no waiting fills it.
  assert.deepEqual(stillToArrive(['000000080000000000000010'], archived), []);
  assert.deepEqual(stillToArrive(['000000080000000000000012'], ['000000090000000000000012']), []);
  assert.deepEqual(stillToArrive(['000000090000000000000010'], ['000000090000000000000011', '0000000A0000000000000005']), []);
  // Nothing archived yet: everything may still come.
  assert.deepEqual(stillToArrive(['000000010000000000000001'], []), ['000000010000000000000001']);
});
