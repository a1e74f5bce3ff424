import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secondStats } from '../../lib/load/seconds.ts';
import { createRequestLog, Outcome, type OutcomeCode } from '../../lib/measure/request-log.ts';
import { manualClock } from '../../lib/measure/clock.ts';
import { decodeHistogram, percentileMs } from '../../lib/measure/histogram.ts';
import { summarize } from '../../lib/measure/summary.ts';

test('a second: counts by outcome add up, dropped have no latency, hdr decodes to the same count and percentiles', () => {
  const log = createRequestLog(8);
  const outcomes: OutcomeCode[] = [
    Outcome.ok,
    Outcome.ok,
    Outcome.timeout,
    Outcome.refused,
    Outcome.http5xx,
    Outcome.http4xx,
    Outcome.other,
    Outcome.dropped,
  ];
  // Second 3 = [3000, 4000): 800 requests cycling through the outcomes, latency 1..100 ms.
  for (let i = 0; i < 800; i++) {
    const at = log.push(3000 + i * 1.25, i % 3);
    const o = outcomes[i % outcomes.length]!;
    log.outcome[at] = o;
    log.latencyMs[at] = o === Outcome.dropped ? 0 : (i % 100) + 1;
  }
  const clock = manualClock();
  const s = secondStats(log, 3, 0, 800, clock.iso(3000));
  assert.equal(s.t, 3);
  assert.equal(s.at, clock.iso(3000));
  assert.equal(s.scheduled, 800);
  assert.equal(s.ok, 200);
  assert.deepEqual(s.errors, { timeout: 100, refused: 100, http5xx: 100, http4xx: 100, other: 100 });
  assert.equal(s.dropped, 100);
  assert.equal(s.sent, 700);
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  assert.equal(s.scheduled, s.ok + errors + s.dropped);

  const h = decodeHistogram(s.hdr);
  assert.equal(h.totalCount, 700, 'dropped requests are not in the histogram');
  assert.equal(percentileMs(h, 50), s.p50Ms);
  assert.equal(percentileMs(h, 99), s.p99Ms);
  const span = summarize(log, 3000, 4000);
  assert.equal(span.p50Ms, s.p50Ms);
  assert.equal(span.p95Ms, s.p95Ms);
  assert.equal(span.p99Ms, s.p99Ms);
  assert.equal(span.maxMs, s.maxMs);
  assert.ok(Math.abs(s.maxMs! - 100) <= 0.1);
});

test('a second without requests, or with only dropped ones, has null percentiles and an empty histogram', () => {
  const log = createRequestLog();
  const at = log.push(0, 0);
  log.outcome[at] = Outcome.dropped;
  const empty = secondStats(log, 1, 1, 1, manualClock().iso(1000));
  assert.equal(empty.scheduled, 0);
  assert.equal(empty.p50Ms, null);
  assert.equal(decodeHistogram(empty.hdr).totalCount, 0);
  const onlyDropped = secondStats(log, 0, 0, 1, manualClock().iso(0));
  assert.equal(onlyDropped.dropped, 1);
  assert.equal(onlyDropped.sent, 0);
  assert.equal(onlyDropped.maxMs, null);
});
