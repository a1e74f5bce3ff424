import { createHistogram, encodeHistogram, maxMs, percentileMs, recordMs } from '../measure/histogram.ts';
import { emptyErrors } from '../measure/summary.ts';
import { Outcome, type RequestLog, type SecondStats } from './types.ts';

/**
 * Stats of second `t` from the log entries [from, to), which must be exactly the requests scheduled in
 * [t*1000, t*1000+1000) and all settled. Pending entries would be miscounted as `other`, so callers
 * only build a second once every request in it has its fate.
 */
export function secondStats(log: RequestLog, t: number, from: number, to: number, at: string): SecondStats {
  const errors = emptyErrors();
  const h = createHistogram();
  let ok = 0;
  let dropped = 0;
  for (let i = from; i < to; i++) {
    switch (log.outcome[i]) {
      case Outcome.dropped:
        dropped++;
        continue;
      case Outcome.ok:
        ok++;
        break;
      case Outcome.timeout:
        errors.timeout++;
        break;
      case Outcome.refused:
        errors.refused++;
        break;
      case Outcome.http5xx:
        errors.http5xx++;
        break;
      case Outcome.http4xx:
        errors.http4xx++;
        break;
      default:
        errors.other++;
    }
    recordMs(h, log.latencyMs[i]!);
  }
  const scheduled = to - from;
  return {
    t,
    at,
    scheduled,
    sent: scheduled - dropped,
    ok,
    errors,
    dropped,
    p50Ms: percentileMs(h, 50),
    p95Ms: percentileMs(h, 95),
    p99Ms: percentileMs(h, 99),
    maxMs: maxMs(h),
    hdr: encodeHistogram(h),
  };
}
