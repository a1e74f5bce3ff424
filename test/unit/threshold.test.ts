import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare, parseThreshold } from '../../lib/config/threshold.ts';
import { formatDuration, parseDuration } from '../../lib/config/duration.ts';

test('k6 latency thresholds parse to milliseconds', () => {
  assert.deepEqual(parseThreshold('p(95)<500ms'), { source: 'p(95)<500ms', aggregate: { kind: 'percentile', p: 95 }, op: '<', value: 500 });
  assert.deepEqual(parseThreshold(' p(99.9) <= 1.5s '), {
    source: 'p(99.9) <= 1.5s',
    aggregate: { kind: 'percentile', p: 99.9 },
    op: '<=',
    value: 1500,
  });
  assert.equal(parseThreshold('avg<200').value, 200);
  assert.equal(parseThreshold('max<2s').value, 2000);
  assert.equal(parseThreshold('med<100').aggregate.kind, 'med');
});

test('rates take ratios or percentages', () => {
  assert.equal(parseThreshold('rate<0.001').value, 0.001);
  assert.ok(Math.abs(parseThreshold('rate<0.1%').value - 0.001) < 1e-12);
  assert.ok(Math.abs(parseThreshold('rate>=99.9%').value - 0.999) < 1e-12);
  assert.equal(parseThreshold('count<10').value, 10);
});

test('malformed thresholds say what was expected', () => {
  for (const bad of ['p95<500', 'p(95)<', 'rate<500ms', 'p(95)<5%', 'rate<150%', 'p(0)<5ms', 'p(101)<5ms', 'latency<5', 'count<5ms', '']) {
    assert.throws(() => parseThreshold(bad), /expected|must|takes/, bad);
  }
});

test('compare covers every operator', () => {
  assert.equal(compare(1, '<', 2), true);
  assert.equal(compare(2, '<', 2), false);
  assert.equal(compare(2, '<=', 2), true);
  assert.equal(compare(3, '>', 2), true);
  assert.equal(compare(2, '>=', 2), true);
  assert.equal(compare(2, '==', 2), true);
  assert.equal(compare(2, '!=', 2), false);
});

test('durations read like an SRE writes them', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('30.4375d'), 2_629_800_000);
  for (const bad of ['10', '5 minutes', '1x', '', 'm5', '-1s']) assert.throws(() => parseDuration(bad), /expected a duration/, bad);
});

test('durations format back to their shortest spelling', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(3_600_000), '1h');
  assert.equal(formatDuration(1500), '1.5s');
  for (const ms of [500, 30_000, 900_000, 3_600_000, 86_400_000, 5_400_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
});
