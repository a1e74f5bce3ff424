import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Policy, SloSet } from '../../lib/config/types.ts';
import { createRequestLog, Outcome } from '../../lib/measure/request-log.ts';
import { parseThreshold } from '../../lib/config/threshold.ts';
import { rpoFromLedger, scoreRpo, scoreRto, scoreSlos } from '../../lib/score/objectives.ts';
import { checkLedger, type LedgerEntry } from '../../lib/measure/ledger.ts';
import { summarize } from '../../lib/measure/summary.ts';
import { latencyHistogram } from '../../lib/measure/phases.ts';

const POLICY: Pick<Policy, 'rtoMs' | 'rpoMs'> = {
  rtoMs: { critical: 3_600_000, important: 14_400_000, standard: 86_400_000 },
  rpoMs: { database: 900_000, 'file-storage': 3_600_000, logs: 86_400_000 },
};
const METHOD =
  'recovered = start of the first 10 s window after the fault in which every SLO held; per-request resolution 5 ms at 200 req/s';

test('RTO met: measured seconds from the fault to recovery, against the tier target', () => {
  assert.deepEqual(scoreRto({ tier: 'critical', policy: POLICY, faultMs: 10_000, recoveredMs: 22_412.4, method: METHOD }), {
    targetSeconds: 3600,
    measuredSeconds: 12.412,
    method: METHOD,
    met: true,
  });
});

test('RTO missed when recovery took longer than the tier allows', () => {
  const tight = { ...POLICY, rtoMs: { ...POLICY.rtoMs, important: 5_000 } };
  const r = scoreRto({ tier: 'important', policy: tight, faultMs: 10_000, recoveredMs: 15_001, method: METHOD });
  assert.equal(r.measuredSeconds, 5.001);
  assert.equal(r.targetSeconds, 5);
  assert.equal(r.met, false);
});

test('RTO not recovered within the timeout: measured null, met false, with the reason', () => {
  const r = scoreRto({
    tier: 'standard',
    policy: POLICY,
    faultMs: 10_000,
    recoveredMs: null,
    method: METHOD,
    reason: 'not recovered within 60 s',
  });
  assert.deepEqual(r, { targetSeconds: 86_400, measuredSeconds: null, method: METHOD, met: false, reason: 'not recovered within 60 s' });
});

test('RTO not measured: nothing injected, or the run stopped before recovery', () => {
  const none = scoreRto({
    tier: 'critical',
    policy: POLICY,
    faultMs: null,
    recoveredMs: null,
    method: METHOD,
    reason: 'steady state not met; RTO not measured',
  });
  assert.deepEqual(none, {
    targetSeconds: 3600,
    measuredSeconds: null,
    method: null,
    met: null,
    reason: 'steady state not met; RTO not measured',
  });
  const stopped = scoreRto({ tier: 'critical', policy: POLICY, faultMs: 10_000, recoveredMs: null, method: METHOD, interrupted: true });
  assert.equal(stopped.met, null);
  assert.equal(stopped.measuredSeconds, null);
  assert.match(stopped.reason!, /stopped before the service recovered/);
});

test('RPO: a scenario that writes no data is not measured', () => {
  assert.deepEqual(scoreRpo({ dataClass: 'database', policy: POLICY, measurement: null }), {
    targetSeconds: 900,
    measuredSeconds: null,
    method: null,
    lostWrites: null,
    unknownWrites: null,
    met: null,
    reason: 'scenario writes no data; RPO not measured',
  });
});

test('RPO met, missed, and unreadable ledger', () => {
  const method = 'write ledger: unique keys read back after recovery';
  const met = scoreRpo({
    dataClass: 'database',
    policy: POLICY,
    measurement: { measuredSeconds: 0, lostWrites: 0, unknownWrites: 3, method },
  });
  assert.deepEqual(met, { targetSeconds: 900, method, lostWrites: 0, unknownWrites: 3, measuredSeconds: 0, met: true });

  const missed = scoreRpo({
    dataClass: 'database',
    policy: POLICY,
    measurement: { measuredSeconds: 901.5, lostWrites: 1200, unknownWrites: 0, method },
  });
  assert.equal(missed.met, false);
  assert.equal(missed.lostWrites, 1200);

  const unread = scoreRpo({
    dataClass: 'logs',
    policy: POLICY,
    measurement: { measuredSeconds: null, lostWrites: 0, unknownWrites: 0, method, reason: 'the database did not come back' },
  });
  assert.equal(unread.met, null);
  assert.equal(unread.reason, 'the database did not come back');
  assert.equal(unread.targetSeconds, 86_400);
});

test('RPO from the write ledger: lost acknowledged writes, and only unknown writes that are absent count as unknown', () => {
  // Acked at 1, 2, 3 s; the one acked at 2 s is gone; two timed out, one of which committed anyway.
  const entries: LedgerEntry[] = [
    { seq: 1, token: 'a', sentMs: 900, ackMs: 1000, outcome: 'ok' },
    { seq: 2, token: 'b', sentMs: 1900, ackMs: 2000, outcome: 'ok' },
    { seq: 3, token: 'c', sentMs: 2900, ackMs: 3000, outcome: 'ok' },
    { seq: 4, token: 'd', sentMs: 3900, ackMs: null, outcome: 'unknown' },
    { seq: 5, token: 'e', sentMs: 4900, ackMs: null, outcome: 'unknown' },
  ];
  const m = rpoFromLedger(checkLedger(entries, new Set(['a', 'c', 'd']), 5000));
  assert.deepEqual([m.measuredSeconds, m.lostWrites, m.unknownWrites], [4, 1, 1]);
  const r = scoreRpo({ dataClass: 'database', policy: POLICY, measurement: m });
  assert.deepEqual([r.met, r.lostWrites, r.unknownWrites], [true, 1, 1]);
  assert.equal(r.method, m.method);
});

const SLO: SloSet = {
  availability: [parseThreshold('rate>=99.9%')],
  errors: [parseThreshold('rate<0.1%')],
  latency: [parseThreshold('p(95)<500ms'), parseThreshold('p(90)<300ms')],
};

/** 1,000 requests, 1..1000 ms, the first `failed` of them refused. */
function spanLog(failed: number) {
  const log = createRequestLog();
  for (let i = 0; i < 1000; i++) {
    const j = log.push(i, 0);
    log.outcome[j] = i < failed ? Outcome.refused : Outcome.ok;
    log.latencyMs[j] = i + 1;
  }
  return log;
}

test('SLOs scored per phase: names, measured values in ms or ratio, met', () => {
  const log = spanLog(5);
  const r = scoreSlos(SLO, summarize(log), 'fault', latencyHistogram(log, 0, Infinity));
  assert.deepEqual(
    r.map((s) => [s.name, s.phase, s.threshold, s.met]),
    [
      ['availability rate>=99.9%', 'fault', 'rate>=99.9%', false],
      ['errors rate<0.1%', 'fault', 'rate<0.1%', false],
      ['latency p(95)<500ms', 'fault', 'p(95)<500ms', false],
      ['latency p(90)<300ms', 'fault', 'p(90)<300ms', false],
    ],
  );
  assert.equal(r[0]!.measured, 0.995);
  assert.ok(Math.abs(r[1]!.measured! - 0.005) < 1e-12);
  assert.ok(Math.abs(r[2]!.measured! - 950) < 1);
  assert.ok(Math.abs(r[3]!.measured! - 900) < 1);
});

test('SLOs met on a healthy span', () => {
  const log = createRequestLog();
  for (let i = 0; i < 2000; i++) {
    const j = log.push(i, 0);
    log.outcome[j] = Outcome.ok;
    log.latencyMs[j] = 20;
  }
  const r = scoreSlos(SLO, summarize(log), 'recovery', latencyHistogram(log, 0, Infinity));
  assert.deepEqual(
    r.map((s) => s.met),
    [true, true, true, true],
  );
  assert.equal(r[0]!.measured, 1);
  assert.equal(r[1]!.measured, 0);
});

test('without the histogram, an aggregate the summary lacks is unmeasured with a reason, not guessed', () => {
  const r = scoreSlos(SLO, summarize(spanLog(0)), 'baseline');
  const p90 = r.find((s) => s.name === 'latency p(90)<300ms')!;
  assert.equal(p90.measured, null);
  assert.equal(p90.met, null);
  assert.match(p90.reason!, /histogram/);
  assert.equal(r.find((s) => s.name === 'latency p(95)<500ms')!.met, false);
});

test('an empty span leaves every SLO unmeasured', () => {
  const r = scoreSlos(SLO, summarize(createRequestLog()), 'recovery');
  assert.ok(r.every((s) => s.measured === null && s.met === null && typeof s.reason === 'string'));
});
