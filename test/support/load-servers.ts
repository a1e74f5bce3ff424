import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LoadProfile } from '../../lib/load/types.ts';

/** A loopback HTTP server for load tests; close() also cancels the handler timers it was given. */
export interface TestServer {
  url: string;
  port: number;
  /** setTimeout that close() cancels, so a stalling handler cannot keep the test process alive. */
  later(ms: number, fn: () => void): void;
  close(): Promise<void>;
}

export async function startServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, srv: TestServer) => void,
): Promise<TestServer> {
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => handler(req, res, srv));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const srv: TestServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    later(ms, fn) {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return srv;
}

/** Reads the whole request body as text. */
export function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

/** A loopback port nobody listens on (bound, read, released). */
export async function unusedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export function profile(url: string, over: Partial<LoadProfile> = {}): LoadProfile {
  return {
    url,
    rate: 100,
    requests: [{ method: 'GET', path: '/', weight: 1 }],
    timeoutMs: 2000,
    maxInFlight: 500,
    connections: 50,
    ...over,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the generator for `ms` of schedule and stops it. start() may first wait for the one-time
 * client warm-up, so the schedule's end is read off the log's t0 rather than the wall clock.
 */
export async function runFor(
  gen: { start(ms: number): void; stop(): Promise<void>; log: { count: number; scheduledMs: Float64Array } },
  clock: { now(): number },
  ms: number,
): Promise<void> {
  gen.start(ms);
  while (gen.log.count === 0) await sleep(2);
  const end = gen.log.scheduledMs[0]! + ms;
  await sleep(Math.max(0, end - clock.now()) + 10);
  await gen.stop();
}
