import { performance } from 'node:perf_hooks';

/**
 * One time base for a whole run. Every mark, every scheduled request and every per-second bucket
 * is in milliseconds since `startedAt` on the monotonic clock, so an NTP step during a drill cannot
 * bend an RTO. Wall-clock ISO strings are derived from it only for people and auditors.
 */
export interface Clock {
  /** Wall-clock time of ms = 0, as epoch milliseconds. */
  readonly epochMs: number;
  /** Monotonic milliseconds since the run's time zero (fractional). */
  now(): number;
  /** ISO-8601 wall-clock time of a run-relative ms value. */
  iso(ms: number): string;
}

export function createClock(): Clock {
  const mono0 = performance.now();
  const epochMs = Date.now();
  return {
    epochMs,
    now: () => performance.now() - mono0,
    iso: (ms: number) => new Date(epochMs + ms).toISOString(),
  };
}

/** A clock for pure tests and offline re-scoring: time only moves when told to. */
export function manualClock(epochMs = Date.UTC(2026, 9, 1)): Clock & { advance(ms: number): void; set(ms: number): void } {
  let t = 0;
  return {
    epochMs,
    now: () => t,
    iso: (ms: number) => new Date(epochMs + ms).toISOString(),
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}
