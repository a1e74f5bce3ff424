/**
 * The frame every watch-until-done wait shares: settle once, on the condition, on the caller's abort or on
 * the deadline, and stop the watch whichever came first. The caller starts its informers on `stop` and
 * calls `done` or `fail`; `timedOut` builds the error the deadline rejects with, saying what was last seen.
 */
export interface Settle<T> {
  /** Aborted once the wait is settled: informers started for the wait run on it. */
  stop: AbortSignal;
  done(value: T): void;
  fail(error: unknown): void;
}

export function settleWatch<T>(
  o: { timeoutMs: number; signal: AbortSignal; timedOut(): Error },
  start: (s: Settle<T>) => void,
): Promise<T> {
  // AbortSignal.timeout takes whole milliseconds only.
  const deadline = AbortSignal.timeout(Math.max(0, Math.round(o.timeoutMs)));
  const stop = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      stop.abort();
      o.signal.removeEventListener('abort', onAbort);
      deadline.removeEventListener('abort', onDeadline);
      fn();
    };
    const onAbort = () => finish(() => reject(o.signal.reason));
    const onDeadline = () => finish(() => reject(o.timedOut()));
    o.signal.addEventListener('abort', onAbort, { once: true });
    deadline.addEventListener('abort', onDeadline, { once: true });
    try {
      start({ stop: stop.signal, done: (v) => finish(() => resolve(v)), fail: (e) => finish(() => reject(e)) });
    } catch (e) {
      finish(() => reject(e));
    }
    // Either may have fired while the watch was being set up, before the listeners were there.
    if (o.signal.aborted) onAbort();
    else if (deadline.aborted) onDeadline();
  });
}
