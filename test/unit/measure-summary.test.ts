import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lowerBound, summarize } from '../../lib/measure/summary.ts';
import { createRequestLog, Outcome } from '../../lib/measure/request-log.ts';

test('summary of a span: counts add up, percentiles of a known distribution, pending left out', () => {
  const log = createRequestLog(4); // starts tiny so growth is exercised
  for (let i = 0; i < 1000; i++) {
    const at = log.push(i, 0);
    log.latencyMs[at] = i + 1; // uniform 1..1000 ms
    log.outcome[at] = i % 100 === 0 ? Outcome.http5xx : i % 250 === 1 ? Outcome.dropped : Outcome.ok;
  }
  const extra = log.push(1000, 0); // still in flight
  assert.equal(log.outcome[extra], Outcome.pending);

  const s = summarize(log);
  assert.equal(s.scheduled, 1000);
  assert.equal(s.errors, 10);
  assert.equal(s.dropped, 4);
  assert.equal(s.ok, 986);
  assert.equal(s.scheduled, s.ok + s.errors + s.dropped);
  assert.equal(s.sent, 996);
  assert.ok(Math.abs(s.availability! - 0.986) < 1e-12);
  // HDR with 3 significant digits: within 0.1% of the exact order statistic.
  assert.ok(Math.abs(s.p50Ms! - 500) <= 1, `p50 ${s.p50Ms}`);
  assert.ok(Math.abs(s.p95Ms! - 950) <= 1.5, `p95 ${s.p95Ms}`);
  assert.ok(Math.abs(s.p99Ms! - 990) <= 1.5, `p99 ${s.p99Ms}`);
  assert.ok(Math.abs(s.maxMs! - 1000) <= 1, `max ${s.maxMs}`);

  const span = summarize(log, 100, 200);
  assert.equal(span.scheduled, 100);
  assert.equal(span.errors, 1);
  assert.equal(lowerBound(log, 100), 100);
  assert.equal(lowerBound(log, 99.5), 100);
  assert.equal(summarize(log, 5000, 6000).availability, null);
});
