import type { SloSet } from '../config/types.ts';
import type { Threshold } from '../config/threshold.ts';
import { Outcome, type RequestLog } from '../measure/request-log.ts';
import { createHistogram, recordMs } from '../measure/histogram.ts';
import { lowerBound } from '../measure/summary.ts';
import { downtimeMs, isFailed, outageIntervals, requestSpacingMs, type OutageInterval } from '../measure/outage.ts';
import { formatMs, formatSignificant } from './format.ts';
import { histogramLatency, measureSlo, sloChecks, type SpanFigures } from './slo.ts';

/**
 * The recovered instant: when every SLO held again for a full window after the fault. It judges SLOs,
 * so it is scoring; the outage intervals it reports come from measure/outage.ts.
 */

// Outcome codes read once: in the per-request loops below a property read each time adds up.
const OK = Outcome.ok;
const PENDING = Outcome.pending;
const DROPPED = Outcome.dropped;

/** The sentence the record carries next to every recovered instant and RTO. */
export function recoveryMethod(windowMs: number, resolutionMs: number | null, probeName?: string): string {
  const window = `the first ${formatSignificant(windowMs / 1000)} s window after the fault in which every SLO held`;
  const what = probeName
    ? `recovered = the later of the start of ${window} and the first pass of the recovery check "${probeName}" (dated from the evidence it read, where it dates it)`
    : `recovered = start of ${window}`;
  const res =
    resolutionMs === null || resolutionMs <= 0
      ? 'per-request resolution unknown (fewer than two requests)'
      : `per-request resolution ${formatSignificant(resolutionMs)} ms at ${formatSignificant(1000 / resolutionMs)} req/s`;
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
}

const HDR_SLACK = 1.01;

function latencyBounds(latency: Threshold[]): LatencyBound[] {
  return latency
    .filter((t) => (t.op === '<' || t.op === '<=') && ['percentile', 'med', 'max', 'avg'].includes(t.aggregate.kind))
    .map((threshold) => ({ threshold, overMs: threshold.value * HDR_SLACK }));
}

/** The requests scheduled in [lo, hi) with running figures; both ends only move forward. */
class SlidingWindow {
  lo: number;
  hi: number;
  counted = 0;
  ok = 0;
  pending = 0;
  latencySum = 0;
  latencyCount = 0;
  /** Per latency bound: samples certainly over it. */
  readonly over: Float64Array;

  constructor(
    private readonly log: RequestLog,
    private readonly bounds: LatencyBound[],
    start: number,
  ) {
    this.lo = start;
    this.hi = start;
    this.over = new Float64Array(bounds.length);
  }

  /** Window [index of t, first request scheduled at or after endMs). */
  moveTo(newLo: number, endMs: number): void {
    const { log } = this;
    for (; this.lo < newLo; this.lo++) if (this.lo < this.hi) this.add(this.lo, -1);
    if (this.hi < this.lo) this.hi = this.lo;
    for (; this.hi < log.count && log.scheduledMs[this.hi]! < endMs; this.hi++) this.add(this.hi, 1);
  }

  private add(i: number, sign: 1 | -1): void {
    const o = this.log.outcome[i]!;
    if (o === PENDING) {
      this.pending += sign;
      return;
    }
    this.counted += sign;
    if (o === OK) this.ok += sign;
    if (o === DROPPED) return;
    const ms = this.log.latencyMs[i]!;
    this.latencySum += sign * ms;
    this.latencyCount += sign;
    for (let b = 0; b < this.bounds.length; b++) if (ms > this.bounds[b]!.overMs) this.over[b]! += sign;
  }

  certainlyOver(b: number): boolean {
    const bound = this.bounds[b]!;
    const a = bound.threshold.aggregate;
    const n = this.latencyCount;
    if (n === 0) return false;
    if (a.kind === 'max') return this.over[b]! > 0;
    if (a.kind === 'avg') return this.latencySum / n > bound.overMs;
    const p = a.kind === 'percentile' ? a.p : 50;
    // HDR reports the sample of rank max(1, ceil(p% of n)); it is over the bound once that many samples from the top are.
    const rank = Math.max(1, Math.ceil((p / 100) * n));
    return this.over[b]! >= n - rank + 1;
  }
}

type Judgement = 'held' | 'failed' | { undecided: string };

const noLatency = () => null;

/**
 * The recovered instant: the earliest candidate t >= faultMs such that every SLO holds over the
 * requests scheduled in [t, t + window) and the window is complete (ended by nowMs, no request in
 * flight). Candidates are the fault itself and every request that is good (ok and within every latency
 * bound) right after one that was not: a window can only start holding where a bad stretch ends.
 * Requests that are ok but slow count as bad for candidacy, or a service that answers slowly after an
 * outage would have no candidate left once its latency settles. Under an avg bound that shortcut is not
 * sound (a request leaving the window can be faster than the good one entering it), so with one every good
 * request is a candidate: still one pass, about 4x the work (test/unit/measure-recovery.test.ts).
 * A window must also hold at least one ok request, so that no SLO set can call a dead service recovered.
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
  const w = new SlidingWindow(log, bounds, start);
  const h = createHistogram();
  const figures: SpanFigures = { scheduled: 0, ok: 0, latency: noLatency };

  let outageDetectedMs: number | null = null;
  for (let i = start; i < log.count; i++) {
    if (isFailed(log.outcome[i]!)) {
      outageDetectedMs = log.scheduledMs[i]!;
      break;
    }
  }

  const judge = (t: number, index: number): Judgement => {
    const endMs = t + windowMs;
    if (endMs > nowMs)
      return { undecided: `the window from ${formatMs(t)} ends at ${formatMs(endMs)}, after now (${formatMs(nowMs)}); not complete yet` };
    w.moveTo(index, endMs);
    if (w.pending > 0) return { undecided: `${w.pending} requests in the window from ${formatMs(t)} are still in flight` };
    if (w.ok === 0) return 'failed';
    figures.scheduled = w.counted;
    figures.ok = w.ok;
    figures.latency = noLatency;
    for (const c of countChecks) if (measureSlo(c, figures).met !== true) return 'failed';
    if (latencyChecks.length === 0) return 'held';
    for (let b = 0; b < bounds.length; b++) if (w.certainlyOver(b)) return 'failed';
    h.reset();
    for (let i = w.lo; i < w.hi; i++) {
      const o = log.outcome[i]!;
      if (o !== DROPPED && o !== PENDING) recordMs(h, log.latencyMs[i]!);
    }
    figures.latency = histogramLatency(h);
    for (const c of latencyChecks) if (measureSlo(c, figures).met !== true) return 'failed';
    return 'held';
  };

  const notRecovered = (reason: string): NotRecovered => ({ recoveredMs: null, reason, outageDetectedMs, resolutionMs, method });
  const recovered = (t: number): Recovered => {
    const scan = outageIntervals(log, faultMs, t);
    return { recoveredMs: t, outageDetectedMs, downtimeMs: downtimeMs(scan.intervals, t), intervals: scan.intervals, resolutionMs, method };
  };

  if (start >= log.count) return notRecovered('no request was scheduled after the fault');
  let v = judge(faultMs, start);
  if (v === 'held') return recovered(faultMs);
  if (v !== 'failed') return notRecovered(v.undecided);

  const { outcome, latencyMs, scheduledMs } = log;
  // Under an avg bound a request leaving the window can be faster than the good one entering it, so a window
  // starting mid-stretch can hold where the stretch's start failed: then every good request is a candidate.
  const everyGood = bounds.some((b) => b.threshold.aggregate.kind === 'avg');
  let prevGood = start > 0 && outcome[start - 1] === OK && latencyMs[start - 1]! < slowMs;
  for (let i = start; i < log.count; i++) {
    const o = outcome[i]!;
    // A later candidate cannot be judged while an earlier request's fate, and so the candidate list, is open.
    if (o === PENDING) return notRecovered(`waiting for the request scheduled at ${formatMs(scheduledMs[i]!)}, still in flight`);
    const good = o === OK && latencyMs[i]! < slowMs;
    if (good && (!prevGood || everyGood) && scheduledMs[i]! > faultMs) {
      v = judge(scheduledMs[i]!, i);
      if (v === 'held') return recovered(scheduledMs[i]!);
      if (v !== 'failed') return notRecovered(v.undecided);
    }
    prevGood = good;
  }
  return notRecovered(`SLOs have not held for a full ${formatSignificant(windowMs / 1000)} s window since the fault`);
}
