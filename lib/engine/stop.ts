import type { StopCondition } from '../config/types.ts';
import type { SecondStats } from '../measure/request-log.ts';
import { compare } from '../config/threshold.ts';
import { decodeHistogram, meanMs, percentileMs } from '../measure/histogram.ts';

/** The value a stop condition reads from one second of load; null when that second says nothing (no traffic). */
export function stopMetricValue(cond: StopCondition, s: SecondStats): number | null {
  const failed = s.errors.timeout + s.errors.refused + s.errors.http5xx + s.errors.http4xx + s.errors.other + s.dropped;
  switch (cond.metric.kind) {
    case 'error_rate':
      return s.scheduled === 0 ? null : failed / s.scheduled;
    case 'availability':
      return s.scheduled === 0 ? null : s.ok / s.scheduled;
    case 'dropped_rate':
      return s.scheduled === 0 ? null : s.dropped / s.scheduled;
    case 'latency': {
      const a = cond.metric.aggregate;
      if (a === 'max') return s.maxMs;
      // The second's own histogram gives any percentile and the mean exactly, not just the three printed ones.
      const h = decodeHistogram(s.hdr);
      return a === 'avg' ? meanMs(h) : percentileMs(h, a.p);
    }
  }
}

/**
 * Stop conditions are judged once per completed second: a condition fires when it held in every one
 * of the last `for` seconds. A second without traffic breaks the streak rather than extending it.
 */
export class StopWatch {
  private streak = new Map<StopCondition, number>();

  constructor(private readonly conditions: StopCondition[]) {}

  /** Feed one completed second; returns the condition that fired, if any. */
  observe(s: SecondStats): { condition: StopCondition; value: number } | null {
    for (const c of this.conditions) {
      const v = stopMetricValue(c, s);
      const held = v !== null && compare(v, c.op, c.value);
      const n = held ? (this.streak.get(c) ?? 0) + 1 : 0;
      this.streak.set(c, n);
      if (held && n * 1000 >= c.forMs) return { condition: c, value: v };
    }
    return null;
  }
}
