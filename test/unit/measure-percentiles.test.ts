import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequestLog, Outcome } from '../../lib/measure/request-log.ts';
import { summarize } from '../../lib/measure/summary.ts';
import { latencyHistogram } from '../../lib/measure/phases.ts';
import { percentileMs } from '../../lib/measure/histogram.ts';

// HDR with 3 significant digits: a reported value is within 0.1% of the true one.
const close = (actual: number | null, expected: number, rel = 0.002) => {
  assert.ok(actual !== null, 'expected a value');
  assert.ok(Math.abs(actual - expected) <= expected * rel, `${actual} not within ${rel * 100}% of ${expected}`);
};

function uniformLog(n: number) {
  const log = createRequestLog();
  for (let i = 0; i < n; i++) {
    const j = log.push(i * 5, 0);
    log.outcome[j] = Outcome.ok;
    // Latencies 1..1000 ms, in shuffled order so nothing depends on arrival order.
    log.latencyMs[j] = ((i * 7919) % n) + 1;
  }
  return log;
}

test('uniform 1..1000 ms: p50 ≈ 500, p95 ≈ 950, p99 ≈ 990, max 1000', () => {
  const s = summarize(uniformLog(1000));
  assert.equal(s.scheduled, 1000);
  assert.equal(s.ok, 1000);
  close(s.p50Ms, 500);
  close(s.p95Ms, 950);
  close(s.p99Ms, 990);
  close(s.maxMs, 1000);
  assert.equal(s.availability, 1);
});

test('the span histogram agrees with summarize and answers other percentiles', () => {
  const log = uniformLog(1000);
  const h = latencyHistogram(log, 0, Infinity);
  assert.equal(h.totalCount, 1000);
  assert.equal(percentileMs(h, 95), summarize(log).p95Ms);
  close(percentileMs(h, 90), 900);
  close(h.mean / 1000, 500.5);
});

test('dropped requests count against availability but carry no latency; pending ones are left out', () => {
  const log = uniformLog(1000);
  log.outcome[0] = Outcome.dropped;
  log.outcome[1] = Outcome.pending;
  log.outcome[2] = Outcome.http5xx;
  const s = summarize(log);
  assert.equal(s.scheduled, 999);
  assert.equal(s.dropped, 1);
  assert.equal(s.errors, 1);
  assert.equal(s.errorsByKind.http5xx, 1);
  assert.equal(s.ok, 997);
  assert.equal(latencyHistogram(log, 0, Infinity).totalCount, 998);
});
