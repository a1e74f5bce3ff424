import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tier } from '../../lib/config/types.ts';
import { deriveFindings, dueDate, type FindingsInput } from '../../lib/score/findings.ts';
import type { RpoResult, RtoResult, SloResult } from '../../lib/score/objectives.ts';

const RTO_MET: RtoResult = { targetSeconds: 60, measuredSeconds: 12, method: 'window', met: true };
const RTO_MISSED: RtoResult = { targetSeconds: 60, measuredSeconds: 75.2, method: 'window', met: false };
const RPO_NONE: RpoResult = {
  targetSeconds: 900,
  measuredSeconds: null,
  method: null,
  lostWrites: null,
  unknownWrites: null,
  met: null,
  reason: 'scenario writes no data; RPO not measured',
};
const ENDED = '2026-10-01T12:00:00.000Z';

function input(over: Partial<FindingsInput> = {}): FindingsInput {
  return { tier: 'critical', rto: RTO_MET, rpo: RPO_NONE, slo: [], verification: [], actions: [], dropped: 0, endedAt: ENDED, ...over };
}

function slo(phase: string, kind: SloResult['kind'], met: boolean | null): SloResult {
  const threshold = kind === 'latency' ? 'p(95)<500ms' : kind === 'errors' ? 'rate<0.1%' : 'rate>=99.9%';
  return { name: `${kind} ${threshold}`, kind, phase, threshold, measured: kind === 'latency' ? 812 : 0.931, met };
}

test('a clean run has no findings', () => {
  assert.deepEqual(deriveFindings(input({ slo: [slo('fault', 'availability', true), slo('recovery', 'latency', true)] })), []);
});

test('missed RTO: SEV1 on critical, SEV2 on important, SEV3 on standard', () => {
  const expected: Record<Tier, string> = { critical: 'SEV1', important: 'SEV2', standard: 'SEV3' };
  for (const tier of ['critical', 'important', 'standard'] as const) {
    const f = deriveFindings(input({ tier, rto: RTO_MISSED }));
    assert.equal(f.length, 1);
    assert.equal(f[0]!.severity, expected[tier]);
    assert.equal(f[0]!.objective, 'rto');
    assert.match(f[0]!.title, /75\.2 s vs target 60 s/);
  }
  const notRecovered = deriveFindings(input({ rto: { ...RTO_MISSED, measuredSeconds: null, reason: 'not recovered within 60 s' } }));
  assert.match(notRecovered[0]!.title, /not recovered/);
  assert.match(notRecovered[0]!.detail, /not recovered within 60 s/);
});

test('acknowledged writes lost beyond RPO are SEV1 data loss; any loss within RPO is SEV2', () => {
  const beyond = deriveFindings(
    input({ rpo: { ...RPO_NONE, measuredSeconds: 1200, lostWrites: 1449, unknownWrites: 2, method: 'ledger', met: false } }),
  );
  assert.deepEqual(
    beyond.map((f) => [f.severity, f.objective]),
    [['SEV1', 'rpo']],
  );
  assert.match(beyond[0]!.title, /Data loss beyond RPO: 1,449/);
  const within = deriveFindings(
    input({ rpo: { ...RPO_NONE, measuredSeconds: 0.8, lostWrites: 12, unknownWrites: 0, method: 'ledger', met: true } }),
  );
  assert.deepEqual(
    within.map((f) => f.severity),
    ['SEV2'],
  );
  const none = deriveFindings(
    input({ rpo: { ...RPO_NONE, measuredSeconds: 0, lostWrites: 0, unknownWrites: 5, method: 'ledger', met: true } }),
  );
  assert.deepEqual(none, []);
});

test('SLO misses: fault-phase latency SEV3, fault-phase availability and errors SEV2 with an outage, baseline and recovery SEV2', () => {
  const f = deriveFindings(
    input({
      downtimeSeconds: 2.01,
      slo: [
        slo('fault', 'latency', false),
        slo('fault', 'availability', false),
        slo('fault', 'errors', false),
        slo('baseline', 'latency', false),
        slo('recovery', 'availability', false),
        slo('recovery', 'latency', null),
      ],
    }),
  );
  const byObjective = Object.fromEntries(f.map((x) => [x.objective, x.severity]));
  assert.deepEqual(byObjective, {
    'slo:fault:latency p(95)<500ms': 'SEV3',
    'slo:fault:availability rate>=99.9%': 'SEV2',
    'slo:fault:errors rate<0.1%': 'SEV2',
    'slo:baseline:latency p(95)<500ms': 'SEV2',
    'slo:recovery:availability rate>=99.9%': 'SEV2',
  });
  assert.match(f.find((x) => x.objective === 'slo:recovery:availability rate>=99.9%')!.title, /after recovery/);
  assert.match(f.find((x) => x.objective === 'slo:baseline:latency p(95)<500ms')!.title, /before the fault/);
  assert.match(f.find((x) => x.objective === 'slo:fault:latency p(95)<500ms')!.detail, /812 ms/);
});

test('failed requests during the fault without a sustained outage are SEV3, not SEV2', () => {
  const f = deriveFindings(input({ downtimeSeconds: 0.01, slo: [slo('fault', 'availability', false), slo('fault', 'errors', false)] }));
  assert.deepEqual(
    f.map((x) => x.severity),
    ['SEV3', 'SEV3'],
  );
  assert.match(f[0]!.title, /no sustained outage/);
  assert.match(f[0]!.detail, /downtime 0\.01 s/);
  const down = deriveFindings(input({ downtimeSeconds: 1, slo: [slo('fault', 'availability', false)] }));
  assert.equal(down[0]!.severity, 'SEV2');
  assert.match(down[0]!.title, /the service was down/);
});

test('failed verification and failed rollback are SEV1; dropped requests a SEV4 note', () => {
  const f = deriveFindings(
    input({
      dropped: 37,
      verification: [
        { name: 'row counts match', ok: false, detail: '9,998 of 10,000 rows' },
        { name: 'replicas ready', ok: true, detail: '3/3' },
      ],
      actions: [
        { name: 'kill-pod', rollback: { status: 'done' } },
        { name: 'block-port', rollback: { status: 'failed', error: 'nft: permission denied' } },
      ],
    }),
  );
  assert.deepEqual(
    f.map((x) => [x.severity, x.title]),
    [
      ['SEV1', 'Verification failed: row counts match'],
      ['SEV1', 'Rollback failed: block-port'],
      ['SEV4', 'Load generator dropped 37 requests'],
    ],
  );
  assert.match(f[1]!.detail, /permission denied/);
  assert.equal(f[0]!.objective, 'verification');
});

test('findings come most severe first, with an empty owner and a due date by severity', () => {
  const f = deriveFindings(input({ tier: 'standard', rto: RTO_MISSED, dropped: 1, verification: [{ name: 'v', ok: false, detail: 'd' }] }));
  assert.deepEqual(
    f.map((x) => [x.severity, x.owner, x.due]),
    [
      ['SEV1', null, '2026-10-08'],
      ['SEV3', null, '2026-12-30'],
      ['SEV4', null, null],
    ],
  );
  assert.equal(dueDate('SEV2', ENDED), '2026-10-31');
  assert.equal(dueDate('SEV1', null), null);
});

test('a lag longer than an RPO target, warned about at validation, is a SEV3 finding on the RPO naming file, line and field', () => {
  const warning = {
    file: 'drills/annual.yaml',
    line: 7,
    col: 19,
    path: 'target.replicationLag',
    message: '1h is longer than the database RPO target of 15m (policy.rpo.database)',
  };
  const f = deriveFindings(input({ configWarnings: [warning] }));
  assert.equal(f.length, 1);
  assert.equal(f[0]!.severity, 'SEV3');
  assert.equal(f[0]!.objective, 'rpo');
  assert.equal(f[0]!.title, 'Configured lag longer than an RPO target (target.replicationLag)');
  assert.match(f[0]!.detail, /^drills\/annual\.yaml:7:19: target\.replicationLag: 1h is longer than the database RPO target of 15m/);
  assert.deepEqual(deriveFindings(input({ configWarnings: [] })), []);
});
