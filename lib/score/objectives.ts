import type { DataClass, Policy, SloSet, Tier } from '../config/types.ts';
import type { LoadSummary } from '../measure/request-log.ts';
import type { Histogram } from '../measure/histogram.ts';
import type { LedgerCounts, LedgerVerdict } from '../measure/ledger.ts';
import { figuresOf, measureSlo, sloChecks, sloName, type SloKind } from './slo.ts';

/**
 * RTO, RPO and SLOs scored against policy. Each result says what was measured, how, and whether it
 * met the target; what could not be measured is null with a reason, never a guess.
 */

export interface RtoResult {
  targetSeconds: number;
  measuredSeconds: number | null;
  /** How it was measured; null when nothing was. */
  method: string | null;
  met: boolean | null;
  reason?: string;
}

export interface RtoInput {
  tier: Tier;
  policy: Pick<Policy, 'rtoMs'>;
  /** Null when nothing was injected. */
  faultMs: number | null;
  /** Null when the service did not recover. */
  recoveredMs: number | null;
  method: string;
  /** Why RTO is not measured or not met, in a sentence. */
  reason?: string;
  /**
   * The run stopped (abort, harness error) before recovery and before the scenario's timeout: an
   * unrecovered service then leaves RTO unmeasured rather than missed.
   */
  interrupted?: boolean;
}

/** Milliseconds to seconds, kept to the millisecond so records do not carry float noise. */
export function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

export function scoreRto(i: RtoInput): RtoResult {
  const targetSeconds = seconds(i.policy.rtoMs[i.tier]);
  if (i.faultMs === null) {
    return { targetSeconds, measuredSeconds: null, method: null, met: null, reason: i.reason ?? 'no fault was injected; RTO not measured' };
  }
  if (i.recoveredMs === null) {
    if (i.interrupted) {
      return {
        targetSeconds,
        measuredSeconds: null,
        method: null,
        met: null,
        reason: i.reason ?? 'the run stopped before the service recovered; RTO not measured',
      };
    }
    return {
      targetSeconds,
      measuredSeconds: null,
      method: i.method,
      met: false,
      reason: i.reason ?? 'the service did not recover within the scenario timeout',
    };
  }
  const measuredSeconds = seconds(i.recoveredMs - i.faultMs);
  return { targetSeconds, measuredSeconds, method: i.method, met: measuredSeconds <= targetSeconds };
}

export interface RpoResult {
  targetSeconds: number;
  measuredSeconds: number | null;
  method: string | null;
  /** Acknowledged writes absent after recovery; null when the scenario writes no data. */
  lostWrites: number | null;
  /** Writes that timed out: neither counted lost nor safe. */
  unknownWrites: number | null;
  met: boolean | null;
  reason?: string;
  /** Every class of the write ledger's read-back and the lost window, when a ledger measured the RPO. */
  ledger?: LedgerCounts;
}

/** What the write ledger (or a restore check) measured. */
export interface RpoMeasurement {
  /** Null when the read-back could not be done (the reason says why). */
  measuredSeconds: number | null;
  lostWrites: number;
  unknownWrites: number;
  method: string;
  reason?: string;
  /** The ledger's counts, carried into the record as `objectives.rpo.ledger`. */
  ledger?: LedgerCounts;
}

/**
 * The write ledger's verdict as an RPO measurement. Unknown writes found present committed and are
 * safe; only the unknown and absent ones are "neither lost nor safe".
 */
export function rpoFromLedger(v: Pick<LedgerVerdict, 'rpoSeconds' | 'lost' | 'unknownAbsent' | 'method'>): RpoMeasurement {
  return { measuredSeconds: v.rpoSeconds, lostWrites: v.lost, unknownWrites: v.unknownAbsent, method: v.method };
}

export interface RpoInput {
  dataClass: DataClass;
  policy: Pick<Policy, 'rpoMs'>;
  /** Null when the scenario writes no data. */
  measurement: RpoMeasurement | null;
  /** Overrides the default reason for a null measurement (e.g. nothing was injected). */
  reason?: string;
}

export function scoreRpo(i: RpoInput): RpoResult {
  const targetSeconds = seconds(i.policy.rpoMs[i.dataClass]);
  const m = i.measurement;
  if (m === null) {
    return {
      targetSeconds,
      measuredSeconds: null,
      method: null,
      lostWrites: null,
      unknownWrites: null,
      met: null,
      reason: i.reason ?? 'scenario writes no data; RPO not measured',
    };
  }
  const base = {
    targetSeconds,
    method: m.method,
    lostWrites: m.lostWrites,
    unknownWrites: m.unknownWrites,
    ...(m.ledger ? { ledger: m.ledger } : {}),
  };
  if (m.measuredSeconds === null) {
    return {
      ...base,
      measuredSeconds: null,
      met: null,
      reason: m.reason ?? i.reason ?? 'the write ledger could not be read back; RPO not measured',
    };
  }
  return { ...base, measuredSeconds: m.measuredSeconds, met: m.measuredSeconds <= targetSeconds };
}

export interface SloResult {
  /** e.g. `latency p(95)<500ms`. */
  name: string;
  kind: SloKind;
  phase: string;
  /** The threshold as written in the drill. */
  threshold: string;
  /** ms for latency, a ratio for rates, a number for counts. */
  measured: number | null;
  met: boolean | null;
  reason?: string;
}

/**
 * Every SLO of the set judged over one span. Pass the span's histogram to judge latency aggregates
 * the summary does not carry (p(90), avg, min); without it those are unmeasured.
 */
export function scoreSlos(slo: SloSet, summary: LoadSummary, phase: string, histogram?: Histogram): SloResult[] {
  const figures = figuresOf(summary, histogram);
  return sloChecks(slo).map((c) => {
    const m = measureSlo(c, figures);
    const r: SloResult = { name: sloName(c), kind: c.kind, phase, threshold: c.threshold.source, measured: m.measured, met: m.met };
    if (m.reason !== undefined) r.reason = m.reason;
    return r;
  });
}
