import type { SloSet } from '../config/types.ts';
import type { LoadSummary } from '../measure/request-log.ts';
import { maxMs, meanMs, percentileMs, type Histogram } from '../measure/histogram.ts';
import { compare, type Aggregate, type Threshold } from '../config/threshold.ts';

/**
 * One evaluator for every SLO judgement (phase scoring, steady state, the recovery window), so the
 * recovered instant and the per-phase results can never disagree about what "the SLO held" means.
 */
export type SloKind = 'availability' | 'errors' | 'latency';

export interface SloCheck {
  kind: SloKind;
  threshold: Threshold;
}

/** The figures of a span that SLOs read. Counts leave out requests still in flight. */
export interface SpanFigures {
  scheduled: number;
  ok: number;
  /** A latency aggregate in ms; null when no request in the span has a latency or the figure is not available. */
  latency(a: Aggregate): number | null;
  /** Why `latency` returned null for an aggregate it cannot answer (as opposed to an empty span). */
  latencyGap?(a: Aggregate): string | undefined;
}

export interface SloMeasurement {
  measured: number | null;
  met: boolean | null;
  reason?: string;
}

export function sloChecks(slo: SloSet): SloCheck[] {
  return [
    ...slo.availability.map((threshold) => ({ kind: 'availability' as const, threshold })),
    ...slo.errors.map((threshold) => ({ kind: 'errors' as const, threshold })),
    ...slo.latency.map((threshold) => ({ kind: 'latency' as const, threshold })),
  ];
}

export function sloName(c: SloCheck): string {
  return `${c.kind} ${c.threshold.source}`;
}

function aggregateText(a: Aggregate): string {
  return a.kind === 'percentile' ? `p(${a.p})` : a.kind;
}

export function measureSlo(c: SloCheck, f: SpanFigures): SloMeasurement {
  const a = c.threshold.aggregate;
  let measured: number | null;
  let reason: string | undefined;
  if (c.kind === 'latency') {
    measured = f.latency(a);
    if (measured === null) reason = f.latencyGap?.(a) ?? 'no request in this span got an answer or timed out';
  } else {
    // errors = failed (errors + dropped) / scheduled, the complement of availability (config/types.ts SloSet).
    const numerator = c.kind === 'availability' ? f.ok : f.scheduled - f.ok;
    if (a.kind === 'count') measured = numerator;
    else if (a.kind !== 'rate') {
      measured = null;
      reason = `${c.kind} takes rate or count, not ${aggregateText(a)}`;
    } else if (f.scheduled === 0) {
      measured = null;
      reason = 'no request was scheduled in this span';
    } else measured = numerator / f.scheduled;
  }
  if (measured === null) return { measured: null, met: null, reason };
  return { measured, met: compare(measured, c.threshold.op, c.threshold.value) };
}

/** Latency figures from an HDR histogram: any percentile, mean, min, max. */
export function histogramLatency(h: Histogram): (a: Aggregate) => number | null {
  return (a) => {
    if (h.totalCount === 0) return null;
    switch (a.kind) {
      case 'percentile':
        return percentileMs(h, a.p);
      case 'med':
        return percentileMs(h, 50);
      case 'avg':
        return meanMs(h);
      case 'min':
        return h.minNonZeroValue / 1000;
      case 'max':
        return maxMs(h);
      case 'count':
        return h.totalCount;
      case 'rate':
        return null;
    }
  };
}

/**
 * Figures of a span from its LoadSummary. The summary carries p50/p95/p99/max only; other latency
 * aggregates need the span's histogram, and without it they are reported unmeasured rather than guessed.
 */
export function figuresOf(s: LoadSummary, histogram?: Histogram): SpanFigures {
  const fromHistogram = histogram ? histogramLatency(histogram) : null;
  const fromSummary = (a: Aggregate): number | null => {
    if (a.kind === 'max') return s.maxMs;
    if (a.kind === 'med' || (a.kind === 'percentile' && a.p === 50)) return s.p50Ms;
    if (a.kind === 'percentile' && a.p === 95) return s.p95Ms;
    if (a.kind === 'percentile' && a.p === 99) return s.p99Ms;
    if (a.kind === 'count') return s.scheduled - s.dropped;
    return null;
  };
  return {
    scheduled: s.scheduled,
    ok: s.ok,
    latency: (a) => (fromHistogram ? fromHistogram(a) : fromSummary(a)),
    latencyGap: (a) => {
      if (a.kind === 'rate') return 'rate is not a latency aggregate';
      if (!fromHistogram && s.maxMs !== null && fromSummary(a) === null) {
        return `${aggregateText(a)} needs the span's latency histogram; the summary carries p50, p95, p99 and max`;
      }
      return undefined;
    },
  };
}
