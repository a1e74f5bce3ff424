/**
 * The daemon's control API on loopback: status (long-pollable), scale, DB repoint, front pause, events.
 */
import http from 'node:http';
import type { DbEndpoint } from './db-endpoint.ts';
import type { Front } from './front.ts';
import { HttpError, readJsonBody, sendJson } from './http-json.ts';
import { OWNER, TEMPLATE_LABELS, type Supervisor } from './supervisor.ts';
import type { DaemonStatus, LabEvent } from '../types.ts';

const MAX_EVENTS = 1000;
const MAX_WAIT_MS = 30_000;

/** A change counter with waiters, and the recent events behind it. */
export class ChangeFeed {
  version = 0;
  private readonly events: LabEvent[] = [];
  private waiters: (() => void)[] = [];

  push(type: string, fields: Record<string, unknown> = {}): void {
    this.version++;
    this.events.push({ seq: this.version, at: new Date().toISOString(), type, ...fields });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  since(seq: number): LabEvent[] {
    return this.events.filter((e) => e.seq > seq);
  }

  /** Resolves when version passes `after`, or after waitMs. */
  wait(after: number, waitMs: number): Promise<void> {
    if (this.version > after || waitMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== done);
        resolve();
      }, waitMs);
      this.waiters.push(done);
    });
  }
}

export interface ControlDeps {
  supervisor: Supervisor;
  front: Front;
  db: DbEndpoint;
  feed: ChangeFeed;
  daemon: { pid: number; startedAt: string };
  /** Persists state after a change the control API made (desired count, primary). */
  persist: () => void;
}

export function statusOf(d: ControlDeps): DaemonStatus {
  const replicas = d.supervisor.list();
  return {
    version: d.feed.version,
    owner: OWNER,
    templateLabels: { ...TEMPLATE_LABELS },
    desired: d.supervisor.desired,
    ready: replicas.filter((r) => r.ready).length,
    replicas,
    front: { port: d.front.port, paused: d.front.isPaused },
    db: { endpointPort: d.db.port, primaryPort: d.db.primaryPort, connections: d.db.connections },
    daemon: d.daemon,
  };
}

function intField(body: unknown, key: string, min: number, max: number): number {
  const v = (body as Record<string, unknown> | null)?.[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new HttpError(400, `\`${key}\` must be an integer ${min}-${max}`);
  return v;
}

async function route(d: ControlDeps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://control');
  const key = `${req.method} ${url.pathname}`;
  switch (key) {
    case 'GET /status': {
      const after = Number(url.searchParams.get('after') ?? NaN);
      const waitMs = Math.min(Number(url.searchParams.get('waitMs') ?? 0) || 0, MAX_WAIT_MS);
      if (Number.isFinite(after)) await d.feed.wait(after, waitMs);
      return sendJson(res, 200, statusOf(d));
    }
    case 'GET /events':
      return sendJson(res, 200, d.feed.since(Number(url.searchParams.get('after') ?? 0) || 0));
    case 'POST /replicas/scale': {
      const body = await readJsonBody(req);
      const desired = intField(body, 'desired', 0, 64);
      d.supervisor.scale(desired, (body as { resetBackoff?: unknown }).resetBackoff === true);
      d.feed.push('scaled', { desired });
      d.persist();
      return sendJson(res, 200, statusOf(d));
    }
    case 'PUT /db/primary': {
      const port = intField(await readJsonBody(req), 'port', 1, 65535);
      const from = d.db.primaryPort;
      const closedConnections = d.db.repoint(port);
      d.feed.push('db-repointed', { from, to: port, closedConnections });
      d.persist();
      return sendJson(res, 200, { primaryPort: port, previousPort: from, closedConnections });
    }
    case 'POST /front/pause': {
      const ms = intField(await readJsonBody(req), 'ms', 0, 600_000);
      const r = await d.front.pause(ms);
      d.feed.push('front-paused', { ...r });
      return sendJson(res, 200, r);
    }
    case 'POST /front/resume': {
      const wasPaused = d.front.resume();
      d.feed.push('front-resumed', { wasPaused });
      return sendJson(res, 200, { wasPaused });
    }
    default:
      throw new HttpError(404, `no route ${key}`);
  }
}

export function createControlServer(d: ControlDeps): http.Server {
  return http.createServer((req, res) => {
    route(d, req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : ((e as { status?: number }).status ?? 500);
      if (!res.headersSent) sendJson(res, status, { error: (e as Error).message });
    });
  });
}
