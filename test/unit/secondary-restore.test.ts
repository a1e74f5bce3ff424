import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { CatalogEntry } from '../../lib/adapters/postgres/backup/catalog.ts';
import type { BackupManifest } from '../../lib/backup/manifest.ts';
import { planWal } from '../../lib/backup/wal-gaps.ts';
import { segmentName } from '../../lib/backup/wal-names.ts';
import { describeGap, endOfRecoveryMs, pickNewestBackup, segmentRuns } from '../../lib/lab/regions/secondary-restore.ts';

const seg = (tl: number, n: number) => segmentName({ timeline: tl, segno: BigInt(n) });
const WAL = 'postgres/7300/wal/';

function entry(stamp: string, o: { manifest?: boolean; blobThere?: boolean } = {}): CatalogEntry {
  const folder = `postgres/7300/physical/${stamp}/`;
  const blob = `${folder}base.tar`;
  const manifest = (o.manifest ?? true) ? ({ kind: 'physical', blob: { name: blob } } as unknown as BackupManifest) : null;
  return {
    folder,
    cluster: '7300',
    kind: 'physical',
    database: 'orders',
    takenAt: stamp,
    blobs: (o.blobThere ?? true) ? [{ name: blob, size: 10 }] : [],
    manifest,
    problem: !manifest
      ? 'manifest.json is missing: the backup never finished or its manifest was deleted'
      : (o.blobThere ?? true)
        ? null
        : `the manifest names ${blob}, which is not in the container`,
  };
}

test('the newest complete backup is picked; a newer one without its manifest (still replicating) is skipped and said', () => {
  const older = entry('20261204T100000000Z');
  const newer = entry('20261204T110000000Z');
  const inFlight = entry('20261204T120000000Z', { manifest: false });
  const r = pickNewestBackup([older, newer, inFlight]);
  assert.ok('entry' in r);
  assert.equal(r.entry, newer);
  assert.deepEqual(
    r.skipped.map((s) => s.folder),
    [inFlight.folder],
  );
});

test('a newest backup whose data blob the secondary lacks is refused naming the blob, not replaced by an older one', () => {
  const r = pickNewestBackup([entry('20261204T100000000Z'), entry('20261204T110000000Z', { blobThere: false })]);
  assert.ok('problem' in r);
  assert.match(r.problem, /20261204T110000000Z.*cannot be restored.*base\.tar, which is not in the container/);
  assert.deepEqual(r.missing, ['postgres/7300/physical/20261204T110000000Z/base.tar']);
});

test('no backup at all, or only unfinished ones, is a refusal that says so', () => {
  const none = pickNewestBackup([]);
  assert.ok('problem' in none);
  assert.match(none.problem, /holds no complete physical base backup/);
  const unfinished = pickNewestBackup([entry('20261204T100000000Z', { manifest: false })]);
  assert.ok('problem' in unfinished);
  assert.match(unfinished.problem, /1 folder\(s\) without a manifest/);
});

test('a hole between the backup start and the newest archived segment names each run by its first and last blob', () => {
  const archived = [2, 3, 6, 9, 10].map((n) => seg(1, n));
  const plan = planWal({ startSegment: seg(1, 2), timeline: 1, target: 'latest', archived, histories: new Map() });
  const gap = describeGap({ container: 'lab-backups', walFolder: WAL, startSegment: seg(1, 2), ...plan });
  assert.ok(gap);
  assert.deepEqual(
    gap.missing,
    [4, 5, 7, 8].map((n) => `lab-backups/${WAL}${seg(1, n)}`),
  );
  assert.ok(gap.problem.includes(`lab-backups/${WAL}${seg(1, 4)} .. ${seg(1, 5)} (2 segments)`), gap.problem);
  assert.ok(gap.problem.includes(`lab-backups/${WAL}${seg(1, 7)} .. ${seg(1, 8)} (2 segments)`), gap.problem);
  assert.ok(gap.problem.includes(`newest archived ${seg(1, 10)}`), gap.problem);
  // No hole: nothing to say.
  const whole = planWal({
    startSegment: seg(1, 2),
    timeline: 1,
    target: 'latest',
    archived: [2, 3, 4].map((n) => seg(1, n)),
    histories: new Map(),
  });
  assert.equal(describeGap({ container: 'lab-backups', walFolder: WAL, startSegment: seg(1, 2), ...whole }), null);
});

test('across a timeline switch: the new timeline segment missing is a hole, the .history file missing is named', () => {
  const history = '1\t0/5000000\tno recovery target specified\n';
  const archived = [seg(1, 2), seg(1, 3), seg(1, 4), seg(2, 6), '00000002.history'];
  const plan = planWal({
    startSegment: seg(1, 2),
    timeline: 2,
    target: 'latest',
    archived,
    histories: new Map([['00000002.history', history]]),
  });
  const gap = describeGap({ container: 'c', walFolder: WAL, startSegment: seg(1, 2), ...plan });
  assert.ok(gap);
  // Segment 5 is read from timeline 2 (it began there), and the archive has only timeline 1's segments below it.
  assert.deepEqual(gap.missing, [`c/${WAL}${seg(2, 5)}`]);

  const noHistory = planWal({
    startSegment: seg(1, 2),
    timeline: 2,
    target: 'latest',
    archived: archived.slice(0, 4),
    histories: new Map(),
  });
  const g2 = describeGap({ container: 'c', walFolder: WAL, startSegment: seg(1, 2), ...noHistory });
  assert.ok(g2);
  assert.deepEqual(g2.missing, [`c/${WAL}00000002.history`]);
  assert.match(g2.problem, /timeline's history cannot be followed/);
});

test('runs of segments: consecutive numbers join, a break starts a new run', () => {
  assert.deepEqual(segmentRuns([seg(1, 3), seg(1, 4), seg(1, 5), seg(1, 9)]), [
    { first: seg(1, 3), last: seg(1, 5), count: 3 },
    { first: seg(1, 9), last: seg(1, 9), count: 1 },
  ]);
  assert.deepEqual(segmentRuns([]), []);
});

test("the end of recovery is read off PostgreSQL's log: from redo done to ready to accept connections", () => {
  // Lines as PostgreSQL 15 writes them with the lab's log_line_prefix '%m [%p] %q%u@%d '.
  const log = [
    '2026-12-04 23:10:01.100 UTC [100] LOG:  starting archive recovery',
    '2026-12-04 23:10:04.250 UTC [101] LOG:  redo done at 0/9000110 system usage: CPU: user: 0.01 s, system: 0.00 s, elapsed: 3.10 s',
    '2026-12-04 23:10:04.260 UTC [101] LOG:  selected new timeline ID: 2',
    '2026-12-04 23:10:04.300 UTC [101] LOG:  archive recovery complete',
    '2026-12-04 23:10:04.301 UTC [102] LOG:  checkpoint starting: end-of-recovery immediate wait',
    '2026-12-04 23:10:04.900 UTC [102] LOG:  checkpoint complete: wrote 3 buffers',
    '2026-12-04 23:10:04.950 UTC [100] LOG:  database system is ready to accept connections',
  ].join('\n');
  assert.equal(endOfRecoveryMs(log), 700);
  assert.equal(endOfRecoveryMs('2026-12-04 23:10:01.100 UTC [100] LOG:  starting archive recovery'), null);
  // An earlier start's lines do not count: the last redo done is the one.
  const twice = `${log}\n2026-12-04 23:20:00.000 UTC [200] LOG:  redo done at 0/A000000\n2026-12-04 23:20:00.040 UTC [200] LOG:  database system is ready to accept connections`;
  assert.equal(endOfRecoveryMs(twice), 40);
});

test("the secondary's restore reaches no storage but the secondary account's", () => {
  // The region is lost with its storage: a restore that fell back on the primary account would pass in the lab and
  // fail on the day. The module may only know the secondary's Blob environment.
  const src = readFileSync(new URL('../../lib/lab/regions/secondary-restore.ts', import.meta.url), 'utf8');
  const code = src.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
  for (const primaryOnly of ['labBlobEnv', 'labBlobSource', 'labAzuriteStatus', 'primaryAzurite', 'resolveBackupStore', 'process.env'])
    assert.ok(!code.includes(primaryOnly), `secondary-restore.ts uses ${primaryOnly}`);
  assert.match(code, /labSecondaryBlobEnv\(labDir\)/);
});
