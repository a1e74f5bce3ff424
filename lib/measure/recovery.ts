import type { SloSet } from '../config/types.ts';
import { Outcome, OUTCOME_NAMES, type ErrorsByKind, type RequestLog } from '../load/types.ts';
import type { Threshold } from '../score/threshold.ts';
import { histogramLatency, measureSlo, sloChecks } from '../score/slo.ts';
import { createHistogram, recordMs } from './histogram.ts';
import { lowerBound } from './summary.ts';

/**
 * Outage detection and the recovered instant, from the per-request log alone.
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

function emptyKinds(): FailureKinds {
  return { timeout: 0, refused: 0, http5xx: 0, http4xx: 0, other: 0, dropped: 0 };
}

function isFailed(o: number): boolean {
  return o !== Outcome.ok && o !== Outcome.pending;
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
    if (o === Outcome.ok) {
      cur.endMs = s;
      intervals.push(cur);
      cur = null;
    } else if (o !== Outcome.pending) {
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

function fmt(n: number): string {
  return Number(n.toPrecision(3)).toString();
}

/** The sentence the record carries next to every recovered instant and RTO. */
export function recoveryMethod(windowMs: number, resolutionMs: number | null, probeName?: string): string {
  const window = `the first ${fmt(windowMs / 1000)} s window after the fault in which every SLO held`;
  const what = probeName
    ? `recovered = the later of the start of ${window} and the first pass of the recovery check "${probeName}"`
    : `recovered = start of ${window}`;
  const res =
    resolutionMs === null || resolutionMs <= 0
      ? 'per-request resolution unknown (fewer than two requests)'
      : `per-request resolution ${fmt(resolutionMs)} ms at ${fmt(1000 / resolutionMs)} req/s`;
  return `${what}; ${res}`;
}

export interface RecoveryOptions {
  faultMs: number;
  slo: SloSet;
  /** How long every SLO must hold, uninterrupted, before the service counts as recovered. */
  windowMs: number;
  /** Run time of the evaluation: windows ending later are not complete and cannot be judged yet. */
  nowMs: number;
}

export interface Recovered {
  recoveredMs: number;
  /** Scheduled time of the first failed request at or after the fault; null when none failed. */
  outageDetectedMs: number | null;
  /** Total length of the outage intervals between the fault and recovery. */
  downtimeMs: number;
  intervals: OutageInterval[];
  resolutionMs: number | null;
  method: string;
}

export interface NotRecovered {
  recoveredMs: null;
  reason: string;
  outageDetectedMs: number | null;
  resolutionMs: number | null;
  method: string;
}

export type RecoveryResult = Recovered | NotRecovered;

/**
 * Upper bounds on latency (p(95)<500ms, max<=2s, avg<200) turned into per-request figures:
 * the strictest bound says which requests are "slow" for candidate purposes, and each bound gets a
 * cheap count-based test that rejects windows which are certainly over it before any histogram is built.
 */
interface LatencyBound {
  threshold: Threshold;
  /** Samples above this are over the bound whatever HDR rounding does (3 digits: < 0.1% error). */
  overMs: number;
  over: number;
}

const HDR_SLACK = 1.01;

function latencyBounds(latency: Threshold[]): LatencyBound[] {
  return latency
    .filter((t) => (t.op === '<' || t.op === '<=') && ['percentile', 'med', 'max', 'avg'].includes(t.aggregate.kind))
    .map((threshold) => ({ threshold, overMs: threshold.value * HDR_SLACK, over: 0 }));
}

type Verdict = { held: true } | { held: false; final: boolean; reason: string };

/**
 * The recovered instant: the earliest candidate t >= faultMs such that every SLO holds over the
 * requests scheduled in [t, t + window) and the window is complete (ended by nowMs, no request in
 * flight). Candidates are the fault itself and every request that is good (ok and within every latency
 * bound) right after one that was not: a window can only start holding where a bad stretch ends.
 * Requests that are ok but slow count as bad for candidacy, or a service that answers slowly after an
 * outage would have no candidate left once its latency settles.
 *
 * One pass from the fault with a sliding window; a histogram is built only for windows that pass the
 * count-based SLOs and are not already certainly over a latency bound.
 */
export function findRecovery(log: RequestLog, opts: RecoveryOptions): RecoveryResult {
  const { faultMs, windowMs, nowMs } = opts;
  const start = lowerBound(log, faultMs);
  const resolutionMs = requestSpacingMs(log);
  const method = recoveryMethod(windowMs, resolutionMs);
  const checks = sloChecks(opts.slo);
  const countChecks = checks.filter((c) => c.kind !== 'latency');
  const latencyChecks = checks.filter((c) => c.kind === 'latency');
  const bounds = latencyBounds(opts.slo.latency);
  const slowMs = bounds.length === 0 ? Infinity : Math.min(...bounds.map((b) => b.threshold.value));
  const h = createHistogram();

  let outageDetectedMs: number | null = null;
  for (let i = start; i < log.count; i++) {
    if (isFailed(log.outcome[i]!)) {
      outageDetectedMs = log.scheduledMs[i]!;
      break;
    }
  }

  // Sliding window [lo, hi) over the log, with its running figures.
  let lo = start;
  let hi = start;
  let counted = 0;
  let ok = 0;
  let pending = 0;
  let latencySum = 0;
  let latencyCount = 0;
  const add = (i: number, sign: 1 | -1) => {
    const o = log.outcome[i]!;
    if (o === Outcome.pending) {
      pending += sign;
      return;
    }
    counted += sign;
    if (o === Outcome.ok) ok += sign;
    if (o === Outcome.dropped) return;
    const ms = log.latencyMs[i]!;
    latencySum += sign * ms;
    latencyCount += sign;
    for (const b of bounds) if (ms > b.overMs) b.over += sign;
  };
  const moveTo = (newLo: number, endMs: number) => {
    for (; lo < newLo; lo++) if (lo < hi) add(lo, -1);
    if (hi < lo) hi = lo;
    for (; hi < log.count && log.scheduledMs[hi]! < endMs; hi++) add(hi, 1);
  };

  const certainlyOver = (b: LatencyBound): boolean => {
    const a = b.threshold.aggregate;
    if (a.kind === 'max') return b.over > 0;
    if (a.kind === 'avg') return latencyCount > 0 && latencySum / latencyCount > b.overMs;
    const p = a.kind === 'percentile' ? a.p : 50;
    // HDR reports the sample of rank max(1, ceil(p% of n)); it is over the bound once that many samples from the top are.
    const rank = Math.max(1, Math.ceil((p / 100) * latencyCount));
    return latencyCount > 0 && b.over >= latencyCount - rank + 1;
  };

  const judge = (t: number, index: number): Verdict => {
    const endMs = t + windowMs;
    if (endMs > nowMs) {
      return { held: false, final: true, reason: `the window from ${fmtMs(t)} ends at ${fmtMs(endMs)}, after now (${fmtMs(nowMs)}); not complete yet` };
    }
    moveTo(index, endMs);
    if (pending > 0) {
      return { held: false, final: true, reason: `${pending} requests in the window from ${fmtMs(t)} are still in flight` };
    }
    if (ok === 0) return { held: false, final: false, reason: '' };
    const figures = { scheduled: counted, ok, latency: () => null };
    for (const c of countChecks) if (measureSlo(c, figures).met !== true) return { held: false, final: false, reason: '' };
    if (latencyChecks.length === 0) return { held: true };
    if (bounds.some(certainlyOver)) return { held: false, final: false, reason: '' };
    h.reset();
    for (let i = lo; i < hi; i++) {
      const o = log.outcome[i]!;
      if (o !== Outcome.dropped && o !== Outcome.pending) recordMs(h, log.latencyMs[i]!);
    }
    const exact = { scheduled: counted, ok, latency: histogramLatency(h) };
    for (const c of latencyChecks) if (measureSlo(c, exact).met !== true) return { held: false, final: false, reason: '' };
    return { held: true };
  };

  const notRecovered = (reason: string): NotRecovered => ({ recoveredMs: null, reason, outageDetectedMs, resolutionMs, method });
  const recovered = (t: number): Recovered => {
    const scan = outageIntervals(log, faultMs, t);
    return { recoveredMs: t, outageDetectedMs, downtimeMs: downtimeMs(scan.intervals, t), intervals: scan.intervals, resolutionMs, method };
  };

  if (start >= log.count) return notRecovered('no request was scheduled after the fault');
  let v = judge(faultMs, start);
  if (v.held) return recovered(faultMs);
  if (v.final) return notRecovered(v.reason);

  const isGood = (i: number) => log.outcome[i] === Outcome.ok && log.latencyMs[i]! < slowMs;
  let prevGood = start > 0 ? isGood(start - 1) : false;
  for (let i = start; i < log.count; i++) {
    const o = log.outcome[i]!;
    // A later candidate cannot be judged while an earlier request's fate, and so the candidate list, is open.
    if (o === Outcome.pending) return notRecovered(`waiting for the request scheduled at ${fmtMs(log.scheduledMs[i]!)}, still in flight`);
    const good = isGood(i);
    const t = log.scheduledMs[i]!;
    if (good && !prevGood && t > faultMs) {
      v = judge(t, i);
      if (v.held) return recovered(t);
      if (v.final) return notRecovered(v.reason);
    }
    prevGood = good;
  }
  return notRecovered(`SLOs have not held for a full ${fmt(windowMs / 1000)} s window since the fault`);
}

function fmtMs(ms: number): string {
  return `${Math.round(ms)} ms`;
}
