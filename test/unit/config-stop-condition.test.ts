import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStopCondition } from '../../lib/config/stop-condition.ts';
import type { StopCondition } from '../../lib/config/types.ts';

const good: [string, Omit<StopCondition, 'source'>][] = [
  ['error_rate > 50% for 10s', { metric: { kind: 'error_rate' }, op: '>', value: 0.5, forMs: 10_000 }],
  ['error_rate>0.5 for 10s', { metric: { kind: 'error_rate' }, op: '>', value: 0.5, forMs: 10_000 }],
  ['availability < 99.5% for 1m', { metric: { kind: 'availability' }, op: '<', value: 0.995, forMs: 60_000 }],
  ['dropped_rate >= 0.1 for 5s', { metric: { kind: 'dropped_rate' }, op: '>=', value: 0.1, forMs: 5000 }],
  ['p(95) > 800ms for 30s', { metric: { kind: 'latency', aggregate: { p: 95 } }, op: '>', value: 800, forMs: 30_000 }],
  ['p( 99.9 )>=2s for 1m30s', { metric: { kind: 'latency', aggregate: { p: 99.9 } }, op: '>=', value: 2000, forMs: 90_000 }],
  ['p99 > 1500 for 10s', { metric: { kind: 'latency', aggregate: { p: 99 } }, op: '>', value: 1500, forMs: 10_000 }],
  ['avg<=250ms for 20s', { metric: { kind: 'latency', aggregate: 'avg' }, op: '<=', value: 250, forMs: 20_000 }],
  ['max != 0 for 1s', { metric: { kind: 'latency', aggregate: 'max' }, op: '!=', value: 0, forMs: 1000 }],
  ['error_rate == 100% for 2s', { metric: { kind: 'error_rate' }, op: '==', value: 1, forMs: 2000 }],
];

for (const [source, want] of good) {
  test(`stop condition ${JSON.stringify(source)}`, () => {
    assert.deepEqual(parseStopCondition(source), { source, ...want });
  });
}

test('the source is kept trimmed, as written', () => {
  assert.equal(parseStopCondition('  error_rate > 50% for 10s  ').source, 'error_rate > 50% for 10s');
});

const bad: [string, RegExp][] = [
  [
    'error_rate > 50%',
    /^expected "for <duration>" after the value in stop condition "error_rate > 50%": a stop condition must hold for a while/,
  ],
  [
    'errors > 5% for 10s',
    /^expected a metric \(error_rate, availability, dropped_rate, p\(95\), p95, avg or max\) at the start, got "errors"/,
  ],
  ['', /^expected a metric .* got ""/],
  ['error_rate 50% for 10s', /^expected an operator \(<, <=, >, >=, == or !=\) after error_rate/],
  ['error_rate => 50% for 10s', /^expected an operator .* after error_rate in stop condition/],
  ['error_rate > high for 10s', /^expected a ratio like 0\.5 or a percentage like 50% after error_rate >/],
  ['p(95) > fast for 10s', /^expected a latency like 800ms, 2s or 800 \(milliseconds\) after p\(95\) >/],
  ['p(95) > 50% for 10s', /^p\(95\) is a latency: expected a time like 800ms or 2s, not a percentage/],
  ['dropped_rate >= 2s for 30s', /^dropped_rate is a rate: expected a ratio like 0\.5 or a percentage like 50%, not a time/],
  ['error_rate > 150% for 10s', /^error_rate is a rate: expected a ratio from 0 to 1 or a percentage from 0% to 100%, got 150%/],
  ['error_rate > 2 for 10s', /got 2 in stop condition/],
  ['p(0) > 1s for 10s', /^expected a percentile in \(0, 100\], got p\(0\)/],
  ['p101 > 1s for 10s', /^expected a percentile in \(0, 100\], got p101/],
  ['availability < 99% for 10', /^expected a duration like 500ms, 30s, 15m or 1h, got "10" after "for"/],
  ['availability < 99% during 10s', /^expected "for <duration>" after the value, got "during 10s"/],
  ['error_rate > 50% for 500ms', /^expected a "for" duration of at least 1s \(conditions are judged once per second\), got "500ms"/],
  ['avgx > 1s for 10s', /^expected a metric .* got "avgx"/],
];

for (const [source, message] of bad) {
  test(`bad stop condition ${JSON.stringify(source)}`, () => {
    assert.throws(() => parseStopCondition(source), { message });
  });
}
