/**
 * Deterministic faults between a request's arrival and its handling: `beforeNext(method, pathEnd, fn)` runs
 * `fn` (and waits for it) when the next request with that method whose path ends with `pathEnd` arrives,
 * before the server reads the store for it. A test makes a race happen in a known order this way (for
 * example an object changed between a client's read and its conditional patch, which the real API server
 * answers 409 Conflict, as it does here: store.ts / http.ts), instead of hoping timers fire in that order.
 * Each hook fires once; requests `fn` itself sends do not match it (it is removed before it runs).
 */
export interface FaultHooks {
  beforeNext(method: string, pathEnd: string, fn: () => unknown): void;
  /** Called by http.ts for every request, after authentication and before the verb is served. */
  before(method: string, path: string): Promise<void> | undefined;
  /** Hooks set and not fired yet (a test asserts its hook did fire). */
  pending(): number;
}

export function createFaultHooks(): FaultHooks {
  const hooks: { method: string; pathEnd: string; fn: () => unknown }[] = [];
  return {
    beforeNext(method, pathEnd, fn) {
      hooks.push({ method: method.toUpperCase(), pathEnd, fn });
    },
    before(method, path) {
      const i = hooks.findIndex((h) => h.method === method && path.endsWith(h.pathEnd));
      if (i < 0) return undefined;
      const [h] = hooks.splice(i, 1);
      return Promise.resolve()
        .then(h!.fn)
        .then(() => undefined);
    },
    pending: () => hooks.length,
  };
}
