/**
 * The global front's proxy, as Azure Front Door sits before two regions: every request goes to the front of
 * the active region, streamed both ways (an attachment PUT is not buffered). A switch sends new requests to
 * the new region at once, lets the ones in flight on the old region finish, and closes the idle pooled
 * connections to it, so nothing reaches a region the drill has switched away from once its last answer is out.
 * An upstream that cannot be reached answers 502 naming the region, within a connect timeout, never a hang.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { RegionName } from '../regions/contract.ts';
import { listenOnLoopback } from './listen.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);
/** Requests without a body that may go again when a pooled connection turns out dead. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Loopback connects either succeed or are refused at once; this only bounds an upstream that is frozen (SIGSTOP). */
const CONNECT_TIMEOUT_MS = 2000;

interface Upstream {
  region: RegionName;
  port: number | null;
  agent: http.Agent;
  inFlight: number;
  retired: boolean;
}

export interface SwitchResult {
  switchedAt: string;
  from: { region: RegionName; upstreamPort: number | null };
  /** Requests still in flight on the old upstream when the switch happened: they finish there. */
  inFlightOnOld: number;
  /** Idle pooled connections to the old upstream that were closed. */
  idleClosed: number;
}

export class GlobalProxy {
  private readonly server: http.Server;
  private readonly clients = new Set<Socket>();
  private current: Upstream;
  private boundPort = 0;
  /** 502s per region since the last log line: one line a second under load, not one per request. */
  private failures = new Map<string, { count: number; last: string }>();
  private failureTimer: NodeJS.Timeout | null = null;

  constructor(
    region: RegionName,
    upstreamPort: number | null,
    private readonly log: (line: string) => void,
  ) {
    this.current = upstream(region, upstreamPort);
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.clients.add(s);
      s.on('close', () => this.clients.delete(s));
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get active(): { region: RegionName; upstreamPort: number | null } {
    return { region: this.current.region, upstreamPort: this.current.port };
  }

  async listen(port = 0): Promise<number> {
    this.boundPort = await listenOnLoopback(this.server, port);
    return this.boundPort;
  }

  /** New requests go to `region` on `upstreamPort` from now on; the old upstream drains. */
  switchTo(region: RegionName, upstreamPort: number | null): SwitchResult {
    const old = this.current;
    this.current = upstream(region, upstreamPort);
    const switchedAt = new Date().toISOString();
    old.retired = true;
    let idleClosed = 0;
    for (const list of Object.values(old.agent.freeSockets))
      for (const s of list ?? []) {
        s.destroy();
        idleClosed++;
      }
    // A connection that goes idle after its last answer is closed too, and the pool goes with the last request.
    old.agent.on('free', (s: Socket) => s.destroy());
    if (old.inFlight === 0) old.agent.destroy();
    this.log(
      `switched to the ${region} region (upstream ${upstreamPort ?? 'none'}) from the ${old.region} region (upstream ${old.port ?? 'none'}): ${old.inFlight} request(s) finish there, ${idleClosed} idle connection(s) closed`,
    );
    return { switchedAt, from: { region: old.region, upstreamPort: old.port }, inFlightOnOld: old.inFlight, idleClosed };
  }

  close(): Promise<void> {
    this.current.agent.destroy();
    for (const s of this.clients) s.destroy();
    if (this.failureTimer) clearTimeout(this.failureTimer);
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const up = this.current;
    if (up.port === null) {
      req.resume();
      this.fail(res, up, `no front is running in the ${up.region} region`);
      return;
    }
    up.inFlight++;
    let finished = false;
    res.on('close', () => {
      if (finished) return;
      finished = true;
      up.inFlight--;
      if (up.retired && up.inFlight === 0) up.agent.destroy();
    });
    this.forward(req, res, up, false);
  }

  /**
   * A request with a body goes over a fresh connection, streamed: a refused connect then proves it was never
   * delivered. A request without one reuses pooled connections and goes once more when a pooled connection
   * turns out closed by the other side.
   */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, up: Upstream, retried: boolean): void {
    const method = req.method ?? 'GET';
    const pooled = IDEMPOTENT.has(method);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    const upReq = http.request({ host: '127.0.0.1', port: up.port!, method, path: req.url, headers, agent: pooled ? up.agent : false });
    upReq.on('socket', (s: Socket) => {
      if (!s.connecting) return;
      const timer = setTimeout(
        () => upReq.destroy(Object.assign(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })),
        CONNECT_TIMEOUT_MS,
      );
      s.once('connect', () => clearTimeout(timer));
      s.once('close', () => clearTimeout(timer));
    });
    const abort = () => {
      if (!res.writableFinished) upReq.destroy();
    };
    res.on('close', abort);
    upReq.on('response', (upRes) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      out['x-drill-region'] = up.region;
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    upReq.on('error', (e: NodeJS.ErrnoException) => {
      res.off('close', abort);
      if (res.headersSent || res.destroyed) return void res.destroy();
      if (pooled && !retried && upReq.reusedSocket && e.code !== 'ETIMEDOUT') return this.forward(req, res, up, true);
      req.resume();
      this.fail(res, up, `the ${up.region} region's front (127.0.0.1:${up.port}) cannot be reached: ${e.code ?? e.message}`);
    });
    if (pooled) {
      req.resume();
      upReq.end();
    } else req.pipe(upReq);
  }

  private fail(res: http.ServerResponse, up: Upstream, error: string): void {
    const f = this.failures.get(up.region) ?? { count: 0, last: '' };
    f.count++;
    f.last = error;
    this.failures.set(up.region, f);
    this.failureTimer ??= setTimeout(() => {
      this.failureTimer = null;
      for (const [region, g] of this.failures) this.log(`502 x${g.count} for the ${region} region: ${g.last}`);
      this.failures.clear();
    }, 1000);
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify({ error, region: up.region });
    res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-drill-region': up.region });
    res.end(text);
  }
}

function upstream(region: RegionName, port: number | null): Upstream {
  // Pooled sockets are dropped before the region front's 5 s keep-alive ends, so a reused socket is rarely a closing one.
  return { region, port, agent: new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 }), inFlight: 0, retired: false };
}
