/**
 * Patroni's REST API over HTTP: requests with a time limit, basic auth from the environment, and failures
 * sorted into what a person fixes differently (nothing answers / credentials refused / Patroni said no).
 * Credentials never appear in a message: errors carry the URL and Patroni's own answer only.
 */
import http from 'node:http';
import https from 'node:https';

export interface PatroniAuth {
  username: string;
  password: string;
}

/** One member as GET /cluster lists it. Patroni ≥ 3.0.4 reports state `streaming` for replicas; 3.0.2 says `running`. */
export interface ClusterMember {
  name: string;
  role: 'leader' | 'replica' | 'sync_standby' | 'standby_leader' | string;
  state: string;
  api_url?: string;
  host?: string;
  port?: number;
  timeline?: number;
  lag?: number | 'unknown';
}

export interface ClusterDoc {
  members: ClusterMember[];
  pause?: boolean;
}

/** GET /patroni: the member's own view of its PostgreSQL. */
export interface MemberStatus {
  state: string;
  role: 'master' | 'primary' | 'replica' | 'standby_leader' | string;
  timeline?: number;
  xlog?: {
    location?: number;
    received_location?: number;
    replayed_location?: number;
    replayed_timestamp?: string | null;
    paused?: boolean;
  };
  replication?: Array<{ application_name: string; state: string; sync_state: string; client_addr?: string }>;
  /** Patroni ≥ 3.0.4 on a replica: `streaming` when its walreceiver streams. */
  replication_state?: string;
  patroni?: { version: string; scope: string };
}

export type ApiFailure = 'unreachable' | 'auth' | 'refused';

export class PatroniApiError extends Error {
  constructor(
    message: string,
    readonly failure: ApiFailure,
    readonly url: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PatroniApiError';
  }
}

export interface ApiResponse {
  status: number;
  text: string;
  json: unknown;
}

/** `http://h:p/patroni` (GET /cluster's api_url) → `http://h:p`. */
export function apiBase(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/patroni$/, '');
}

/**
 * One request with a hard time limit. node:http rather than fetch: fetch with AbortSignal.timeout can raise
 * an uncaught TimeoutError from a timer after the answer arrived (seen on Node 20), which kills a whole drill.
 */
export function callApi(
  base: string,
  path: string,
  options: { method?: 'GET' | 'POST' | 'PATCH'; body?: unknown; auth?: PatroniAuth; timeoutMs: number; signal?: AbortSignal },
): Promise<ApiResponse> {
  const url = `${apiBase(base)}${path}`;
  const method = options.method ?? 'GET';
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const headers: Record<string, string | number> = {};
  if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
  if (options.auth) headers.authorization = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  return new Promise<ApiResponse>((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason);
    let settled = false;
    const finish = (err: Error | null, value?: ApiResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value!);
    };
    const unreachable = (why: string) => new PatroniApiError(`${method} ${url}: ${why}`, 'unreachable', url);
    let req: http.ClientRequest;
    try {
      req = (url.startsWith('https:') ? https : http).request(url, { method, headers, agent: false });
    } catch (e) {
      return reject(unreachable((e as Error).message));
    }
    const timer = setTimeout(() => {
      finish(unreachable(`no answer within ${options.timeoutMs} ms`));
      req.destroy();
    }, options.timeoutMs);
    const onAbort = () => {
      finish(options.signal!.reason as Error);
      req.destroy();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) => finish(unreachable(e.code ?? e.message)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => finish(unreachable(e.message)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8').trim();
        const status = res.statusCode ?? 0;
        if (status === 401 || status === 403)
          return finish(new PatroniApiError(`${method} ${url}: HTTP ${status} ${text.slice(0, 200)}`, 'auth', url, status));
        let json: unknown = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          // Patroni answers some calls (POST /failover, errors) in plain text.
        }
        finish(null, { status, text, json });
      });
    });
    req.end(payload);
  });
}

/** Credentials from the environment only: a drill file names the variables, never the secret. */
export function authFromEnv(env: NodeJS.ProcessEnv, vars: { username: string; password: string }): PatroniAuth | undefined {
  const username = env[vars.username];
  const password = env[vars.password];
  return username && password ? { username, password } : undefined;
}
