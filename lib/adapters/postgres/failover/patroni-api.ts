/**
 * Patroni's REST API over HTTP: requests with a time limit, basic auth from the environment, and failures
 * sorted into what a person fixes differently (nothing answers / credentials refused / Patroni said no).
 * Credentials never appear in a message: errors carry the URL and Patroni's own answer only.
 */

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
  xlog?: { location?: number; received_location?: number; replayed_location?: number; replayed_timestamp?: string | null; paused?: boolean };
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

export async function callApi(
  base: string,
  path: string,
  options: { method?: 'GET' | 'POST' | 'PATCH'; body?: unknown; auth?: PatroniAuth; timeoutMs: number; signal?: AbortSignal },
): Promise<ApiResponse> {
  const url = `${apiBase(base)}${path}`;
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.auth) headers.authorization = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.any(signals),
    });
  } catch (e) {
    options.signal?.throwIfAborted();
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new PatroniApiError(`${method} ${url}: ${why}`, 'unreachable', url);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Patroni answers some calls (POST /failover, errors) in plain text.
  }
  if (res.status === 401 || res.status === 403) {
    throw new PatroniApiError(`${method} ${url}: HTTP ${res.status} ${text.trim().slice(0, 200)}`, 'auth', url, res.status);
  }
  return { status: res.status, text: text.trim(), json };
}

/** Credentials from the environment only: a drill file names the variables, never the secret. */
export function authFromEnv(env: NodeJS.ProcessEnv, vars: { username: string; password: string }): PatroniAuth | undefined {
  const username = env[vars.username];
  const password = env[vars.password];
  return username && password ? { username, password } : undefined;
}
