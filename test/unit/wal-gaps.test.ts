import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupOnPath, newestTimeline, planWal } from '../../lib/backup/wal-gaps.ts';
import { parseHistory, parseLsn, parseSegmentName, segmentName, walFileName } from '../../lib/backup/wal-names.ts';

test('an LSN names its 16 MB segment as pg_walfile_name does', () => {
  // Read off PostgreSQL 15: SELECT pg_walfile_name('0/3000148') on timeline 1, and a position past the first log.
  assert.equal(walFileName(1, '0/3000148'), '000000010000000000000003');
  assert.equal(walFileName(1, '0/FFFFFFFF'), '0000000100000000000000FF');
  assert.equal(walFileName(2, '1/0'), '000000020000000100000000');
  assert.equal(walFileName(0x1a, '2B/AC000028'), '0000001A0000002B000000AC');
  assert.equal(parseLsn('1/0'), 0x1_0000_0000n);
  assert.equal(segmentName({ timeline: 1, segno: 256n }), '000000010000000100000000');
  assert.throws(() => parseLsn('3000148'), /not a WAL position/);
});

const seg = (tl: number, n: number) => segmentName({ timeline: tl, segno: BigInt(n) });

test('segments from the backup start to the target: complete, a gap named, or the target before the backup', () => {
  const archived = [2, 3, 4, 5, 6].map((n) => seg(1, n));
  const base = { startSegment: seg(1, 2), timeline: 1, histories: new Map<string, string>() };
  const ok = planWal({ ...base, target: { lsn: '0/5000010' }, archived });
  assert.deepEqual(
    ok.needed,
    [2, 3, 4, 5].map((n) => seg(1, n)),
  );
  assert.deepEqual(ok.missing, []);
  assert.equal(ok.last, seg(1, 5));

  const gap = planWal({ ...base, target: { lsn: '0/6000010' }, archived: archived.filter((f) => f !== seg(1, 4)) });
  assert.deepEqual(gap.missing, [seg(1, 4)]);
  // The segment holding the target itself not archived yet is missing too.
  assert.deepEqual(planWal({ ...base, target: { lsn: '0/7000000' }, archived }).missing, [seg(1, 7)]);
  assert.throws(() => planWal({ ...base, target: { lsn: '0/1000000' }, archived }), /before the backup's first segment/);

  const latest = planWal({ ...base, target: 'latest', archived: archived.filter((f) => f !== seg(1, 3)) });
  assert.equal(latest.last, seg(1, 6));
  assert.deepEqual(latest.missing, [seg(1, 3)]);
});

test('across a promotion: segments before the switch from the parent timeline, from it on from the new one', () => {
  const history = '1\t0/5000120\tbefore 2026-12-04 13:00:00+00\n';
  const archived = [seg(1, 3), seg(1, 4), seg(1, 5), seg(2, 5), seg(2, 6), '00000002.history'];
  assert.equal(newestTimeline(archived), 2);
  assert.deepEqual(parseHistory(history), [{ parent: 1, switchpoint: '0/5000120' }]);
  const p = planWal({
    startSegment: seg(1, 3),
    timeline: 2,
    target: 'latest',
    archived,
    histories: new Map([['00000002.history', history]]),
  });
  assert.deepEqual(p.needed, [seg(1, 3), seg(1, 4), seg(2, 5), seg(2, 6)]);
  assert.deepEqual(p.missing, []);
  const noHistory = planWal({ startSegment: seg(1, 3), timeline: 2, target: 'latest', archived, histories: new Map() });
  assert.equal(noHistory.missingHistory, '00000002.history');
  const gap = planWal({
    startSegment: seg(1, 3),
    timeline: 2,
    target: { lsn: '0/6000000' },
    archived: archived.filter((f) => f !== seg(2, 5)),
    histories: new Map([['00000002.history', history]]),
  });
  assert.deepEqual(gap.missing, [seg(2, 5)]);
});

test("a backup taken on a branch a restore abandoned is not on the new timeline's path", () => {
  const histories = new Map([['00000003.history', '1\t0/5000120\tbefore the drop\n2\t0/9000000\tbefore the delete\n']]);
  assert.equal(backupOnPath(3, histories, { timeline: 1, endLsn: '0/3000100' }), true);
  assert.equal(backupOnPath(3, histories, { timeline: 1, endLsn: '0/7000100' }), false, 'taken on timeline 1 after the fork');
  assert.equal(backupOnPath(3, histories, { timeline: 2, endLsn: '0/8000000' }), true);
  assert.equal(backupOnPath(3, histories, { timeline: 3, endLsn: '0/A000000' }), true);
  assert.equal(backupOnPath(2, histories, { timeline: 3, endLsn: '0/A000000' }), false);
});

test('a WAL segment size that is not one (an array index handed in by a callback) is refused, not divided by', () => {
  assert.throws(() => ['000000010000000000000003'].map(parseSegmentName as never), /0 is not a WAL segment size/);
  assert.throws(() => parseSegmentName('000000010000000000000003', 3), /3 is not a WAL segment size/);
  assert.deepEqual(parseSegmentName('000000010000000100000000', 64 * 1024 * 1024), { timeline: 1, segno: 64n });
});
