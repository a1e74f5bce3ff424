import { Outcome, type LoadSummary, type RequestLog } from '../load/types.ts';
import type { Mark } from '../scenario/define.ts';
import { createHistogram, recordMs, type Histogram } from './histogram.ts';
import { lowerBound, summarize } from './summary.ts';

/**
 * The run's load cut at its marks, so SLOs can be judged before, during and after the fault:
 *   baseline  [load start, fault-injected)   the whole load when nothing was injected
 *   fault     [fault-injected, recovered)    up to load end when the service never recovered
 *   recovery  [recovered, load end)          absent without a recovered mark
 *   run       [load start, load end)
 */
export const PHASES = ['baseline', 'fault', 'recovery', 'run'] as const;
export type PhaseName = (typeof PHASES)[number];

export interface PhaseSpan {
  fromMs: number;
  toMs: number;
}

export type PhaseSummary = LoadSummary & PhaseSpan;

export function markMs(marks: readonly Mark[], name: string): number | null {
  return marks.find((m) => m.name === name)?.ms ?? null;
}

export function phaseSpans(marks: readonly Mark[], loadStartMs: number, loadEndMs: number): Record<PhaseName, PhaseSpan | null> {
  const span = (fromMs: number, toMs: number): PhaseSpan => ({ fromMs, toMs: Math.max(fromMs, toMs) });
  const fault = markMs(marks, 'fault-injected');
  const recovered = markMs(marks, 'recovered');
  return {
    baseline: span(loadStartMs, fault ?? loadEndMs),
    fault: fault === null ? null : span(fault, recovered ?? loadEndMs),
    recovery: fault === null || recovered === null ? null : span(recovered, loadEndMs),
    run: span(loadStartMs, loadEndMs),
  };
}

export function phaseSummaries(
  log: RequestLog,
  marks: readonly Mark[],
  loadStartMs: number,
  loadEndMs: number,
): Record<PhaseName, PhaseSummary | null> {
  const spans = phaseSpans(marks, loadStartMs, loadEndMs);
  const out = {} as Record<PhaseName, PhaseSummary | null>;
  for (const p of PHASES) {
    const s = spans[p];
    out[p] = s === null ? null : { ...summarize(log, s.fromMs, s.toMs), fromMs: s.fromMs, toMs: s.toMs };
  }
  return out;
}

/**
 * The latency histogram of a span, as summarize() builds it internally: SLOs on aggregates the summary
 * does not carry (p(90), avg, min) are judged on it.
 */
export function latencyHistogram(log: RequestLog, fromMs: number, toMs: number): Histogram {
  const h = createHistogram();
  const end = lowerBound(log, toMs);
  for (let i = lowerBound(log, fromMs); i < end; i++) {
    const o = log.outcome[i]!;
    if (o !== Outcome.dropped && o !== Outcome.pending) recordMs(h, log.latencyMs[i]!);
  }
  return h;
}
