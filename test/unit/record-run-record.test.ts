import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outcome } from '../../lib/measure/request-log.ts';
import type { RunFacts } from '../../lib/engine/facts.ts';
import type { KubernetesTarget } from '../../lib/config/types.ts';
import { RunAbort } from '../../lib/engine/context.ts';
import { buildRunRecord, describeEnvironment, type RunRecordInput, targetLabel } from '../../lib/record/run-record.ts';
import { redact, redactSecrets } from '../../lib/util/secrets.ts';
import { sampleLog, sampleMark, sampleRunInput } from '../support/record-sample.ts';

// DESIGN.md "The run record": the fields users and CI rely on, plus the four this module adds.
const DESIGN_KEYS = [
  'schemaVersion',
  'id',
  'drill',
  'scenario',
  'target',
  'startedAt',
  'endedAt',
  'status',
  'tier',
  'dataClass',
  'marks',
  'objectives',
  'window',
  'load',
  'errorBudget',
  'actions',
  'findings',
  'environment',
];
const ADDED_KEYS = ['scenarioModule', 'phases', 'recovery', 'abort', 'exitCode'];

function hasKeys(obj: object, keys: string[], what: string) {
  for (const k of keys) assert.ok(k in obj, `${what} lacks ${k}`);
}

test('run.json has exactly the DESIGN fields plus phases, recovery, abort and exitCode', () => {
  const r = buildRunRecord(sampleRunInput());
  assert.deepEqual(Object.keys(r).sort(), [...DESIGN_KEYS, ...ADDED_KEYS].sort());
  assert.equal(r.schemaVersion, 1);
  hasKeys(r.objectives, ['rto', 'rpo', 'slo'], 'objectives');
  hasKeys(r.objectives.rto, ['targetSeconds', 'measuredSeconds', 'method', 'met'], 'rto');
  hasKeys(r.objectives.rpo, ['targetSeconds', 'measuredSeconds', 'method', 'lostWrites', 'unknownWrites', 'met'], 'rpo');
  for (const s of r.objectives.slo) hasKeys(s, ['name', 'threshold', 'measured', 'met'], 'slo');
  hasKeys(r.load, ['scheduled', 'sent', 'ok', 'errors', 'dropped', 'availability', 'p50Ms', 'p95Ms', 'p99Ms', 'maxMs'], 'load');
  hasKeys(r.errorBudget, ['downtimeSeconds', 'monthlyBudgetSeconds', 'consumedRatio'], 'errorBudget');
  for (const m of r.marks) assert.deepEqual(Object.keys(m), ['name', 'at', 'ms']);
  for (const a of r.actions) hasKeys(a, ['name', 'startedAt', 'endedAt', 'status', 'targets', 'rollback'], 'action');
  assert.ok('status' in r.actions[0]!.rollback);
  for (const f of r.findings) hasKeys(f, ['severity', 'title', 'detail'], 'finding');
  hasKeys(r.environment, ['harnessVersion', 'node', 'platform'], 'environment');
  hasKeys(r.recovery, ['windowSeconds', 'resolutionMs', 'method', 'downtimeSeconds', 'outageIntervals'], 'recovery');
  assert.deepEqual(Object.keys(r.phases), ['baseline', 'fault', 'recovery', 'run']);
  // Plain JSON: nothing undefined, NaN or Infinity that would change on the way through a file.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

test('a recovered run: RTO from the marks, downtime and intervals from the log, passed with exit 0', () => {
  const r = buildRunRecord(sampleRunInput());
  assert.deepEqual([r.status, r.exitCode, r.abort], ['passed', 0, null]);
  assert.deepEqual([r.drill, r.scenario, r.target, r.tier, r.dataClass], ['checkout-quarterly', 'pod-kill', 'lab', 'critical', 'database']);
  assert.equal(r.objectives.rto.measuredSeconds, 2);
  assert.equal(r.objectives.rto.met, true);
  assert.match(r.objectives.rto.method!, /10 s window.*"replicas ready".*resolution 5 ms at 200 req\/s/);
  assert.equal(r.objectives.rpo.met, null);
  assert.equal(r.objectives.rpo.reason, 'scenario writes no data; RPO not measured');
  assert.deepEqual(r.objectives.verification.met, true);

  assert.equal(r.recovery.downtimeSeconds, 2);
  assert.equal(r.recovery.resolutionMs, 5);
  assert.equal(r.recovery.windowSeconds, 10);
  assert.deepEqual(
    r.recovery.outageIntervals.map((i) => [i.startMs, i.endMs, i.failed, i.kinds.refused, i.startAt]),
    [[10_000, 12_000, 400, 400, '2026-10-01T09:00:10.000Z']],
  );
  assert.equal(r.errorBudget.downtimeSeconds, 2);
  assert.equal(r.errorBudget.monthlyBudgetSeconds, 2629.8);

  assert.deepEqual([r.load.scheduled, r.load.ok, r.load.errors, r.load.dropped], [8000, 7600, 400, 0]);
  // The four requests sent in the last 20 ms before the fault were still in flight at it: they are judged with the fault.
  assert.deepEqual([r.phases.baseline!.scheduled, r.phases.fault!.scheduled, r.phases.recovery!.scheduled], [1996, 404, 5600]);
  // Objectives judge SLOs outside the fault; the fault phase's misses become findings.
  assert.deepEqual([...new Set(r.objectives.slo.map((s) => s.phase))], ['baseline', 'recovery']);
  assert.ok(r.objectives.slo.every((s) => s.met === true));
  assert.equal(r.phases.fault!.slo.find((s) => s.kind === 'availability')!.met, false);
  assert.deepEqual(
    r.findings.map((f) => [f.severity, f.objective]),
    [
      ['SEV2', 'slo:fault:availability rate>=99.9%'],
      ['SEV2', 'slo:fault:errors rate<0.1%'],
    ],
  );
});

test('steady state not met: aborted with exit 3, nothing measured that needs a fault, each with a reason', () => {
  const input = sampleRunInput();
  input.marks = [sampleMark('load-started', 0), sampleMark('load-stopped', 10_000)];
  input.load = { log: sampleLog(200, 10_000, () => ({ outcome: Outcome.http5xx, latencyMs: 3 })), startMs: 0, endMs: 10_000 };
  input.abort = { kind: 'steady-state', message: 'steady state not met: SLO availability rate>=99.9% (measured 0)' };
  input.actions = input.actions.map((a) => ({
    ...a,
    status: 'not-run',
    startedAt: null,
    endedAt: null,
    rollback: { ...a.rollback, status: 'not-run' },
  }));
  input.verification = [];
  input.recoveryProbe = null;
  const r = buildRunRecord(input);
  assert.deepEqual([r.status, r.exitCode], ['aborted', 3]);
  assert.deepEqual(r.abort, { kind: 'steady-state', reason: 'steady state not met: SLO availability rate>=99.9% (measured 0)' });
  assert.equal(r.objectives.rto.met, null);
  assert.match(r.objectives.rto.reason!, /steady state not met.*RTO not measured/);
  assert.match(r.objectives.rpo.reason!, /RPO not measured/);
  assert.equal(r.objectives.verification.met, null);
  assert.match(r.objectives.verification.reason!, /did not run/);
  assert.equal(r.recovery.downtimeSeconds, null);
  assert.ok(r.recovery.reason);
  assert.deepEqual([r.phases.fault, r.phases.recovery], [null, null]);
  assert.equal(r.phases.baseline!.scheduled, 2000);
  assert.equal(r.errorBudget.consumedRatio, null);
  assert.ok(r.errorBudget.reason);
});

test('not recovered within the timeout: RTO missed (measured null), exit 1, a SEV1 finding for a critical service', () => {
  const input = sampleRunInput();
  input.marks = input.marks.filter((m) => m.name !== 'recovered' && m.name !== 'verified');
  input.load = {
    log: sampleLog(200, 40_000, (t) =>
      t >= 10_000 ? { outcome: Outcome.timeout, latencyMs: 2000 } : { outcome: Outcome.ok, latencyMs: 20 },
    ),
    startMs: 0,
    endMs: 40_000,
  };
  input.verification = [{ name: 'replicas ready', ok: false, detail: '2/3 replicas ready', at: input.endedAt }];
  const r = buildRunRecord(input);
  assert.deepEqual([r.status, r.exitCode], ['failed', 1]);
  assert.deepEqual([r.objectives.rto.measuredSeconds, r.objectives.rto.met], [null, false]);
  assert.match(r.objectives.rto.reason!, /not recovered within the scenario timeout of 60 s/);
  assert.equal(r.recovery.downtimeSeconds, 30);
  assert.match(r.recovery.reason!, /did not recover/);
  assert.equal(r.phases.recovery, null);
  const recoverySlo = r.objectives.slo.filter((s) => s.phase === 'recovery');
  assert.equal(recoverySlo.length, 4);
  assert.ok(recoverySlo.every((s) => s.met === null && /no recovery phase/.test(s.reason!)));
  assert.deepEqual(
    r.findings.filter((f) => f.severity === 'SEV1').map((f) => f.objective),
    ['rto', 'verification'],
  );
});

test('a failed rollback makes exit 5 even when every objective was met', () => {
  const input = sampleRunInput();
  input.actions[0]!.rollback = { ...input.actions[0]!.rollback, status: 'failed', error: 'replica-2 did not start within 30s' };
  const r = buildRunRecord(input);
  assert.deepEqual([r.status, r.exitCode], ['failed', 5]);
  assert.equal(r.actions[0]!.rollback.error, 'replica-2 did not start within 30s');
  assert.equal(r.findings[0]!.title, 'Rollback failed: kill-pod');
});

test('an interrupted run: aborted with exit 4, RTO unmeasured rather than missed', () => {
  const input = sampleRunInput();
  input.marks = input.marks.filter((m) => !['recovered', 'verified'].includes(m.name));
  input.abort = { kind: 'signal', message: 'interrupted (SIGINT)' };
  input.verification = [];
  const r = buildRunRecord(input);
  assert.deepEqual([r.status, r.exitCode, r.objectives.rto.met], ['aborted', 4, null]);
  assert.match(r.objectives.rto.reason!, /stopped before the service recovered \(interrupted \(SIGINT\)\)/);
});

test('a harness error: status error, exit 70, the message kept as the abort reason', () => {
  const input = sampleRunInput();
  input.harnessError = { message: 'TypeError: cannot read properties of undefined' };
  const r = buildRunRecord(input);
  assert.deepEqual([r.status, r.exitCode], ['error', 70]);
  assert.deepEqual(r.abort, { kind: 'harness-error', reason: 'TypeError: cannot read properties of undefined' });
});

test('an RPO measurement from the write ledger is scored against the data class', () => {
  const input = sampleRunInput();
  input.rpo = { measuredSeconds: 1.25, lostWrites: 1449, unknownWrites: 3, method: 'write ledger: unique tokens read back after recovery' };
  const r = buildRunRecord(input);
  assert.deepEqual(
    [r.objectives.rpo.measuredSeconds, r.objectives.rpo.lostWrites, r.objectives.rpo.unknownWrites, r.objectives.rpo.met],
    [1.25, 1449, 3, true],
  );
  assert.ok(r.findings.some((f) => f.objective === 'rpo' && f.severity === 'SEV2'));
});

test('no secret reaches the record: secret-named keys dropped, inline passwords and signatures masked', () => {
  const input = sampleRunInput();
  input.drill = { ...input.drill, target: { kind: 'http', url: 'https://ops:hunter2@checkout.example.com/health?sig=SIGVALUE&sv=2024' } };
  input.targetDetails = {
    kind: 'http',
    url: 'https://ops:hunter2@checkout.example.com/health?sig=SIGVALUE&sv=2024',
    password: 'PW-1',
    apiToken: 'TOKEN-1',
    blob: {
      connectionString: 'DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=KEY-1==;',
      container: 'backups',
      sasUrl: 'https://x/?sig=SAS-1',
    },
    postgres: { dsn: 'host=db port=5432 user=app password=PW-2 dbname=orders', replicas: ['db-0', 'db-1'] },
  };
  input.environment = { ...input.environment, PGPASSWORD: 'PW-3', secretName: 'S-1', note: 'Server=db;Password=PW-4;' };
  input.actions[0]!.rollback.error = 'psql: connection to "postgresql://app:PW-5@db/orders" failed';
  input.actions[0]!.rollback.status = 'failed';
  input.marks = input.marks.filter((m) => m.name !== 'recovered');
  input.abort = { kind: 'action-failed', message: 'action "restore" failed: pg_restore -d "host=db password=PW-6"' };
  const r = buildRunRecord(input);
  assert.match(r.objectives.rto.reason!, /password=\*\*\*/);
  const text = JSON.stringify(r);
  for (const secret of ['hunter2', 'SIGVALUE', 'PW-1', 'TOKEN-1', 'KEY-1', 'SAS-1', 'PW-2', 'PW-3', 'S-1', 'PW-4', 'PW-5', 'PW-6']) {
    assert.ok(!text.includes(secret), `${secret} leaked into the record`);
  }
  // What is not secret stays, so the record still says where the drill ran.
  const target = r.environment.target as Record<string, unknown>;
  assert.equal(target.kind, 'http');
  assert.equal((target.blob as Record<string, unknown>).container, 'backups');
  assert.deepEqual((target.postgres as Record<string, unknown>).replicas, ['db-0', 'db-1']);
  assert.equal(r.target, 'https://ops:***@checkout.example.com/health?sig=***&sv=2024');
});

test('redact and redactSecrets on their own', () => {
  assert.deepEqual(redact({ a: 1, Password: 'x', nested: [{ SAS: 'y', ok: 'password=z;next=1' }], sessionKey: 'k', n: null }), {
    a: 1,
    nested: [{ ok: 'password=***;next=1' }],
    n: null,
  });
  assert.equal(
    redactSecrets('https://acct.blob.core.windows.net/c/b?sv=1&sig=abc%2F&se=2'),
    'https://acct.blob.core.windows.net/c/b?sv=1&sig=***&se=2',
  );
  assert.equal(redactSecrets('postgres://user:pa55@host:5432/db'), 'postgres://user:***@host:5432/db');
  assert.equal(redactSecrets('nothing to hide'), 'nothing to hide');
});

test("the engine's RunFacts plus the environment is a complete input", () => {
  // Compiles only while RunFacts stays assignable: the engine hands its facts over as they are.
  const toInput = (f: RunFacts): RunRecordInput => ({ ...f, environment: describeEnvironment('0.1.0') });
  const sample = sampleRunInput();
  const facts: RunFacts = {
    ...sample,
    dir: '/tmp/results/runs/x',
    drill: sample.drill as RunFacts['drill'],
    entry: sample.entry as RunFacts['entry'],
    steadyState: [],
    actions: sample.actions.map((a, index) => ({ ...a, index })),
    rpo: sample.rpo ?? null,
    skippedChecks: [],
    abort: new RunAbort('stop-condition', 'stop condition "error_rate>5% for 3s" held'),
    load: { ...sample.load!, seconds: [] },
  };
  const r = buildRunRecord(toInput(facts));
  assert.deepEqual([r.status, r.exitCode, r.abort?.kind], ['aborted', 4, 'stop-condition']);
  assert.match(String(r.environment.node), /^v\d+/);
});

test('the record names a Kubernetes run by context and namespace, not by the URL the load went to', () => {
  const kube: KubernetesTarget = {
    kind: 'kubernetes',
    context: 'aks-prod',
    inCluster: false,
    namespace: 'orders',
    namespaces: ['orders'],
    blastRadius: 1,
    url: 'https://orders.example.com',
  };
  const { context: _spelled, ...current } = kube;
  // The context the kubeconfig resolved (details) wins over the drill's spelling, which may be absent.
  assert.equal(targetLabel(current, { context: 'aks-prod-westeurope' }), 'kubernetes:aks-prod-westeurope/orders');
  assert.equal(targetLabel(kube, {}), 'kubernetes:aks-prod/orders');
  assert.equal(targetLabel({ ...current, inCluster: true }, {}), 'kubernetes:in-cluster/orders');
  assert.equal(targetLabel({ kind: 'blob', container: 'pg-backups', prefix: 'orders/' }, {}), 'blob:pg-backups/orders/');
  assert.equal(targetLabel({ kind: 'lab', replicas: 3 }, {}), 'lab');
});
