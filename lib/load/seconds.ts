import { createHistogram, encodeHistogram, maxMs, percentileMs, recordMs } from '../measure/histogram.ts';
import { emptyTally, Outcome, tallyOutcome, type RequestLog, type SecondStats } from '../measure/request-log.ts';
import type { Clock } from '../measure/clock.ts';

/**
 * Stats of second `t` from the log entries [from, to), which must be exactly the requests scheduled in
 * [t*1000, t*1000+1000) and all settled. A pending entry has no fate to count yet, so callers only
 * build a second once every request in it has its fate.
 */
export function secondStats(log: RequestLog, t: number, from: number, to: number, at: string): SecondStats {
  const tally = emptyTally();
  const h = createHistogram();
  for (let i = from; i < to; i++) if (tallyOutcome(tally, log.outcome[i]!)) recordMs(h, log.latencyMs[i]!);
  const { ok, dropped, errors } = tally;
  const scheduled = to - from;
  return {
    t,
    at,
    scheduled,
    sent: scheduled - dropped,
    ok,
    errors,
    dropped,
    p50Ms: percentileMs(h, 50),
    p95Ms: percentileMs(h, 95),
    p99Ms: percentileMs(h, 99),
    maxMs: maxMs(h),
    hdr: encodeHistogram(h),
  };
}

/**
 * Turns the live log into SecondStats, one second at a time and in order, each once every request
 * scheduled in it has its fate. Pointers only move forward, so a check costs nothing while a second
 * waits for a slow request.
 */
export class SecondEmitter {
  readonly listeners: Array<(s: SecondStats) => void> = [];
  readonly emitted: SecondStats[] = [];
  private nextSecond = 0;
  /** Log index where the next second's entries start. */
  private from = 0;
  /** How far the log has been scanned for the end of the next second. */
  private scanTo = 0;
  /** First log entry that may still be pending. */
  private settledTo = 0;

  constructor(
    private readonly log: RequestLog,
    private readonly clock: Clock,
  ) {}

  begin(t0Ms: number): void {
    this.nextSecond = Math.floor(t0Ms / 1000);
  }

  /**
   * `until`: every request scheduled before it is in the log. `over`: scheduling has ended, so the
   * second holding `until` is complete too. `final`: emit whatever the log still holds.
   */
  flush(until: number, over: boolean, final: boolean): void {
    const log = this.log;
    for (;;) {
      const t = this.nextSecond;
      const end = (t + 1) * 1000;
      const complete = until >= end || (over && t * 1000 < until) || (final && this.from < log.count);
      if (!complete) return;
      while (this.scanTo < log.count && log.scheduledMs[this.scanTo]! < end) this.scanTo++;
      while (this.settledTo < log.count && log.outcome[this.settledTo] !== Outcome.pending) this.settledTo++;
      if (this.settledTo < this.scanTo) return;
      const s = secondStats(log, t, this.from, this.scanTo, this.clock.iso(t * 1000));
      this.from = this.scanTo;
      this.nextSecond++;
      this.emitted.push(s);
      for (const cb of this.listeners) {
        try {
          cb(s);
        } catch (e) {
          // A listener's bug must not stop the load or the remaining listeners; it still surfaces.
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
  }
}
