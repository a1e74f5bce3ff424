/**
 * Thresholds in k6's grammar: `p(95)<500ms`, `avg<200`, `max<=2s`, `rate<0.001`, `rate<0.1%`, `rate>=99.9%`.
 * Latency values are milliseconds (a unit may be given: ms, s); rates are ratios (a `%` divides by 100).
 */
export type Aggregate = { kind: 'percentile'; p: number } | { kind: 'avg' | 'min' | 'max' | 'med' | 'rate' | 'count' };
export type Operator = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface Threshold {
  /** The expression as written, for records and messages. */
  source: string;
  aggregate: Aggregate;
  op: Operator;
  /** Milliseconds for latency aggregates, a ratio in [0, 1] for `rate`, a plain number for `count`. */
  value: number;
}

const RE = /^\s*(p\(\s*(\d+(?:\.\d+)?)\s*\)|avg|min|max|med|rate|count)\s*(<=|>=|==|!=|<|>)\s*(\d+(?:\.\d+)?)\s*(ms|s|%)?\s*$/;

export function parseThreshold(source: string): Threshold {
  const m = RE.exec(source);
  if (!m) {
    throw new Error(`expected a k6 threshold such as p(95)<500ms, avg<200, rate<0.001 or rate>=99.9%, got ${JSON.stringify(source)}`);
  }
  const [, agg, pct, op, num, unit] = m;
  let aggregate: Aggregate;
  if (pct !== undefined) {
    const p = Number(pct);
    if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got p(${pct}) in ${JSON.stringify(source)}`);
    aggregate = { kind: 'percentile', p };
  } else {
    aggregate = { kind: agg as 'avg' | 'min' | 'max' | 'med' | 'rate' | 'count' };
  }
  let value = Number(num);
  if (aggregate.kind === 'rate') {
    if (unit === 'ms' || unit === 's') throw new Error(`a rate takes a ratio or a percentage, not a time: ${JSON.stringify(source)}`);
    if (unit === '%') value /= 100;
    if (value < 0 || value > 1) throw new Error(`a rate must be between 0 and 1 (or 0% and 100%), got ${JSON.stringify(source)}`);
  } else if (aggregate.kind === 'count') {
    if (unit !== undefined) throw new Error(`a count takes a plain number, got ${JSON.stringify(source)}`);
  } else {
    if (unit === '%') throw new Error(`a latency takes a time (ms or s), not a percentage: ${JSON.stringify(source)}`);
    if (unit === 's') value *= 1000;
  }
  return { source: source.trim(), aggregate, op: op as Operator, value };
}

export function compare(measured: number, op: Operator, value: number): boolean {
  switch (op) {
    case '<':
      return measured < value;
    case '<=':
      return measured <= value;
    case '>':
      return measured > value;
    case '>=':
      return measured >= value;
    case '==':
      return measured === value;
    case '!=':
      return measured !== value;
  }
}
