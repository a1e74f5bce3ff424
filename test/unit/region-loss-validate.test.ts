/**
 * region-loss as `drill validate` and `drill plan` see it: refused with the field named (file:line) on a lab of one
 * region, on targets with no secondary storage (http, kubernetes); failback: true is accepted; the
 * annual drill as shipped is valid; a replication lag or log ship interval longer than a class's RPO is a warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import regionLoss from '../../scenarios/region-loss.ts';
import { breakdown } from '../../scenarios/region-loss.ts';

const catalog = new Map([[regionLoss.name, regionLoss]]);

function drill(target: string, params = '{}', policy = ''): string {
  return `name: annual-dr
kind: annual
service: { name: orders, tier: critical, dataClass: database }
target:
${target}
${policy}
load:
  rate: 10
  requests:
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' } }
  attachments: { share: 0.1 }
scenarios:
  - scenario: region-loss
    name: lose-primary-region
    params: ${params}
    timeout: 30m
`;
}

function validate(text: string) {
  return validateDrillText('annual.yaml', text, catalog, { capabilitiesOf });
}
function problems(text: string): string[] {
  const r = validate(text);
  return 'problems' in r ? r.problems.map(formatProblem) : [];
}

const TWO = '  kind: lab\n  replicas: 2\n  regions: 2\n  replicationLag: 30s';

test('a lab of two regions: valid, params defaulted', () => {
  const r = validate(drill(TWO));
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  assert.deepEqual(r.drill.scenarios[0]!.params, { failback: false, restoreTimeout: '30m', detectTimeout: '1m' });
  assert.equal(r.drill.target.kind === 'lab' && r.drill.target.replicationLagMs, 30_000);
});

test('a lab of one region: refused at target.regions, on the target line', () => {
  const p = problems(drill('  kind: lab\n  replicas: 2'));
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0]!, /^annual\.yaml:5:\d+: target\.regions: region-loss needs a lab of two regions: set target\.regions: 2/);
  const explicit = problems(drill('  kind: lab\n  replicas: 2\n  regions: 1'));
  assert.match(explicit[0]!, /^annual\.yaml:7:\d+: target\.regions: region-loss needs a lab of two regions/);
});

test('http and kubernetes targets: refused, saying no secondary storage is configured', () => {
  for (const t of [
    "  kind: http\n  url: 'http://127.0.0.1:9'",
    "  kind: kubernetes\n  context: aks-prod\n  namespaces: [orders]\n  url: 'http://orders.example'",
  ]) {
    const p = problems(drill(t));
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(p[0]!, /^annual\.yaml:\d+:\d+: scenarios\[0\]\.scenario: scenario region-loss needs a target with region \(kind: lab\)/);
    assert.match(p[0]!, /no secondary storage is configured on this target/);
  }
});

test('failback: true is accepted; failback: yes (not a boolean) is refused at its own field', () => {
  const r = validate(drill(TWO, '{ failback: true }'));
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  assert.equal((r.drill.scenarios[0]!.params as { failback: boolean }).failback, true);
  const patroni = problems(drill(`${TWO}\n  database: { provider: patroni }`, '{ failback: true }'));
  assert.ok(
    patroni.some((x) => /params\.failback: failback rebuilds the lab pair without Patroni/.test(x)),
    patroni.join('\n'),
  );
  const p = problems(drill(TWO, '{ failback: "yes" }'));
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0]!, /^annual\.yaml:\d+:\d+: scenarios\[0\]\.params\.failback: /);
});

test('a replication lag plus the class own lag over its RPO is a warning at target.replicationLag; one lag alone over it is not warned twice', () => {
  const r = validate(
    drill(`${TWO.replace('30s', '10m')}\n  archiveLag: 6m\n  logShipInterval: 1m`, '{}', 'policy: { rpo: { logs: 10m } }'),
  );
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  const w = (r.drill.warnings ?? []).map(formatProblem);
  assert.equal(w.length, 2, w.join('\n'));
  assert.match(w[0]!, /target\.replicationLag: 10m plus target\.archiveLag 6m is 16m, longer than the database RPO target of 15m/);
  assert.match(w[1]!, /target\.replicationLag: 10m plus target\.logShipInterval 1m is 11m, longer than the logs RPO target of 10m/);
  const alone = validate(drill(`${TWO.replace('30s', '20m')}\n  archiveLag: 6m`, '{}'));
  if ('problems' in alone) assert.fail(alone.problems.map(formatProblem).join('\n'));
  assert.deepEqual(
    (alone.drill.warnings ?? []).map(formatProblem).filter((x) => /database RPO/.test(x)).length,
    1,
    'the replication lag alone over the database RPO: one warning, not a second for the sum',
  );
});

test('a replication lag or log ship interval longer than a class RPO is a warning naming the field', () => {
  const r = validate(drill(`${TWO.replace('30s', '20m')}\n  logShipInterval: 2m`, '{}', 'policy: { rpo: { logs: 1m } }'));
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  const w = (r.drill.warnings ?? []).map(formatProblem);
  assert.ok(
    w.some((x) => /target\.replicationLag: 20m is longer than the database RPO target of 15m/.test(x)),
    w.join('\n'),
  );
  assert.ok(
    w.some((x) => /target\.logShipInterval: 2m is longer than the logs RPO target of 1m/.test(x)),
    w.join('\n'),
  );
});

test('the shipped annual drill validates: kind annual, two regions, the org replication lag, attachments', () => {
  const r = validateDrillText('drills/annual-dr.yaml', readFileSync('drills/annual-dr.yaml', 'utf8'), catalog, { capabilitiesOf });
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  assert.equal(r.drill.kind, 'annual');
  assert.equal(r.drill.target.kind === 'lab' && r.drill.target.regions, 2);
  assert.equal(r.drill.target.kind === 'lab' && r.drill.target.replicationLagMs, 15 * 60_000);
  // The organisation's GRS lag is its database RPO: with the archive's own lag on top, a region loss can lose more
  // than the RPO by design, and the shipped drill says so rather than hide it.
  assert.deepEqual((r.drill.warnings ?? []).map(formatProblem), [
    'drills/annual-dr.yaml:28:19: target.replicationLag: 15m plus target.archiveLag 1m is 16m, longer than the database RPO target of 15m (policy.rpo.database): a region loss loses the replication lag and the WAL the archive had not shipped before it; the run records this as a finding',
  ]);
  assert.equal(r.drill.scenarios[0]!.scenario, 'region-loss');
});

test('the RTO breakdown names each step from the marks and the restore timings; steps not reached say so', () => {
  const lost = { at: '2026-12-04T00:00:00.000Z', atMs: 1000, killed: 30, parts: ['daemon'] };
  const restored = {
    outcome: {
      ok: true,
      problem: null,
      missing: [],
      db: null,
      backupFolder: 'b',
      reachedLsn: '0/3000000',
      timings: { downloadMs: 900, replayMs: 1200, promoteMs: 300 },
    },
    detectedMs: 1250,
    detectedBy: 'a health probe',
    startedMs: 1260,
    endedMs: 3800,
  };
  const steps = breakdown(
    lost,
    restored,
    { frontPort: 1, replicas: 2, startedMs: 3800, endedMs: 6800 },
    { switchedAt: 'x', startedMs: 6800, endedMs: 6810 },
  );
  assert.deepEqual(
    steps.map((s) => [s.step, s.ms]),
    [
      ['detect', 250],
      ['restore', 900],
      ['replay', 1200],
      ['promote', 300],
      ['start', 3000],
      ['switch', 10],
    ],
  );
  const failed = breakdown(
    lost,
    { ...restored, outcome: { ...restored.outcome, ok: false } },
    { skipped: 'not started' },
    { skipped: 'not switched' },
  );
  assert.deepEqual(
    failed.slice(4).map((s) => s.ms),
    [undefined, undefined],
  );
});
