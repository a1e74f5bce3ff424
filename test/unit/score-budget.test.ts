import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseThreshold } from '../../lib/config/threshold.ts';
import { availabilityTarget, errorBudget, MEAN_MONTH_MS } from '../../lib/score/budget.ts';

test('99.9% over a mean month (30.4375 d) is a 2629.8 s = 43.8 min budget', () => {
  const b = errorBudget({ downtimeMs: 0, availabilityTarget: 0.999, periodMs: MEAN_MONTH_MS });
  assert.equal(b.monthlyBudgetSeconds, 2629.8);
  assert.equal((b.monthlyBudgetSeconds! / 60).toFixed(1), '43.8');
  assert.equal(b.consumedRatio, 0);
});

test('consumed ratio is downtime over the budget', () => {
  const b = errorBudget({ downtimeMs: 26_298, availabilityTarget: 0.999, periodMs: MEAN_MONTH_MS });
  assert.equal(b.downtimeSeconds, 26.298);
  assert.ok(Math.abs(b.consumedRatio! - 0.01) < 1e-12);
  const all = errorBudget({ downtimeMs: 2_629_800, availabilityTarget: 0.999, periodMs: MEAN_MONTH_MS });
  assert.ok(Math.abs(all.consumedRatio! - 1) < 1e-12);
});

test('no availability target, no downtime, or a 100% target: null with a reason', () => {
  const noTarget = errorBudget({ downtimeMs: 1000, availabilityTarget: null, periodMs: MEAN_MONTH_MS });
  assert.deepEqual([noTarget.monthlyBudgetSeconds, noTarget.consumedRatio, noTarget.downtimeSeconds], [null, null, 1]);
  assert.ok(noTarget.reason);
  const noDowntime = errorBudget({ downtimeMs: null, availabilityTarget: 0.999, periodMs: MEAN_MONTH_MS });
  assert.equal(noDowntime.consumedRatio, null);
  assert.ok(noDowntime.reason);
  const perfect = errorBudget({ downtimeMs: 1, availabilityTarget: 1, periodMs: MEAN_MONTH_MS });
  assert.equal(perfect.monthlyBudgetSeconds, 0);
  assert.equal(perfect.consumedRatio, null);
  assert.ok(perfect.reason);
});

test('the availability target is the strictest of the availability and error-rate SLOs', () => {
  // `99.9%` parses to 99.9 / 100, a float a hair above 0.999.
  const one = availabilityTarget({ availability: [parseThreshold('rate>=99.9%')], errors: [], latency: [] });
  assert.ok(Math.abs(one! - 0.999) < 1e-12);
  const both = availabilityTarget({ availability: [parseThreshold('rate>=99%')], errors: [parseThreshold('rate<0.05%')], latency: [] });
  assert.ok(Math.abs(both! - 0.9995) < 1e-12);
  assert.equal(availabilityTarget({ availability: [], errors: [], latency: [parseThreshold('p(95)<500ms')] }), null);
});
