import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRunRecord, type RunRecord } from '../../lib/record/run-record.ts';
import { sampleRunInput } from '../support/record-sample.ts';
import { parseQuarter, previousQuarter, instantFromRunId } from '../../lib/record/quarterly/quarter.ts';
import { coverage } from '../../lib/record/quarterly/coverage.ts';
import { buildQuarterlyRecord, type RecordInput } from '../../lib/record/quarterly/build.ts';
import { buildChain, checkChain, GENESIS } from '../../lib/record/quarterly/integrity.ts';
import { parseRunRecord, seriesFromMetrics, sha256 } from '../../lib/record/quarterly/parse.ts';
import type { PolicyRequirement, RunInput } from '../../lib/record/quarterly/types.ts';

const BASE = buildRunRecord(sampleRunInput());
const Q4 = parseQuarter('2026-Q4')!;

function run(
  id: string,
  startedAt: string,
  over: { drill?: string; scenario?: string; rto?: number | null; status?: RunRecord['status']; findings?: RunRecord['findings'] } = {},
): RunInput {
  const r = structuredClone(BASE) as RunRecord;
  r.id = id;
  r.startedAt = startedAt;
  r.endedAt = new Date(Date.parse(startedAt) + 40_000).toISOString();
  r.drill = over.drill ?? 'checkout-quarterly';
  r.scenario = over.scenario ?? 'pod-kill';
  if (over.status) r.status = over.status;
  if (over.findings) r.findings = over.findings;
  if (over.rto !== undefined) {
    r.objectives.rto = {
      ...r.objectives.rto,
      measuredSeconds: over.rto,
      met: over.rto === null ? false : over.rto <= r.objectives.rto.targetSeconds,
    };
  }
  const text = JSON.stringify(r);
  return {
    file: `results/runs/${id}/run.json`,
    digest: sha256(text),
    record: r,
    context: {
      drillKind: 'quarterly',
      drillFile: 'drills/checkout.yaml',
      owner: 'payments-sre',
      participants: ['alice'],
      approver: 'carol',
      service: { name: 'checkout', tier: 'critical', dataClass: 'database' },
    },
    series: { resolutionSeconds: 1, points: [] },
  };
}

const REQS: PolicyRequirement[] = [
  {
    cadence: 'quarterly',
    drill: 'checkout-quarterly',
    scenario: 'pod-kill',
    scenarioModule: 'pod-kill',
    drillFile: 'drills/checkout.yaml',
    owner: 'payments-sre',
  },
  {
    cadence: 'quarterly',
    drill: 'checkout-quarterly',
    scenario: 'db-failover',
    scenarioModule: 'db-failover',
    drillFile: 'drills/checkout.yaml',
    owner: 'payments-sre',
  },
  {
    cadence: 'monthly',
    drill: 'monthly-restore',
    scenario: 'restore',
    scenarioModule: 'blob-restore',
    drillFile: 'drills/monthly-restore.yaml',
    owner: 'dba',
  },
];

function input(over: Partial<RecordInput> = {}): RecordInput {
  return {
    quarter: Q4,
    generatedAt: '2027-01-05T10:00:00.000Z',
    harnessVersion: 'test',
    source: { kind: 'folder', path: 'results/runs' },
    runs: [],
    excluded: [],
    requirements: REQS,
    policyDrills: [],
    previous: null,
    people: {},
    ...over,
  };
}

test('quarters: 2026-Q4 spans Oct-Dec UTC; Q5, Q0 and junk are refused; Q1 follows the previous year Q4', () => {
  assert.deepEqual(
    [Q4.from, Q4.to, Q4.months],
    ['2026-10-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', ['2026-10', '2026-11', '2026-12']],
  );
  for (const bad of ['2026-Q5', '2026-Q0', '2026Q4', 'Q4-2026', '', '2026-q4x']) assert.equal(parseQuarter(bad), null, bad);
  assert.equal(previousQuarter(parseQuarter('2027-Q1')!).id, '2026-Q4');
  assert.equal(previousQuarter(Q4).id, '2026-Q3');
  assert.equal(instantFromRunId('20261202T055945Z-kill-one-replica-6ccd26'), '2026-12-02T05:59:45.000Z');
  assert.equal(instantFromRunId('not-a-run'), null);
});

test('coverage: ran, stale (only before the period), missing, and due while the period is still open', () => {
  const runs = [
    { id: 'a', drill: 'checkout-quarterly', scenario: 'pod-kill', startedAt: '2026-11-03T09:00:00Z', status: 'passed' as const },
    { id: 'b', drill: 'checkout-quarterly', scenario: 'db-failover', startedAt: '2026-08-20T09:00:00Z', status: 'passed' as const },
    { id: 'c', drill: 'monthly-restore', scenario: 'restore', startedAt: '2026-10-10T09:00:00Z', status: 'failed' as const },
  ];
  // Drawn up mid-December: December's restore test is not late yet.
  const items = coverage(REQS, runs, Q4, '2026-12-02T00:00:00Z');
  const status = Object.fromEntries(items.map((i) => [`${i.scenario}@${i.period}`, i.status]));
  assert.deepEqual(status, {
    'pod-kill@2026-Q4': 'ran',
    'db-failover@2026-Q4': 'due',
    'restore@2026-10': 'ran',
    'restore@2026-11': 'stale',
    'restore@2026-12': 'due',
  });
  const nov = items.find((i) => i.period === '2026-11')!;
  assert.deepEqual([nov.lastRunId, nov.lastStatus, nov.runs], ['c', 'failed', 0]);
  // After the quarter the open periods become gaps: db-failover ran only in Q3 (stale), December never.
  const late = coverage(REQS, runs, Q4, '2027-01-05T00:00:00Z');
  assert.equal(late.find((i) => i.scenario === 'db-failover')!.status, 'stale');
  assert.equal(late.find((i) => i.period === '2026-12')!.status, 'stale');
  assert.equal(
    coverage(REQS, [], Q4, '2027-01-05T00:00:00Z').every((i) => i.status === 'missing'),
    true,
  );
});

test('the record counts only runs that started in the quarter; earlier runs date coverage; gaps become SEV2 findings with actions', () => {
  const runs = [
    run('20260915T090000Z-db-failover-000001', '2026-09-15T09:00:00.000Z', { scenario: 'db-failover', rto: 4 }),
    run('20261005T090000Z-pod-kill-000002', '2026-10-05T09:00:00.000Z', { rto: 2 }),
    run('20261105T090000Z-pod-kill-000003', '2026-11-05T09:00:00.000Z', { rto: 7 }),
    run('20270102T090000Z-pod-kill-000004', '2027-01-02T09:00:00.000Z', { rto: 1 }),
  ];
  const r = buildQuarterlyRecord(input({ runs }));
  assert.deepEqual(
    r.runs.map((x) => x.id),
    ['20261005T090000Z-pod-kill-000002', '20261105T090000Z-pod-kill-000003'],
  );
  assert.equal(r.summary.runs, 2);
  assert.equal(r.summary.rtoWorstSeconds, 7);
  const sc = r.scenarios.find((s) => s.scenario === 'pod-kill')!;
  assert.deepEqual([sc.runs, sc.rto.measured.last, sc.rto.measured.max, sc.rto.measured.min, sc.rto.met], [2, 7, 7, 2, 2]);
  assert.ok(sc.rto.method && sc.rto.resolutionMs !== null, 'the method and resolution travel with the figures');
  const db = r.coverage.items.find((i) => i.scenario === 'db-failover')!;
  assert.deepEqual([db.status, db.lastRunId], ['stale', '20260915T090000Z-db-failover-000001']);
  assert.equal(r.coverage.gaps, 4, 'db-failover stale, restore missing in each of 3 months');
  const gapFindings = r.findings.filter((f) => f.source === 'coverage');
  assert.equal(gapFindings.length, 4);
  assert.ok(gapFindings.every((f) => f.severity === 'SEV2' && f.due !== null));
  assert.equal(gapFindings.find((f) => f.scenario === 'db-failover')!.due, '2027-01-31', 'due 30 days after the quarter ends');
  assert.equal(
    gapFindings.find((f) => f.objective === 'coverage:monthly' && f.key.endsWith('2026-10'))!.due,
    '2026-12-01',
    'due 30 days after October ends',
  );
  assert.match(gapFindings.find((f) => f.scenario === 'db-failover')!.title, /not run in 2026-Q4: last run 2026-09-15/);
  for (const f of r.findings.filter((x) => x.severity !== 'SEV4'))
    assert.ok(
      r.actions.some((a) => a.finding === f.id),
      `action for ${f.id}`,
    );
  assert.equal(r.summary.findings.SEV2, r.findings.filter((f) => f.severity === 'SEV2').length);
  assert.match(r.summary.headline, /2 runs of 1 scenario: 2 passed, 0 not; RTO met in 2 of 2, worst 7 s; .*4 coverage gaps/);
});

test('findings roll up: the same objective in two runs is one finding with both runs, the worst severity and the earliest due date', () => {
  const f = (severity: 'SEV1' | 'SEV2' | 'SEV3', due: string, title: string) => ({
    severity,
    title,
    detail: 'd',
    owner: null,
    due,
    objective: 'slo:fault:availability rate>=99.9%',
  });
  const runs = [
    run('20261005T090000Z-pod-kill-000002', '2026-10-05T09:00:00.000Z', {
      findings: [f('SEV3', '2027-01-03', 'Availability SLO missed: 12 failed')],
    }),
    run('20261105T090000Z-pod-kill-000003', '2026-11-05T09:00:00.000Z', {
      findings: [
        f('SEV2', '2026-12-05', 'Availability SLO missed: 400 failed'),
        { severity: 'SEV4', title: 'Load generator dropped 3 requests', detail: 'x', owner: null, due: null },
      ],
    }),
  ];
  const r = buildQuarterlyRecord(input({ runs, requirements: [] }));
  assert.equal(r.findings.length, 2);
  const rolled = r.findings[0]!;
  assert.deepEqual(
    [rolled.id, rolled.severity, rolled.occurrences, rolled.due, rolled.runs.length, rolled.owner],
    ['F-01', 'SEV2', 2, '2026-12-05', 2, 'payments-sre'],
  );
  assert.equal(rolled.title, 'Availability SLO missed: 400 failed', 'the latest wording');
  assert.equal(r.findings[1]!.severity, 'SEV4');
  assert.equal(r.actions.length, 1, 'a SEV4 note gets no action');
  assert.equal(r.coverage.reason, 'no drill of kind quarterly or monthly found: nothing is required');
  // Next quarter the same problem is marked recurring.
  const next = buildQuarterlyRecord(
    input({
      quarter: parseQuarter('2027-Q1')!,
      generatedAt: '2027-04-02T00:00:00.000Z',
      runs: [
        run('20270205T090000Z-pod-kill-000005', '2027-02-05T09:00:00.000Z', {
          findings: [f('SEV3', '2027-05-01', 'Availability SLO missed: 2 failed')],
        }),
      ],
      requirements: [],
      previous: r,
    }),
  );
  assert.equal(next.findings[0]!.recurring, true);
});

test('trend: against the previous record, a lower worst RTO and more runs read as better; quarters link through the chain', () => {
  const prev = buildQuarterlyRecord(
    input({
      quarter: parseQuarter('2026-Q3')!,
      generatedAt: '2026-10-02T00:00:00.000Z',
      runs: [run('20260915T090000Z-pod-kill-000001', '2026-09-15T09:00:00.000Z', { rto: 9 })],
    }),
  );
  const cur = buildQuarterlyRecord(
    input({
      runs: [
        run('20261005T090000Z-pod-kill-000002', '2026-10-05T09:00:00.000Z', { rto: 3 }),
        run('20261006T090000Z-pod-kill-000003', '2026-10-06T09:00:00.000Z', { rto: 4 }),
      ],
      previous: prev,
    }),
  );
  assert.equal(cur.trend.available, true);
  assert.equal(cur.trend.previousQuarter, '2026-Q3');
  const m = Object.fromEntries(cur.trend.overall.map((x) => [x.name, x]));
  assert.deepEqual([m['worst RTO (s)']!.previous, m['worst RTO (s)']!.current, m['worst RTO (s)']!.direction], [9, 4, 'better']);
  assert.deepEqual([m.runs!.previous, m.runs!.current, m.runs!.direction], [1, 2, 'better']);
  const sc = cur.trend.scenarios.find((s) => s.scenario === 'pod-kill')!;
  assert.equal(sc.metrics.find((x) => x.name === 'last RTO (s)')!.direction, 'better');
  const none = buildQuarterlyRecord(input({ previousReason: 'no previous record at results/records/2026-Q3/record.json' }));
  assert.deepEqual([none.trend.available, none.trend.reason], [false, 'no previous record at results/records/2026-Q3/record.json']);
  // The chain links quarters: this record starts from the previous head.
  assert.equal(cur.integrity.genesis, prev.integrity.head);
  assert.equal(cur.integrity.genesisFrom, '2026-Q3');
});

test('digest chain: verify passes on the recorded bytes; one changed byte, a missing run or an edited chain value fails', () => {
  const texts = ['{"id":"a"}', '{"id":"b"}', '{"id":"c"}'];
  const runs = texts.map((t, i) => ({ id: `r${i}`, file: `runs/r${i}/run.json`, digest: sha256(t) }));
  const chain = buildChain(runs);
  assert.equal(chain.genesis, GENESIS);
  assert.equal(chain.head, chain.entries.at(-1)!.chain);
  const actual = new Map(runs.map((r) => [r.id, r.digest]));
  assert.deepEqual(checkChain(chain, actual), []);

  const changed = new Map(actual);
  changed.set('r1', sha256('{"id":"B"}'));
  const p1 = checkChain(chain, changed);
  assert.equal(p1.length, 1);
  assert.match(p1[0]!.problem, /^digest mismatch/);
  assert.equal(p1[0]!.file, 'runs/r1/run.json');

  const gone = new Map<string, string | null>(actual);
  gone.set('r2', null);
  assert.match(checkChain(chain, gone)[0]!.problem, /missing/);

  // Someone edits a digest in record.json to match a doctored file: the chain no longer follows.
  const edited = structuredClone(chain);
  edited.entries[1]!.digest = sha256('{"id":"B"}');
  assert.ok(checkChain(edited, changed).some((p) => /chain value does not follow/.test(p.problem)));
  // Reordering entries breaks the chain too, and the check says where: the first entry out of place (r2, now first)
  // no longer follows from the one before it. Every file is intact, so no digest or missing-file problem is reported:
  // only the order (README: `drill verify` names any run record changed, missing or reordered).
  const reordered = structuredClone(chain);
  reordered.entries.reverse();
  const p3 = checkChain(reordered, actual);
  assert.equal(p3[0]!.id, 'r2');
  assert.equal(p3[0]!.file, 'runs/r2/run.json');
  assert.match(p3[0]!.problem, /order|chain value does not follow/);
  assert.deepEqual(
    p3.filter((p) => !/order|chain value does not follow|chain head/.test(p.problem)),
    [],
    'only order problems',
  );
  // The chain depends on order and genesis.
  assert.notEqual(buildChain(runs, 'f'.repeat(64)).head, chain.head);
});

test('bad run.json: truncated and foreign JSON are rejected with a reason; a good one parses', () => {
  const good = JSON.stringify(BASE);
  assert.equal(parseRunRecord(good).ok, true);
  const cut = parseRunRecord(good.slice(0, 300));
  assert.equal(cut.ok, false);
  assert.match((cut as { reason: string }).reason, /not valid JSON, the file looks truncated/);
  const foreign = parseRunRecord(JSON.stringify({ name: 'drill', version: '0.1.0', dependencies: {} }));
  assert.match(
    (foreign as { reason: string }).reason,
    /not a drill run record: no schemaVersion or id \(keys: name, version, dependencies\)/,
  );
  assert.match((parseRunRecord('[1,2]') as { reason: string }).reason, /not an object/);
  assert.match((parseRunRecord('') as { reason: string }).reason, /empty file/);
  const partial = JSON.parse(good);
  delete partial.objectives;
  assert.match((parseRunRecord(JSON.stringify(partial)) as { reason: string }).reason, /missing or wrong objectives/);
  assert.match((parseRunRecord(JSON.stringify({ ...JSON.parse(good), schemaVersion: 9 })) as { reason: string }).reason, /schemaVersion 9/);
});

test('excluded files: those dated in the quarter or undated are listed, others belong to another record', () => {
  const r = buildQuarterlyRecord(
    input({
      excluded: [
        { file: 'results/runs/20261102T000000Z-x-1/run.json', reason: 'not valid JSON', dated: '2026-11-02T00:00:00.000Z' },
        { file: 'results/runs/20260802T000000Z-x-2/run.json', reason: 'not valid JSON', dated: '2026-08-02T00:00:00.000Z' },
        { file: 'results/runs/stray.json', reason: 'not a run folder', dated: null },
      ],
    }),
  );
  assert.deepEqual(
    r.excluded.map((e) => e.file),
    ['results/runs/20261102T000000Z-x-1/run.json', 'results/runs/stray.json'],
  );
  assert.equal(r.summary.excluded, 2);
});

test('series: one point per second from metrics.jsonl; a long run is bucketed keeping the worst latency', () => {
  const line = (t: number, p99: number, failed = 0) => ({
    t,
    at: '',
    scheduled: 100,
    sent: 100,
    ok: 100 - failed,
    errors: { timeout: 0, refused: failed, http5xx: 0, http4xx: 0, other: 0 },
    dropped: 0,
    p50Ms: 1,
    p95Ms: 2,
    p99Ms: p99,
    maxMs: p99,
  });
  const short = seriesFromMetrics([line(1, 5, 10), line(0, 4)]);
  assert.deepEqual(
    short.points.map((p) => [p.t, p.p99Ms, p.errorRate]),
    [
      [0, 4, 0],
      [1, 5, 0.1],
    ],
  );
  const long = seriesFromMetrics(Array.from({ length: 2000 }, (_, t) => line(t, t === 1500 ? 900 : 5)));
  assert.equal(long.resolutionSeconds, 3);
  assert.ok(long.points.length <= 900);
  assert.equal(Math.max(...long.points.map((p) => p.p99Ms ?? 0)), 900, 'the spike survives bucketing');
});

test('a run.json cut anywhere reads as truncated; a bad byte in the middle does not', () => {
  const good = JSON.stringify(BASE, null, 2);
  for (const at of [1, 50, 300, 700, 701, good.length - 2]) {
    const r = parseRunRecord(good.slice(0, at));
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /the file looks truncated/, `cut at ${at}`);
  }
  const broken = parseRunRecord(good.slice(0, 200) + '}' + good.slice(201));
  assert.doesNotMatch((broken as { reason: string }).reason, /truncated/);
});

test('coverage: a period whose runs were all aborted is a gap (incomplete), not covered', () => {
  const runs = [
    { id: 'a', drill: 'checkout-quarterly', scenario: 'pod-kill', startedAt: '2026-11-03T09:00:00Z', status: 'aborted' as const },
    { id: 'b', drill: 'checkout-quarterly', scenario: 'db-failover', startedAt: '2026-11-04T09:00:00Z', status: 'aborted' as const },
    { id: 'c', drill: 'checkout-quarterly', scenario: 'db-failover', startedAt: '2026-11-05T09:00:00Z', status: 'failed' as const },
  ];
  const items = coverage(REQS.slice(0, 2), runs, Q4, '2027-01-05T00:00:00Z');
  assert.deepEqual(
    items.map((i) => [i.scenario, i.status, i.runs]),
    [
      ['pod-kill', 'incomplete', 1],
      ['db-failover', 'ran', 2],
    ],
    'a failed run still tested recovery',
  );
  assert.equal(coverage(REQS.slice(0, 1), runs, Q4, '2026-12-01T00:00:00Z')[0]!.status, 'due', 'still time to run it');
  const r = buildQuarterlyRecord(
    input({
      requirements: REQS.slice(0, 1),
      runs: [run('20261103T090000Z-pod-kill-000009', '2026-11-03T09:00:00.000Z', { status: 'aborted' })],
    }),
  );
  assert.equal(r.coverage.gaps, 1);
  assert.match(r.findings.find((f) => f.source === 'coverage')!.title, /never completed in 2026-Q4: every run was aborted/);
});

test('scope: databases from the lab target, backup sets from a restore run (its Blob target and the backup it restored)', () => {
  const lab = run('20261005T090000Z-pod-kill-000002', '2026-10-05T09:00:00.000Z');
  lab.record.environment = { target: { kind: 'lab', postgres: { host: '127.0.0.1', port: 15805, database: 'orders' } } };
  const restore = run('20261006T090000Z-restore-logical-000003', '2026-10-06T09:00:00.000Z', {
    drill: 'monthly-restore',
    scenario: 'restore-logical',
  });
  restore.record.environment = { target: { kind: 'blob', container: 'pg-backups', prefix: 'orders' } };
  restore.record.actions = [
    {
      ...restore.record.actions[0]!,
      targets: ['orders/logical/20261005T020000Z (taken 2026-10-05T02:00:00.000Z) -> scratch cluster in /tmp/drill-restore-1'],
    },
  ];
  const r = buildQuarterlyRecord(input({ runs: [lab, restore], requirements: [] }));
  assert.deepEqual(r.scope.databases, ['PostgreSQL orders (lab)']);
  assert.deepEqual(r.scope.backupSets, ['blob://pg-backups/orders', 'orders/logical/20261005T020000Z']);
  assert.deepEqual(
    r.scope.drills.map((d) => d.name),
    ['checkout-quarterly', 'monthly-restore'],
  );
  assert.deepEqual(r.people, { participants: ['alice'], approver: 'carol', owners: ['payments-sre'] });
  assert.deepEqual([r.signOff.signedBy, r.signOff.signedAt], [null, null]);
});
