/**
 * A freshly started lab is cold: each replica's V8 has not optimised its request path and its
 * PostgreSQL pool holds no connections, so the first seconds answer in hundreds of ms. Measured on
 * a 2-core machine: p50 490 ms in the first second of a 200 req/s baseline, 5 ms by the third.
 * The lab stands in for a service that has been running in production, so `lab up` pays that cost
 * itself, with read-only requests, before anyone measures a baseline. A replica started later (a
 * replacement after a kill) stays cold, as a new pod is.
 */
import http from 'node:http';

export interface WarmResult {
  requests: number;
  ms: number;
  /** p95 of the last window when warm-up ended. */
  lastP95Ms: number;
}

const WINDOW = 100;

export async function warmService(
  serviceUrl: string,
  options: { maxMs?: number; concurrency?: number; targetP95Ms?: number; writes?: boolean } = {},
): Promise<WarmResult> {
  const maxMs = options.maxMs ?? 8000;
  const concurrency = options.concurrency ?? 12;
  const targetP95Ms = options.targetP95Ms ?? 40;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const t0 = performance.now();
  const recent: number[] = [];
  let requests = 0;
  let done = false;
  const p95 = () => [...recent].sort((a, b) => a - b)[Math.floor(recent.length * 0.95)] ?? Infinity;
  // Writes carry no token, so no run's write ledger ever counts them as its own or as strangers.
  const WRITE = JSON.stringify({ item: 'lab warm-up' });
  const one = (path: string, write = false) =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      const headers = write ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(WRITE) } : {};
      const req = http.request(`${serviceUrl}${path}`, { agent, timeout: 2000, method: write ? 'POST' : 'GET', headers }, (res) => {
        res.resume();
        res.on('end', () => {
          recent.push(performance.now() - start);
          if (recent.length > WINDOW) recent.shift();
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve());
      req.end(write ? WRITE : undefined);
    });
  const worker = async () => {
    while (!done) {
      const k = requests++ % 10;
      if (k === 0) await one('/health/ready');
      else if (k === 5 && options.writes) await one('/orders', true);
      else await one('/orders?limit=10');
      // Warm once the recent requests are fast and every replica has had its share of them.
      if (requests >= 3 * WINDOW && recent.length === WINDOW && p95() < targetP95Ms) done = true;
      if (performance.now() - t0 > maxMs) done = true;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { requests, ms: performance.now() - t0, lastP95Ms: p95() };
}
