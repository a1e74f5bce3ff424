import { emptyTally, tallyOutcome, type LoadSummary, type RequestLog } from './request-log.ts';
import { createHistogram, maxMs, percentileMs, recordMs } from './histogram.ts';

/** First index whose scheduled time is >= ms (the log is in schedule order). */
export function lowerBound(log: RequestLog, ms: number): number {
  let lo = 0;
  let hi = log.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (log.scheduledMs[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Aggregates over the requests *scheduled* in [fromMs, toMs): what the record calls `load` and what
 * SLOs are judged on per phase. Latency percentiles come from an HDR histogram of the span's answered
 * and timed-out requests; dropped requests have no latency but count against availability.
 * Requests still in flight (live logs only) are left out of every count until their fate is known.
 */
export function summarize(log: RequestLog, fromMs = -Infinity, toMs = Infinity): LoadSummary {
  return summarizeSelection(log, spanSelection(log, fromMs, toMs));
}

/** Requests by index: [start, end) of the log, narrowed by `keep` where a phase is not one span of schedule time. */
export interface Selection {
  start: number;
  end: number;
  keep?: (i: number) => boolean;
}

/** The requests scheduled in [fromMs, toMs). */
export function spanSelection(log: RequestLog, fromMs: number, toMs: number): Selection {
  return { start: lowerBound(log, fromMs), end: toMs === Infinity ? log.count : lowerBound(log, toMs) };
}

export function summarizeSelection(log: RequestLog, sel: Selection): LoadSummary {
  const { start, end, keep } = sel;
  const tally = emptyTally();
  const h = createHistogram();
  let skipped = 0;
  for (let i = start; i < end; i++) {
    if (keep && !keep(i)) {
      skipped++;
      continue;
    }
    if (tallyOutcome(tally, log.outcome[i]!)) recordMs(h, log.latencyMs[i]!);
  }
  const { ok, dropped, pending, errors: errorsByKind } = tally;
  const scheduled = end - start - pending - skipped;
  const errors = scheduled - ok - dropped;
  return {
    scheduled,
    sent: scheduled - dropped,
    ok,
    errors,
    errorsByKind,
    dropped,
    availability: scheduled === 0 ? null : ok / scheduled,
    p50Ms: percentileMs(h, 50),
    p95Ms: percentileMs(h, 95),
    p99Ms: percentileMs(h, 99),
    maxMs: maxMs(h),
  };
}
