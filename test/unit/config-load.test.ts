import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { DEFAULT_POLICY, defaultPolicy } from '../../lib/config/defaults.ts';
import type { Drill } from '../../lib/config/types.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';

function valid(text: string, file = 'drill.yaml'): Drill {
  const r = validateDrillText(file, text, testCatalog(), { capabilitiesOf });
  if ('problems' in r) assert.fail(`unexpected problems:\n${r.problems.map(formatProblem).join('\n')}`);
  return r.drill;
}

const FULL = `# Every key given, none left to a default.
name: lab-pod-kill
kind: quarterly
description: Kill replicas under load.
owner: platform-sre
participants: [alice, bob]
approver: carol
service:
  name: payments
  tier: important
  dataClass: file-storage
target:
  kind: lab
  replicas: 5
  labDir: /tmp/lab
policy:
  rto: { critical: 30m, important: 2h, standard: 12h }
  rpo: { database: 5m, file-storage: 30m, logs: 1h }
  slo:
    availability: ['rate>=99.5%']
    latency: ['p(90)<300ms', 'max<2s']
    errors: ['rate<1%']
  recoveryWindow: 15s
  budgetPeriod: 7d
  replicas: { min: 4, cpu: 60%, memory: 75 }
load:
  rate: 250.5
  requests:
    - { method: GET, path: '/orders?limit=10', weight: 9, headers: { X-Drill: yes } }
    - { method: POST, path: /orders, body: { item: widget, seq: '{{seq}}' } }
  timeout: 1500ms
  maxInFlight: 500
  connections: 32
  baseline: 20s
  cooldown: 0s
stopConditions:
  - 'error_rate > 50% for 10s'
  - 'p95 > 2s for 30s'
scenarios:
  - scenario: pod-kill
    name: kill-two-oldest
    params: { selector: app=payments, count: 2, mode: oldest }
    timeout: 2m
    tier: critical
    dataClass: database
  - scenario: exec
    params:
      fault: drill lab pause-front --for 2s
`;

test('a full drill normalises to the expected Drill', () => {
  const expected: Drill = {
    file: 'drills/full.yaml',
    name: 'lab-pod-kill',
    kind: 'quarterly',
    description: 'Kill replicas under load.',
    owner: 'platform-sre',
    participants: ['alice', 'bob'],
    approver: 'carol',
    service: { name: 'payments', tier: 'important', dataClass: 'file-storage' },
    target: { kind: 'lab', replicas: 5, labDir: '/tmp/lab' },
    policy: {
      rtoMs: { critical: 1_800_000, important: 7_200_000, standard: 43_200_000 },
      rpoMs: { database: 300_000, 'file-storage': 1_800_000, logs: 3_600_000 },
      slo: {
        availability: [{ source: 'rate>=99.5%', aggregate: { kind: 'rate' }, op: '>=', value: 0.995 }],
        latency: [
          { source: 'p(90)<300ms', aggregate: { kind: 'percentile', p: 90 }, op: '<', value: 300 },
          { source: 'max<2s', aggregate: { kind: 'max' }, op: '<', value: 2000 },
        ],
        errors: [{ source: 'rate<1%', aggregate: { kind: 'rate' }, op: '<', value: 0.01 }],
      },
      recoveryWindowMs: 15_000,
      budgetPeriodMs: 604_800_000,
      replicas: { minReplicas: 4, maxReplicas: 20, cpuPercent: 60, memoryPercent: 75 },
      maintenance: {
        days: [0],
        start: '02:00',
        end: '04:00',
        startMinute: 120,
        endMinute: 240,
        timeZone: 'UTC',
        noticeMs: 172_800_000,
        notice: '48h',
      },
    },
    load: {
      rate: 250.5,
      requests: [
        { method: 'GET', path: '/orders?limit=10', headers: { 'X-Drill': 'yes' }, weight: 9 },
        { method: 'POST', path: '/orders', body: { item: 'widget', seq: '{{seq}}' }, weight: 1 },
      ],
      timeoutMs: 1500,
      maxInFlight: 500,
      connections: 32,
      baselineMs: 20_000,
      cooldownMs: 0,
    },
    stopConditions: [
      { source: 'error_rate > 50% for 10s', metric: { kind: 'error_rate' }, op: '>', value: 0.5, forMs: 10_000 },
      { source: 'p95 > 2s for 30s', metric: { kind: 'latency', aggregate: { p: 95 } }, op: '>', value: 2000, forMs: 30_000 },
    ],
    scenarios: [
      {
        name: 'kill-two-oldest',
        scenario: 'pod-kill',
        params: { selector: 'app=payments', count: 2, mode: 'oldest' },
        timeoutMs: 120_000,
        tier: 'critical',
        dataClass: 'database',
        line: 40,
      },
      {
        name: 'exec',
        scenario: 'exec',
        params: { fault: 'drill lab pause-front --for 2s' },
        timeoutMs: 300_000,
        tier: 'important',
        dataClass: 'file-storage',
        line: 46,
      },
    ],
  };
  assert.deepEqual(valid(FULL, 'drills/full.yaml'), expected);
});

const MINIMAL = `name: minimal
kind: adhoc
target: { kind: lab }
load: { rate: 10 }
scenarios:
  - scenario: pod-kill
`;

test('a minimal drill gets the organisation defaults', () => {
  const d = valid(MINIMAL);
  assert.deepEqual(d.policy, defaultPolicy());
  assert.equal(d.policy.rtoMs.critical, 3_600_000);
  assert.equal(d.policy.rtoMs.important, 4 * 3_600_000);
  assert.equal(d.policy.rtoMs.standard, 24 * 3_600_000);
  assert.deepEqual(d.policy.rpoMs, { database: 15 * 60_000, 'file-storage': 3_600_000, logs: 24 * 3_600_000 });
  assert.deepEqual(
    d.policy.slo.availability.map((t) => t.source),
    ['rate>=99.9%'],
  );
  assert.deepEqual(
    d.policy.slo.latency.map((t) => t.source),
    ['p(50)<100ms', 'p(95)<500ms', 'p(99)<1000ms'],
  );
  assert.deepEqual(
    d.policy.slo.errors.map((t) => [t.source, t.value]),
    [['rate<0.1%', 0.001]],
  );
  assert.equal(d.policy.recoveryWindowMs, 10_000);
  // 0.1% of the budget period is the familiar 43.8 minutes.
  assert.equal(Math.round((d.policy.budgetPeriodMs * 0.001) / 6_000) / 10, 43.8);
  assert.deepEqual(d.load, {
    rate: 10,
    requests: [{ method: 'GET', path: '/', weight: 1 }],
    timeoutMs: 2000,
    maxInFlight: 1000,
    connections: 64,
    baselineMs: 10_000,
    cooldownMs: 5000,
  });
  assert.deepEqual(d.target, { kind: 'lab', replicas: 3 });
  assert.deepEqual(d.service, { name: 'orders', tier: 'critical', dataClass: 'database' });
  assert.deepEqual(d.participants, []);
  assert.deepEqual(d.stopConditions, []);
  assert.equal('description' in d || 'owner' in d || 'approver' in d, false);
  assert.deepEqual(d.scenarios, [
    {
      name: 'pod-kill',
      scenario: 'pod-kill',
      params: { selector: 'app=orders', count: 1, mode: 'random' },
      timeoutMs: 300_000,
      tier: 'critical',
      dataClass: 'database',
      line: 6,
    },
  ]);
});

test('policy overrides replace single keys and whole SLO lists, leaving the rest at the defaults', () => {
  const d = valid(
    MINIMAL.replace('load:', "policy:\n  rto: { standard: 8h }\n  rpo: { logs: 0s }\n  slo: { latency: ['p(99)<2s'] }\nload:"),
  );
  assert.deepEqual(d.policy.rtoMs, { critical: 3_600_000, important: 14_400_000, standard: 28_800_000 });
  assert.deepEqual(d.policy.rpoMs, { database: 900_000, 'file-storage': 3_600_000, logs: 0 });
  assert.deepEqual(
    d.policy.slo.latency.map((t) => t.source),
    ['p(99)<2s'],
  );
  assert.deepEqual(d.policy.slo.availability, DEFAULT_POLICY.slo.availability);
  assert.deepEqual(d.policy.slo.errors, DEFAULT_POLICY.slo.errors);
  assert.equal(d.policy.recoveryWindowMs, DEFAULT_POLICY.recoveryWindowMs);
});

test('an empty SLO list means no objective of that kind, not the default', () => {
  const d = valid(MINIMAL.replace('load:', 'policy: { slo: { latency: [] } }\nload:'));
  assert.deepEqual(d.policy.slo.latency, []);
});

test('normalising one drill never changes the defaults another drill gets', () => {
  const a = valid(MINIMAL.replace('load:', 'policy: { rto: { critical: 1m } }\nload:'));
  a.policy.slo.latency.length = 0;
  const b = valid(MINIMAL);
  assert.equal(b.policy.rtoMs.critical, 3_600_000);
  assert.equal(b.policy.slo.latency.length, 3);
  assert.ok(Object.isFrozen(DEFAULT_POLICY.slo.latency));
});

test('an entry takes its tier and data class from itself, then the service block, then the scenario', () => {
  const entries = `scenarios:
  - { scenario: exec, name: from-scenario, params: { fault: 'true' } }
  - { scenario: exec, name: from-entry, tier: standard, dataClass: database, params: { fault: 'true' } }
`;
  const bare = valid(MINIMAL.replace(/scenarios:[\s\S]*$/, entries));
  assert.deepEqual(
    bare.scenarios.map((e) => [e.name, e.tier, e.dataClass]),
    [
      ['from-scenario', 'important', 'logs'],
      ['from-entry', 'standard', 'database'],
    ],
  );
  // The service block outranks the scenario's own class, but not what an entry says.
  const withService = valid(MINIMAL.replace(/scenarios:[\s\S]*$/, `service: { tier: critical }\n${entries}`));
  assert.deepEqual(
    withService.scenarios.map((e) => [e.name, e.tier, e.dataClass]),
    [
      ['from-scenario', 'critical', 'logs'],
      ['from-entry', 'standard', 'database'],
    ],
  );
});

test('an http target is kept as given', () => {
  const d = valid(`name: http-drill
kind: monthly
target: { kind: http, url: 'https://orders.example.com:8443/api' }
load: { rate: 5 }
scenarios: [{ scenario: exec, params: { fault: 'true', rollback: 'true' } }]
`);
  assert.deepEqual(d.target, { kind: 'http', url: 'https://orders.example.com:8443/api' });
  assert.deepEqual(d.scenarios[0]?.params, { fault: 'true', rollback: 'true' });
});

test('YAML anchors and aliases are followed, with positions still in the file', () => {
  const text = `name: aliases
kind: adhoc
target: { kind: lab, replicas: 2 }
load: { rate: 10 }
x-common: &common { count: 3 }
scenarios:
  - scenario: pod-kill
    params: *common
`;
  const r = validateDrillText('a.yaml', text, testCatalog(), { capabilitiesOf });
  assert.ok('problems' in r);
  assert.deepEqual(r.problems.map(formatProblem), [
    'a.yaml:5:1: x-common: unknown key "x-common"; allowed: name, kind, description, owner, participants, approver, service, target, policy, load, stopConditions, scenarios',
    'a.yaml:5:28: scenarios[0].params.count: cannot kill 3 replicas: the lab target runs 2',
  ]);
});

test('scenario checks still run when another part of the drill is wrong', () => {
  const r = validateDrillText(
    'b.yaml',
    MINIMAL.replace('{ rate: 10 }', '{ rate: fast }').replace('scenario: pod-kill', 'scenario: pod-kil'),
    testCatalog(),
    { capabilitiesOf },
  );
  assert.ok('problems' in r);
  assert.deepEqual(
    r.problems.map((p) => `${p.line}:${p.col} ${p.path}`),
    ['4:15 load.rate', '6:15 scenarios[0].scenario'],
  );
});

test('capabilities and the validate hook are not checked against a target that is itself invalid', () => {
  const r = validateDrillText(
    'c.yaml',
    MINIMAL.replace('{ kind: lab }', '{ kind: lab, replicas: 0 }').replace('pod-kill', 'pod-kill\n    params: { count: 2 }'),
    testCatalog(),
    { capabilitiesOf },
  );
  assert.ok('problems' in r);
  assert.deepEqual(
    r.problems.map((p) => p.path),
    ['target.replicas'],
  );
});

test('a catalogue without scenarios says so', () => {
  const r = validateDrillText('d.yaml', MINIMAL, new Map(), { capabilitiesOf });
  assert.ok('problems' in r);
  assert.deepEqual(
    r.problems.map((p) => p.message),
    ['unknown scenario "pod-kill"; no scenarios are installed'],
  );
});

test('formatProblem prints file:line:col: path: message, and drops an empty path', () => {
  assert.equal(
    formatProblem({ file: 'drills/lab.yaml', line: 7, col: 5, path: 'load.rate', message: 'expected a number greater than 0, got 0' }),
    'drills/lab.yaml:7:5: load.rate: expected a number greater than 0, got 0',
  );
  assert.equal(
    formatProblem({ file: 'x.yaml', line: 1, col: 1, path: '', message: 'cannot read the drill file: no such file' }),
    'x.yaml:1:1: cannot read the drill file: no such file',
  );
});

test('paths quote keys that are not plain words', () => {
  const r = validateDrillText(
    'e.yaml',
    MINIMAL.replace('{ rate: 10 }', "{ rate: 10, requests: [{ method: GET, path: /, headers: { 'bad header': x } }] }"),
    testCatalog(),
    { capabilitiesOf },
  );
  assert.ok('problems' in r);
  assert.deepEqual(r.problems.map(formatProblem), [
    'e.yaml:4:79: load.requests[0].headers["bad header"]: expected a valid HTTP header name, got "bad header"',
  ]);
});

test('an empty request list is reported once, not again as weights adding up to 0', () => {
  const r = validateDrillText('f.yaml', MINIMAL.replace('{ rate: 10 }', '{ rate: 10, requests: [] }'), testCatalog(), { capabilitiesOf });
  assert.ok('problems' in r);
  assert.deepEqual(r.problems.map(formatProblem), ['f.yaml:4:29: load.requests: expected at least one entry, got an empty list']);
});
