import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequestLog, Outcome } from '../../lib/measure/request-log.ts';
import { phaseSpans, phaseSummaries } from '../../lib/measure/phases.ts';
import type { Mark } from '../../lib/measure/timeline.ts';

// 100 req/s for 30 s: ok at 10 ms, except a 2 s refusal right after the fault and slow answers while recovering.
function runLog() {
  const log = createRequestLog();
  for (let i = 0; i < 3000; i++) {
    const t = i * 10;
    const j = log.push(t, 0);
    const down = t >= 10_000 && t < 12_000;
    log.outcome[j] = down ? Outcome.refused : Outcome.ok;
    log.latencyMs[j] = down ? 1 : t >= 12_000 && t < 14_000 ? 800 : 10;
  }
  return log;
}

const mark = (name: string, ms: number): Mark => ({ name, ms, at: new Date(Date.UTC(2026, 9, 1) + ms).toISOString() });

test('baseline, fault, recovery and run are cut at the marks', () => {
  const marks = [mark('load-started', 0), mark('fault-injected', 10_000), mark('recovered', 14_000), mark('load-stopped', 30_000)];
  const p = phaseSummaries(runLog(), marks, 0, 30_000);
  assert.deepEqual([p.baseline?.fromMs, p.baseline?.toMs], [0, 10_000]);
  assert.deepEqual([p.fault?.fromMs, p.fault?.toMs], [10_000, 14_000]);
  assert.deepEqual([p.recovery?.fromMs, p.recovery?.toMs], [14_000, 30_000]);
  assert.deepEqual([p.run?.fromMs, p.run?.toMs], [0, 30_000]);

  assert.equal(p.baseline!.scheduled, 1000);
  assert.equal(p.baseline!.availability, 1);
  assert.ok(Math.abs(p.baseline!.p95Ms! - 10) < 0.02);

  assert.equal(p.fault!.scheduled, 400);
  assert.equal(p.fault!.errorsByKind.refused, 200);
  assert.equal(p.fault!.availability, 0.5);
  assert.ok(Math.abs(p.fault!.p95Ms! - 800) < 1);

  assert.equal(p.recovery!.scheduled, 1600);
  assert.equal(p.recovery!.errors, 0);

  assert.equal(p.run!.scheduled, 3000);
  assert.equal(p.run!.scheduled, p.baseline!.scheduled + p.fault!.scheduled + p.recovery!.scheduled);
  assert.equal(p.run!.scheduled, p.run!.ok + p.run!.errors + p.run!.dropped);
});

test('no recovered mark: no recovery phase, and the fault lasts to the end of the load', () => {
  const p = phaseSummaries(runLog(), [mark('fault-injected', 10_000)], 0, 30_000);
  assert.equal(p.recovery, null);
  assert.deepEqual([p.fault?.fromMs, p.fault?.toMs], [10_000, 30_000]);
  assert.equal(p.fault!.scheduled, 2000);
});

test('nothing injected: the whole load is baseline, and there is no fault or recovery phase', () => {
  const spans = phaseSpans([mark('load-started', 0)], 0, 30_000);
  assert.deepEqual(spans, { baseline: { fromMs: 0, toMs: 30_000 }, fault: null, recovery: null, run: { fromMs: 0, toMs: 30_000 } });
});

test('a request in flight when the fault was injected is judged with the fault, not the baseline', () => {
  // 100 req/s, 10 ms answers; the three sent in the last 300 ms before the fault at 10 s hang on the replica
  // that is then killed: one is cut off (a 502 at 10.05 s), two time out at 2 s. One more is still answered in time.
  const log = createRequestLog();
  for (let i = 0; i < 3000; i++) {
    const t = i * 10;
    const j = log.push(t, 0);
    log.outcome[j] = Outcome.ok;
    log.latencyMs[j] = 10;
    if (t === 9_700) log.latencyMs[j] = 290; // settles at 9.99 s: before the fault, stays in the baseline
    if (t === 9_800) [log.outcome[j], log.latencyMs[j]] = [Outcome.http5xx, 250];
    if (t === 9_900 || t === 9_950) [log.outcome[j], log.latencyMs[j]] = [Outcome.timeout, 2000];
  }
  const marks = [mark('fault-injected', 10_000), mark('recovered', 12_000)];
  const p = phaseSummaries(log, marks, 0, 30_000);
  assert.equal(p.baseline!.scheduled, 997, 'the three caught by the fault leave the baseline');
  assert.equal(p.baseline!.errors, 0);
  assert.equal(p.baseline!.availability, 1);
  assert.equal(p.baseline!.maxMs, 290);
  assert.equal(p.fault!.scheduled, 200 + 3);
  assert.deepEqual([p.fault!.errorsByKind.http5xx, p.fault!.errorsByKind.timeout], [1, 2]);
  assert.equal(p.recovery!.scheduled, 1800);
  assert.equal(p.run!.scheduled, 3000, 'the run still counts every request once');
  assert.equal(p.baseline!.scheduled + p.fault!.scheduled + p.recovery!.scheduled, p.run!.scheduled);
  // The spans themselves are unchanged: they say where the marks cut the schedule.
  assert.deepEqual([p.baseline!.fromMs, p.baseline!.toMs, p.fault!.fromMs, p.fault!.toMs], [0, 10_000, 10_000, 12_000]);
});
