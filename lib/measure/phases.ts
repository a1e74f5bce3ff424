import { Outcome, type LoadSummary, type RequestLog } from './request-log.ts';
import type { Mark } from './timeline.ts';
import { createHistogram, recordMs, type Histogram } from './histogram.ts';
import { spanSelection, summarizeSelection, type Selection } from './summary.ts';

/**
 * The run's load cut at its marks, so SLOs can be judged before, during and after the fault:
 *   baseline  [load start, fault-injected)   the whole load when nothing was injected
 *   fault     [fault-injected, recovered)    up to load end when the service never recovered
 *   recovery  [recovered, load end)          absent without a recovered mark
 *   run       [load start, load end)
 * by scheduled time, with one exception: a request sent before the fault and still in flight when it was
 * injected is judged with the fault, not the baseline. Its answer (or its timeout) came during the fault,
 * and a write cut off by a killed replica must not fail the baseline SLOs, which judge the service's
 * promise outside the fault.
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

/** Which requests of the log a phase judges: its span by scheduled time, with the in-flight-at-fault rule above. */
export function phaseSelection(log: RequestLog, p: PhaseName, span: PhaseSpan, faultMs: number | null): Selection {
  const { start, end } = spanSelection(log, span.fromMs, span.toMs);
  if (faultMs === null) return { start, end };
  // Settled = answered or timed out (scheduled + latency), or dropped at its turn (latency 0).
  const settledBy = (i: number) => log.scheduledMs[i]! + log.latencyMs[i]! <= faultMs;
  if (p === 'baseline') return { start, end, keep: settledBy };
  if (p === 'fault') {
    // The ones from before the fault that it caught lie at most one request timeout back; scanning from the log's start is simpler and cheap.
    return { start: 0, end, keep: (i) => log.scheduledMs[i]! >= span.fromMs || !settledBy(i) };
  }
  return { start, end };
}

export function phaseSummaries(
  log: RequestLog,
  marks: readonly Mark[],
  loadStartMs: number,
  loadEndMs: number,
): Record<PhaseName, PhaseSummary | null> {
  const spans = phaseSpans(marks, loadStartMs, loadEndMs);
  const faultMs = markMs(marks, 'fault-injected');
  const out = {} as Record<PhaseName, PhaseSummary | null>;
  for (const p of PHASES) {
    const s = spans[p];
    out[p] = s === null ? null : { ...summarizeSelection(log, phaseSelection(log, p, s, faultMs)), fromMs: s.fromMs, toMs: s.toMs };
  }
  return out;
}

/**
 * The latency histogram of a phase's requests, as summarize() builds it internally: SLOs on aggregates
 * the summary does not carry (p(90), avg, min) are judged on it.
 */
export function selectionHistogram(log: RequestLog, sel: Selection): Histogram {
  const h = createHistogram();
  for (let i = sel.start; i < sel.end; i++) {
    if (sel.keep && !sel.keep(i)) continue;
    const o = log.outcome[i]!;
    if (o !== Outcome.dropped && o !== Outcome.pending) recordMs(h, log.latencyMs[i]!);
  }
  return h;
}

/** The latency histogram of the requests scheduled in [fromMs, toMs). */
export function latencyHistogram(log: RequestLog, fromMs: number, toMs: number): Histogram {
  return selectionHistogram(log, spanSelection(log, fromMs, toMs));
}
