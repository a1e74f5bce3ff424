import { parseDuration } from './duration.ts';
import type { Operator } from './threshold.ts';
import type { StopCondition, StopMetric } from './types.ts';

/**
 * Stop conditions: `<metric> <op> <value> for <duration>`, e.g. `error_rate > 50% for 10s` or
 * `p(95)>=2s for 30s`. Parsed left to right so an error can say which part is wrong and what it expected.
 */
const METRICS_HELP = 'error_rate, availability, dropped_rate, p(95), p95, avg or max';
const EXAMPLE = '"error_rate > 50% for 10s" or "p(95) > 800ms for 30s"';

const METRIC = /^\s*(error_rate|availability|dropped_rate|avg|max|p\(\s*(\d+(?:\.\d+)?)\s*\)|p(\d+(?:\.\d+)?))(?![\w(])/;
const OPERATOR = /^\s*(<=|>=|==|!=|<|>)/;
const VALUE = /^\s*(\d+(?:\.\d+)?)(ms|s|%)?(?=\s|$)/;
const FOR = /^\s+for\s+(\S.*?)\s*$/;

// The StopWatch judges conditions once per completed second, so a shorter hold cannot be honoured.
const MIN_FOR_MS = 1000;

export function parseStopCondition(source: string): StopCondition {
  const where = `in stop condition ${JSON.stringify(source)}`;
  let rest = source;

  const m = METRIC.exec(rest);
  if (!m) {
    const word = /^\s*([\w()]*)/.exec(rest)?.[1] ?? '';
    throw new Error(`expected a metric (${METRICS_HELP}) at the start, got ${JSON.stringify(word)} ${where}; e.g. ${EXAMPLE}`);
  }
  const metricText = m[1]!;
  const metric = metricOf(metricText, m[2] ?? m[3], where);
  rest = rest.slice(m[0].length);

  const o = OPERATOR.exec(rest);
  if (!o) throw new Error(`expected an operator (<, <=, >, >=, == or !=) after ${metricText} ${where}`);
  const op = o[1] as Operator;
  rest = rest.slice(o[0].length);

  const v = VALUE.exec(rest);
  const isRate = metric.kind !== 'latency';
  if (!v) {
    const wanted = isRate ? 'a ratio like 0.5 or a percentage like 50%' : 'a latency like 800ms, 2s or 800 (milliseconds)';
    throw new Error(`expected ${wanted} after ${metricText} ${op} ${where}`);
  }
  const value = thresholdValue(Number(v[1]), v[2], isRate, metricText, where);
  rest = rest.slice(v[0].length);

  if (rest.trim() === '') {
    throw new Error(`expected "for <duration>" after the value ${where}: a stop condition must hold for a while, e.g. ${EXAMPLE}`);
  }
  const f = FOR.exec(rest);
  if (!f) throw new Error(`expected "for <duration>" after the value, got ${JSON.stringify(rest.trim())} ${where}`);
  let forMs: number;
  try {
    forMs = parseDuration(f[1]!);
  } catch (e) {
    throw new Error(`${(e as Error).message} after "for" ${where}`);
  }
  if (forMs < MIN_FOR_MS) {
    throw new Error(
      `expected a "for" duration of at least 1s (conditions are judged once per second), got ${JSON.stringify(f[1])} ${where}`,
    );
  }
  return { source: source.trim(), metric, op, value, forMs };
}

function metricOf(text: string, percentile: string | undefined, where: string): StopMetric {
  if (percentile !== undefined) {
    const p = Number(percentile);
    if (!(p > 0 && p <= 100)) throw new Error(`expected a percentile in (0, 100], got ${text} ${where}`);
    return { kind: 'latency', aggregate: { p } };
  }
  switch (text) {
    case 'avg':
    case 'max':
      return { kind: 'latency', aggregate: text };
    case 'error_rate':
    case 'availability':
    case 'dropped_rate':
      return { kind: text };
  }
  throw new Error(`expected a metric (${METRICS_HELP}), got ${JSON.stringify(text)} ${where}`);
}

function thresholdValue(n: number, unit: string | undefined, isRate: boolean, metric: string, where: string): number {
  if (isRate) {
    if (unit === 'ms' || unit === 's')
      throw new Error(`${metric} is a rate: expected a ratio like 0.5 or a percentage like 50%, not a time, ${where}`);
    const ratio = unit === '%' ? n / 100 : n;
    if (ratio > 1) {
      throw new Error(`${metric} is a rate: expected a ratio from 0 to 1 or a percentage from 0% to 100%, got ${n}${unit ?? ''} ${where}`);
    }
    return ratio;
  }
  if (unit === '%') throw new Error(`${metric} is a latency: expected a time like 800ms or 2s, not a percentage, ${where}`);
  return unit === 's' ? n * 1000 : n;
}
