import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verdict, type VerdictInput } from '../../lib/score/verdict.ts';

const ALL_MET: VerdictInput['objectives'] = {
  rto: { met: true },
  rpo: { met: null },
  slo: [
    { name: 'availability rate>=99.9%', phase: 'baseline', met: true },
    { name: 'availability rate>=99.9%', phase: 'recovery', met: true },
  ],
  verification: { met: true },
};

function run(over: Partial<VerdictInput> = {}): ReturnType<typeof verdict> {
  return verdict({ objectives: ALL_MET, rollbackFailed: false, abort: null, harnessError: null, ...over });
}

test('every measured objective met: passed, exit 0; unmeasured objectives do not fail a run', () => {
  assert.deepEqual(run(), { status: 'passed', exitCode: 0, abortReason: null, reasons: [] });
});

test('any missed objective (RTO, RPO, SLO, verification): failed, exit 1, each named', () => {
  for (const [objectives, reason] of [
    [{ ...ALL_MET, rto: { met: false } }, 'RTO missed'],
    [{ ...ALL_MET, rpo: { met: false } }, 'RPO missed'],
    [{ ...ALL_MET, slo: [{ name: 'latency p(95)<500ms', phase: 'recovery', met: false }] }, 'SLO missed (recovery): latency p(95)<500ms'],
    [{ ...ALL_MET, verification: { met: false } }, 'verification failed'],
  ] as const) {
    assert.deepEqual(run({ objectives }), { status: 'failed', exitCode: 1, abortReason: null, reasons: [reason] });
  }
});

test('steady state not met: aborted with abortReason steady-state, exit 3', () => {
  const v = run({ abort: { kind: 'steady-state', message: 'steady state not met: SLO availability rate>=99.9%' } });
  assert.deepEqual(v, {
    status: 'aborted',
    exitCode: 3,
    abortReason: 'steady-state',
    reasons: ['steady state not met: SLO availability rate>=99.9%'],
  });
});

test('signal, stop condition and failed action: aborted, exit 4', () => {
  for (const kind of ['signal', 'stop-condition', 'action-failed'] as const) {
    const v = run({ abort: { kind, message: 'why' }, objectives: { ...ALL_MET, rto: { met: null } } });
    assert.deepEqual([v.status, v.exitCode, v.abortReason], ['aborted', 4, kind]);
  }
});

test('harness error: error, exit 70, even when objectives were missed', () => {
  const v = run({ harnessError: { message: 'TypeError: x is undefined' }, objectives: { ...ALL_MET, rto: { met: false } } });
  assert.deepEqual([v.status, v.exitCode], ['error', 70]);
  assert.deepEqual(v.reasons, ['harness error: TypeError: x is undefined', 'RTO missed']);
});

test('a failed rollback wins over everything: exit 5', () => {
  assert.deepEqual([run({ rollbackFailed: true }).status, run({ rollbackFailed: true }).exitCode], ['failed', 5]);
  const aborted = run({ rollbackFailed: true, abort: { kind: 'signal', message: 'SIGINT' } });
  assert.deepEqual([aborted.status, aborted.exitCode], ['aborted', 5]);
  const broken = run({ rollbackFailed: true, harnessError: { message: 'boom' }, objectives: { ...ALL_MET, rto: { met: false } } });
  assert.deepEqual([broken.status, broken.exitCode], ['error', 5]);
  assert.equal(broken.reasons[0], 'a rollback failed: the target may be left broken');
});
