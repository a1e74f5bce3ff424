import { Outcome, OUTCOME_NAMES, type ErrorsByKind, type RequestLog } from './request-log.ts';
import { lowerBound } from './summary.ts';

/**
 * Outage detection from the per-request log alone (the recovered instant is scoring: lib/score/recovery.ts).
 * A request "failed" when its outcome is anything but ok or pending (dropped counts: the service
 * could not keep up). Times are the requests' *scheduled* times, so resolution is the request spacing.
 */

export interface FailureKinds extends ErrorsByKind {
  dropped: number;
}

export interface OutageInterval {
  /** Scheduled time of the first failed request. */
  startMs: number;
  /** Scheduled time of the next ok request; null while the outage lasts to the end of the log. */
  endMs: number | null;
  failed: number;
  kinds: FailureKinds;
}

export interface OutageScan {
  intervals: OutageInterval[];
  /** Mean spacing between scheduled requests, ms: how finely an interval's ends are known. Null below two requests. */
  resolutionMs: number | null;
}

// Outcome codes read once: in the per-request loops below a property read each time adds up.
const OK = Outcome.ok;
const PENDING = Outcome.pending;

function emptyKinds(): FailureKinds {
  return { timeout: 0, refused: 0, http5xx: 0, http4xx: 0, other: 0, dropped: 0 };
}

/** Whether a settled request failed: anything but ok (dropped counts: the service could not keep up). */
export function isFailed(o: number): boolean {
  return o !== OK && o !== PENDING;
}

/** Arrivals are at a constant rate, so the mean spacing is the spacing. */
export function requestSpacingMs(log: RequestLog): number | null {
  if (log.count < 2) return null;
  return (log.scheduledMs[log.count - 1]! - log.scheduledMs[0]!) / (log.count - 1);
}

/**
 * Maximal runs of consecutive failed requests that *start* in [fromMs, toMs). An interval that is
 * still open at toMs is followed to its closing ok request, so its end is real rather than clipped.
 * Requests still pending neither break nor extend a run: their fate is not known yet.
 */
export function outageIntervals(log: RequestLog, fromMs: number, toMs = Infinity): OutageScan {
  const intervals: OutageInterval[] = [];
  let cur: OutageInterval | null = null;
  for (let i = lowerBound(log, fromMs); i < log.count; i++) {
    const s = log.scheduledMs[i]!;
    const o = log.outcome[i]!;
    if (cur === null) {
      if (s >= toMs) break;
      if (!isFailed(o)) continue;
      cur = { startMs: s, endMs: null, failed: 0, kinds: emptyKinds() };
    }
    if (o === OK) {
      cur.endMs = s;
      intervals.push(cur);
      cur = null;
    } else if (o !== PENDING) {
      cur.failed++;
      cur.kinds[OUTCOME_NAMES[o] as keyof FailureKinds]++;
    }
  }
  if (cur) intervals.push(cur);
  return { intervals, resolutionMs: requestSpacingMs(log) };
}

/** Total outage time up to untilMs; an interval still open counts until untilMs. */
export function downtimeMs(intervals: OutageInterval[], untilMs: number): number {
  let total = 0;
  for (const iv of intervals) {
    const end = Math.min(iv.endMs ?? untilMs, untilMs);
    if (end > iv.startMs) total += end - iv.startMs;
  }
  return total;
}
