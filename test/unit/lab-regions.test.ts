// The lab's second region: its config (regions, replicationLag) as a drill file states it, the warning a lag
// longer than an RPO target gives, and the replicator's decisions (which blobs are due, how far it lags).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import {
  dueAtMs,
  lagMarginMs,
  LAST_MODIFIED_RESOLUTION_MS,
  listIntervalMs,
  measuredLagMs,
  planPass,
} from '../../lib/lab/regions/replication.ts';
import type { ReplicaListing } from '../../lib/adapters/blob/replicate.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';

const drill = (targetLines: string, policy = '') => `name: regions
kind: annual
target:
  kind: lab
${targetLines}
load: { rate: 10 }
${policy}scenarios:
  - scenario: pod-kill
`;
const validate = (text: string, file = 'r.yaml') => validateDrillText(file, text, testCatalog(), { capabilitiesOf });

test('regions: 2 carries replicationLag in ms, 15m when not given; one region carries neither', () => {
  const r = validate(drill('  regions: 2\n  replicationLag: 3s'));
  assert.ok('drill' in r, JSON.stringify(r));
  assert.deepEqual(r.drill.target, { kind: 'lab', replicas: 3, regions: 2, replicationLagMs: 3000 });
  const d = validate(drill('  regions: 2'));
  assert.ok('drill' in d && d.drill.target.kind === 'lab');
  assert.equal(d.drill.target.replicationLagMs, 15 * 60_000);
  for (const lines of ['  regions: 1', '  replicas: 3']) {
    const one = validate(drill(lines));
    assert.ok('drill' in one && one.drill.target.kind === 'lab');
    assert.equal(one.drill.target.regions, undefined);
    assert.equal(one.drill.target.replicationLagMs, undefined);
  }
});

test('regions other than 1 or 2 is refused at its line, naming the field and what is allowed', () => {
  for (const bad of ['3', '0', 'two']) {
    const r = validate(drill(`  regions: ${bad}`), 'c.yaml');
    assert.ok('problems' in r, bad);
    const lines = r.problems.map(formatProblem);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^c\.yaml:5:\d+: target\.regions: expected 1 or 2 /);
    assert.ok(lines[0]!.includes(bad), lines[0]);
  }
});

test('replicationLag without regions: 2, under 1s, or not a duration is refused at its line', () => {
  const cases: [string, RegExp][] = [
    ['  replicationLag: 30s', /target\.replicationLag: replicationLag is given but regions is not 2/],
    ['  regions: 1\n  replicationLag: 30s', /target\.replicationLag: replicationLag is given but regions is not 2/],
    ['  regions: 2\n  replicationLag: 500ms', /target\.replicationLag: expected at least 1s/],
    ['  regions: 2\n  replicationLag: soon', /target\.replicationLag: /],
  ];
  for (const [lines, expected] of cases) {
    const r = validate(drill(lines), 'c.yaml');
    assert.ok('problems' in r, lines);
    const text = r.problems.map(formatProblem).join('\n');
    assert.match(text, expected);
    const lagLine = 5 + lines.split('\n').findIndex((l) => l.includes('replicationLag'));
    assert.match(text, new RegExp(`^c\\.yaml:${lagLine}:`), text);
  }
});

test('a replicationLag longer than an RPO target is a warning at its line, one per class it exceeds; a shorter one none', () => {
  const r = validate(drill('  regions: 2\n  replicationLag: 30m'), 'w.yaml');
  assert.ok('drill' in r);
  const warnings = (r.drill.warnings ?? []).map(formatProblem);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(
    warnings[0]!,
    /^w\.yaml:6:\d+: target\.replicationLag: 30m is longer than the database RPO target of 15m \(policy\.rpo\.database\)/,
  );
  // The organisation's targets replaced: every class exceeded is named.
  const strict = validate(drill('  regions: 2\n  replicationLag: 2h', 'policy:\n  rpo: { file-storage: 1h, logs: 90m }\n'), 'w.yaml');
  assert.ok('drill' in strict);
  assert.deepEqual(
    (strict.drill.warnings ?? []).map((w) => w.message.split(' (')[1]?.split(')')[0]),
    ['policy.rpo.database', 'policy.rpo.file-storage', 'policy.rpo.logs'],
  );
  const fine = validate(drill('  regions: 2\n  replicationLag: 15m'));
  assert.ok('drill' in fine);
  assert.equal(fine.drill.warnings, undefined);
});

test('a logShipInterval longer than the logs RPO target is a warning too', () => {
  const r = validate(drill('  logShipInterval: 25h'), 'w.yaml');
  assert.ok('drill' in r);
  const warnings = (r.drill.warnings ?? []).map(formatProblem);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /^w\.yaml:5:\d+: target\.logShipInterval: 1d1h is longer than the logs RPO target of 1d/);
});

const T0 = Date.parse('2026-12-04T20:00:00Z');
const blob = (name: string, lastModifiedMs: number, etag = `e-${name}`, sourceEtag: string | null = null): ReplicaListing => ({
  name,
  etag,
  contentLength: 10,
  lastModifiedMs,
  contentMD5: null,
  sourceEtag,
});

test('a blob is due once it has existed for the lag, counting the second Last-Modified drops', () => {
  const lag = 3000;
  assert.equal(dueAtMs(T0, lag), T0 + LAST_MODIFIED_RESOLUTION_MS + lag);
  const source = [blob('a', T0)];
  assert.equal(planPass(source, [], T0 + lag, lag).due.length, 0, 'not before lag + resolution');
  const early = planPass(source, [], T0 + lag + 999, lag);
  assert.deepEqual([early.due.length, early.waiting, early.nextDueMs], [0, 1, T0 + 4000]);
  assert.deepEqual(
    planPass(source, [], T0 + 4000, lag).due.map((b) => b.name),
    ['a'],
  );
});

test('the secondary holding the same version skips a blob; an older version or none makes it due again, oldest first', () => {
  const lag = 1000;
  const source = [blob('new', T0 + 5000), blob('same', T0), blob('changed', T0 + 1000, 'v2'), blob('old', T0 - 60_000)];
  const copies = [blob('same', T0 + 100, 'x1', 'e-same'), blob('changed', T0 + 200, 'x2', 'v1'), blob('stray', T0, 'x3', null)];
  const p = planPass(source, copies, T0 + 10_000, lag);
  assert.deepEqual(
    p.due.map((b) => b.name),
    ['old', 'changed', 'new'],
  );
  assert.equal(p.waiting, 0);
  assert.equal(p.nextDueMs, null);
  assert.equal(p.oldestMissingMs, T0 - 60_000);
  assert.equal(p.newestCopiedMs, T0);
});

test('measured lag: now minus the oldest blob the secondary lacks, 0 when it lacks none', () => {
  const lag = 3000;
  const source = [blob('a', T0), blob('b', T0 + 2000), blob('c', T0 + 8000)];
  const copies = [blob('a', T0, 'x', 'e-a')];
  const now = T0 + 9000;
  const p = planPass(source, copies, now, lag);
  assert.deepEqual(
    p.due.map((b) => b.name),
    ['b'],
  );
  assert.equal(p.oldestWaitingMs, T0 + 8000);
  assert.equal(measuredLagMs(p.oldestMissingMs, now), 7000);
  assert.equal(measuredLagMs(null, now), 0);
  // A clock behind the service's never gives a negative lag.
  assert.equal(measuredLagMs(T0 + 10_000, now), 0);
});

test('the replicator lists at least once per lag, between 1 s and 30 s, and status allows a margin above the lag', () => {
  assert.equal(listIntervalMs(3000), 1500);
  assert.equal(listIntervalMs(500), 1000);
  assert.equal(listIntervalMs(15 * 60_000), 30_000);
  assert.ok(listIntervalMs(3000) <= 3000);
  assert.equal(lagMarginMs(3000), 10_000 + 1000 + 1500);
  assert.equal(lagMarginMs(15 * 60_000), 90_000 + 1000 + 30_000);
});
