import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
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

/** A server in a child process (test/support/arrival-server.ts) that stamps when each request's `seq` arrived. */
export interface ArrivalServer {
  url: string;
  port: number;
  /**
   * Arrival time of every `seq` so far, converted to the caller's `performance.now()` timeline: the child's
   * epoch stamps minus the offset between the two processes' clocks, estimated from the IPC ping with the
   * shortest round trip (`offsetMs`, accurate to ±`offsetErrorMs`, its half round trip). `loopMaxMs`: the
   * server process's longest event-loop stall.
   */
  arrivals(): Promise<{ bySeq: Map<number, number>; offsetMs: number; offsetErrorMs: number; loopMaxMs: number }>;
  close(): Promise<void>;
}

export async function startArrivalServer(): Promise<ArrivalServer> {
  const file = fileURLToPath(new URL('./arrival-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let nextId = 0;
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  child.on('message', (m: Record<string, unknown>) => {
    const cb = waiting.get(m.id as number);
    if (cb) {
      waiting.delete(m.id as number);
      cb(m);
    }
  });
  const ask = (type: string): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const id = ++nextId;
      waiting.set(id, resolve);
      child.send({ type, id });
    });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('arrival-server did not start within 15 s')), 15_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`arrival-server exited (${code ?? signal}) before listening`)));
    child.once('message', (m: { type: string; port: number }) => {
      clearTimeout(timer);
      if (m.type === 'ready') resolve(m.port);
      else reject(new Error(`arrival-server said ${JSON.stringify(m)} first`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async arrivals() {
      // Child epoch = parent performance.now() + offset; the ping with the shortest round trip bounds it best.
      let best = { offsetMs: 0, offsetErrorMs: Infinity };
      for (let i = 0; i < 20; i++) {
        const sent = performance.now();
        const m = await ask('ping');
        const back = performance.now();
        const err = (back - sent) / 2;
        if (err < best.offsetErrorMs) best = { offsetMs: (m.epochMs as number) - (sent + back) / 2, offsetErrorMs: err };
      }
      const m = await ask('dump');
      const bySeq = new Map<number, number>();
      for (const [seq, at] of m.arrivals as Array<[number, number]>) bySeq.set(seq, at - best.offsetMs);
      return { bySeq, ...best, loopMaxMs: m.loopMaxMs as number };
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
