/**
 * The request log: every request the load scheduled and its fate, in the shape measurement and scoring
 * read. The load generator fills it; everything downstream only reads it.
 * Every time is run-relative monotonic milliseconds from the run's Clock (lib/measure/clock.ts).
 */

/** One request's fate. Stored as a small integer in the request log. */
export const Outcome = {
  ok: 0,
  /** No response within the request timeout (timed from the scheduled send). */
  timeout: 1,
  /** Connection refused or reset: nobody listening, or the peer died mid-request. */
  refused: 2,
  /** HTTP 5xx. */
  http5xx: 3,
  /** HTTP 4xx: the service answered but refused the request (counts as an error). */
  http4xx: 4,
  /** Anything else: DNS, TLS, a socket error undici does not classify. */
  other: 5,
  /** Never sent: the in-flight cap was reached when its turn came (the service could not keep up). */
  dropped: 6,
  /** Sent, no answer yet. Only seen in a live log; a finished run has none. */
  pending: 7,
} as const;
export type OutcomeCode = (typeof Outcome)[keyof typeof Outcome];
export const OUTCOME_NAMES = ['ok', 'timeout', 'refused', 'http5xx', 'http4xx', 'other', 'dropped', 'pending'] as const;
export type OutcomeName = (typeof OUTCOME_NAMES)[number];

/**
 * Every scheduled request, in schedule order, columnar so a 5,000 req/s run stays small.
 * `latencyMs` is measured from the scheduled send time (no coordinated omission); for dropped
 * requests it is 0 and for timeouts it is the timeout.
 */
export interface RequestLog {
  count: number;
  scheduledMs: Float64Array;
  latencyMs: Float32Array;
  outcome: Uint8Array;
  /** Which request template of the load profile was used (index into LoadProfile.requests). */
  template: Uint8Array;
}

export interface ErrorsByKind {
  timeout: number;
  refused: number;
  http5xx: number;
  http4xx: number;
  other: number;
}

/** One line of metrics.jsonl: the requests *scheduled* in second [t, t+1) of the run. */
export interface SecondStats {
  /** Second index since the run's time zero. */
  t: number;
  /** Wall-clock ISO time of the start of the second. */
  at: string;
  scheduled: number;
  sent: number;
  ok: number;
  errors: ErrorsByKind;
  dropped: number;
  /** Latency of requests that got any response or timed out, ms; null when none did. */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** The second's HDR histogram (hdr-histogram-js, 3 significant digits, microseconds), compressed base64, for exact offline merging. */
  hdr: string;
}

/** Aggregates over a span of the run, as the record's `load` block. */
export interface LoadSummary {
  scheduled: number;
  sent: number;
  ok: number;
  errors: number;
  errorsByKind: ErrorsByKind;
  dropped: number;
  /** ok / scheduled; null when nothing was scheduled. */
  availability: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

function emptyErrors(): ErrorsByKind {
  return { timeout: 0, refused: 0, http5xx: 0, http4xx: 0, other: 0 };
}

/** Requests counted by fate: what a span's summary and a second of metrics.jsonl both count. */
export interface OutcomeTally {
  ok: number;
  dropped: number;
  /** Still in flight: no fate yet, so neither a success nor an error. */
  pending: number;
  errors: ErrorsByKind;
}

export function emptyTally(): OutcomeTally {
  return { ok: 0, dropped: 0, pending: 0, errors: emptyErrors() };
}

/** Counts one request by its outcome; true when it has a latency to record (it was answered or timed out). */
export function tallyOutcome(t: OutcomeTally, o: number): boolean {
  switch (o) {
    case Outcome.ok:
      t.ok++;
      return true;
    case Outcome.dropped:
      t.dropped++;
      return false;
    case Outcome.pending:
      t.pending++;
      return false;
    default:
      // Every other code is an error, named as its kind (a code this version does not know counts as other).
      t.errors[(OUTCOME_NAMES[o] ?? 'other') as keyof ErrorsByKind]++;
      return true;
  }
}

/** A growable RequestLog: the generator appends, readers see a consistent prefix. */
export function createRequestLog(initialCapacity = 4096): RequestLog & { push(scheduledMs: number, template: number): number } {
  const log = {
    count: 0,
    scheduledMs: new Float64Array(initialCapacity),
    latencyMs: new Float32Array(initialCapacity),
    outcome: new Uint8Array(initialCapacity),
    template: new Uint8Array(initialCapacity),
    /** Append a scheduled request (outcome `pending` until its fate is known); returns its index. */
    push(scheduledMs: number, template: number): number {
      if (log.count === log.scheduledMs.length) {
        const cap = log.count * 2;
        const grow = <T extends Float64Array | Float32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
          const b = make(cap);
          b.set(a);
          return b;
        };
        log.scheduledMs = grow(log.scheduledMs, (n) => new Float64Array(n));
        log.latencyMs = grow(log.latencyMs, (n) => new Float32Array(n));
        log.outcome = grow(log.outcome, (n) => new Uint8Array(n));
        log.template = grow(log.template, (n) => new Uint8Array(n));
      }
      const i = log.count++;
      log.scheduledMs[i] = scheduledMs;
      log.latencyMs[i] = 0;
      log.outcome[i] = Outcome.pending;
      log.template[i] = template;
      return i;
    },
  };
  return log;
}
