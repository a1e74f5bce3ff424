import type { SloSet } from '../config/types.ts';

/** A mean month of 365.25 d / 12, the period config defaults to: 99.9% leaves 2629.8 s = 43.8 min. */
export const MEAN_MONTH_MS = 30.4375 * 86_400_000;

export interface ErrorBudget {
  downtimeSeconds: number | null;
  /** (1 - availability target) × period. */
  monthlyBudgetSeconds: number | null;
  /** downtime / budget: 1 means this run alone spent the whole month's budget. */
  consumedRatio: number | null;
  reason?: string;
}

export interface ErrorBudgetInput {
  downtimeMs: number | null;
  /** Availability target as a ratio (0.999), or null when the drill sets none. */
  availabilityTarget: number | null;
  periodMs: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function errorBudget(i: ErrorBudgetInput): ErrorBudget {
  const downtimeSeconds = i.downtimeMs === null ? null : round3(i.downtimeMs / 1000);
  if (i.availabilityTarget === null) {
    return {
      downtimeSeconds,
      monthlyBudgetSeconds: null,
      consumedRatio: null,
      reason: 'the drill sets no availability SLO to derive a budget from',
    };
  }
  const monthlyBudgetSeconds = round3(((1 - i.availabilityTarget) * i.periodMs) / 1000);
  if (downtimeSeconds === null) {
    return {
      downtimeSeconds,
      monthlyBudgetSeconds,
      consumedRatio: null,
      reason: 'downtime not measured: no fault was injected or no load ran',
    };
  }
  if (monthlyBudgetSeconds <= 0) {
    if (downtimeSeconds === 0) return { downtimeSeconds, monthlyBudgetSeconds, consumedRatio: 0 };
    return { downtimeSeconds, monthlyBudgetSeconds, consumedRatio: null, reason: 'a 100% availability target leaves no budget to consume' };
  }
  return { downtimeSeconds, monthlyBudgetSeconds, consumedRatio: downtimeSeconds / monthlyBudgetSeconds };
}

/**
 * The availability target the budget is derived from: the strictest lower bound among the
 * availability SLOs (`rate>=99.9%`). Upper bounds on an error rate say the same thing from the other side.
 */
export function availabilityTarget(slo: SloSet): number | null {
  const targets: number[] = [];
  for (const t of slo.availability) {
    if (t.aggregate.kind === 'rate' && (t.op === '>=' || t.op === '>')) targets.push(t.value);
  }
  for (const t of slo.errors) {
    if (t.aggregate.kind === 'rate' && (t.op === '<=' || t.op === '<')) targets.push(1 - t.value);
  }
  return targets.length === 0 ? null : Math.max(...targets);
}
