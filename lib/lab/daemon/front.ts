/**
 * The lab's Service: one stable address that proxies round-robin to live, ready replicas only.
 * It can be paused (listener closed, open connections destroyed) to inject a clean, exactly-timed outage.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { listenOnLoopback } from './listen.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Upstream {
  name: string;
  port: number;
}

export interface FrontOptions {
  /** Replicas in rotation right now. */
  upstreams: () => Upstream[];
  markUnready: (name: string, why: string) => void;
  log: (line: string) => void;
}

export interface PauseResult {
  closedAtEpochMs: number;
  reopenedAtEpochMs: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_BODY = 1 << 20;

/** Wall-clock ms with sub-ms resolution, on the same clock the harness uses for its marks. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

type Outcome = { kind: 'done' } | { kind: 'retry'; error: Error } | { kind: 'failed'; error: Error };

export class Front {
  private server: http.Server;
  private readonly sockets = new Set<Socket>();
  private next = 0;
  private paused = false;
  // Ends a pause early: a drill's rollback (or a person) reopens the front without waiting out the timer.
  private wake: (() => void) | null = null;
  private boundPort = 0;
  // Pooled connections for idempotent requests only; see forward().
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  constructor(private readonly opts: FrontOptions) {
    this.server = this.createServer();
  }

  get port(): number {
    return this.boundPort;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  async listen(port = 0): Promise<number> {
    this.boundPort = await listenOnLoopback(this.server, port);
    return this.boundPort;
  }

  /**
   * Closes the listener and destroys every open connection, so new requests get ECONNREFUSED and in-flight
   * ones fail, then listens again on the same port after `ms`. The timestamps bracket exactly the window
   * in which the port refused connections: a test compares the harness's outage measurement to them.
   */
  async pause(ms: number): Promise<PauseResult> {
    if (this.paused) throw Object.assign(new Error('the front is already paused'), { status: 409 });
    this.paused = true;
    try {
      this.server.close();
      const closedAtEpochMs = epochNow();
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
      await new Promise<void>((r) => {
        const timer = setTimeout(r, ms);
        this.wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.wake = null;
      this.server = this.createServer();
      const reopenedAtEpochMs = await this.relisten();
      this.opts.log(`front paused ${(reopenedAtEpochMs - closedAtEpochMs).toFixed(1)} ms`);
      return { closedAtEpochMs, reopenedAtEpochMs };
    } finally {
      this.paused = false;
    }
  }

  /** Ends a pause now; false when the front was not paused (resuming an open front is harmless). */
  resume(): boolean {
    if (!this.wake) return false;
    this.wake();
    return true;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** Timestamp taken in the 'listening' callback, which runs right after the listen() syscall. */
  private async relisten(): Promise<number> {
    const deadline = performance.now() + 2000;
    for (;;) {
      try {
        return await new Promise<number>((resolve, reject) => {
          this.server.once('error', reject);
          this.server.listen(this.boundPort, '127.0.0.1', () => {
            const t = epochNow();
            this.server.off('error', reject);
            resolve(t);
          });
        });
      } catch (e) {
        // Someone else may have bound the port for an instant while it was free; try again briefly.
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || performance.now() > deadline) throw e;
        this.server = this.createServer();
        await sleep(5);
      }
    }
  }

  private createServer(): http.Server {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    return server;
  }

  private pick(exclude: Set<string>): Upstream | null {
    const ups = this.opts.upstreams().filter((u) => !exclude.has(u.name));
    if (ups.length === 0) return null;
    this.next = (this.next + 1) % 1_000_000;
    return ups[this.next % ups.length]!;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req).catch(() => null);
    if (body === null) return reply(res, 413, { error: 'request body too large or aborted' });
    const tried = new Set<string>();
    let lastError: Error | null = null;
    for (;;) {
      const up = this.pick(tried);
      if (!up) {
        return lastError
          ? reply(res, 502, { error: `no replica could take the request: ${lastError.message}` })
          : reply(res, 503, { error: 'no ready replica' });
      }
      tried.add(up.name);
      const out = await this.forward(req, res, body, up);
      if (out.kind === 'done') return;
      lastError = out.error;
      if (out.kind === 'failed') return reply(res, 502, { error: `replica ${up.name} failed: ${out.error.message}` });
    }
  }

  /**
   * A non-idempotent request always goes over a fresh connection: a refused connect then proves it was never
   * delivered, so it may go to another replica. Idempotent requests reuse pooled connections and are retried
   * once a pooled connection turns out dead. Anything else in flight on a replica that dies fails with a 502.
   */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, up: Upstream): Promise<Outcome> {
    return new Promise((resolve) => {
      const method = req.method ?? 'GET';
      const idempotent = IDEMPOTENT.has(method);
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
      headers['content-length'] = body.length;
      headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
      const upReq = http.request({
        host: '127.0.0.1',
        port: up.port,
        method,
        path: req.url,
        headers,
        agent: idempotent ? this.agent : false,
      });
      const abort = () => {
        if (!res.writableFinished) upReq.destroy();
      };
      res.on('close', abort);
      upReq.on('response', (upRes) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
        res.writeHead(upRes.statusCode ?? 502, out);
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
        resolve({ kind: 'done' });
      });
      upReq.on('error', (error: NodeJS.ErrnoException) => {
        res.off('close', abort);
        if (res.headersSent || res.destroyed) {
          res.destroy();
          return resolve({ kind: 'done' });
        }
        if (error.code === 'ECONNREFUSED') {
          this.opts.markUnready(up.name, 'connection refused');
          return resolve({ kind: 'retry', error });
        }
        resolve(idempotent && upReq.reusedSocket ? { kind: 'retry', error } : { kind: 'failed', error });
      });
      upReq.end(body);
    });
  }
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        reject(new Error('too large'));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}
