/** Calls to a running lab's control API. */
import type { PauseResult } from './front.ts';
import { requestJson } from './http-json.ts';
import type { DaemonStatus, LabEvent, LabInfo } from '../types.ts';

export type { PauseResult };

/** With `after`, long-polls: answers once the status version passes it, or after waitMs. */
export function getDaemonStatus(
  controlUrl: string,
  options: { after?: number; waitMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<DaemonStatus> {
  const q = options.after === undefined ? '' : `?after=${options.after}&waitMs=${Math.max(0, Math.floor(options.waitMs ?? 0))}`;
  return requestJson<DaemonStatus>(`${controlUrl}/status${q}`, {
    timeoutMs: (options.timeoutMs ?? 5000) + (options.waitMs ?? 0),
    signal: options.signal,
  });
}

export function scaleReplicas(controlUrl: string, desired: number, options: { resetBackoff?: boolean } = {}): Promise<DaemonStatus> {
  return requestJson<DaemonStatus>(`${controlUrl}/replicas/scale`, {
    method: 'POST',
    body: { desired, resetBackoff: options.resetBackoff ?? false },
  });
}

/** Points the DB endpoint at another PostgreSQL port and cuts the connections to the old one. */
export function setDbPrimary(
  controlUrl: string,
  port: number,
): Promise<{ primaryPort: number; previousPort: number; closedConnections: number }> {
  return requestJson(`${controlUrl}/db/primary`, { method: 'PUT', body: { port } });
}

/**
 * Makes the front refuse connections for `ms`; resolves after it listens again, with the exact epoch-ms
 * instants (performance.timeOrigin + performance.now() in the daemon) it closed and reopened.
 */
export function pauseFront(info: Pick<LabInfo, 'controlUrl'>, ms: number): Promise<PauseResult> {
  return requestJson<PauseResult>(`${info.controlUrl}/front/pause`, {
    method: 'POST',
    body: { ms: Math.round(ms) },
    timeoutMs: ms + 10_000,
  });
}

/** Ends a pause early; the pending pauseFront call then resolves with the real reopen instant. */
export function resumeFront(info: Pick<LabInfo, 'controlUrl'>): Promise<{ wasPaused: boolean }> {
  return requestJson(`${info.controlUrl}/front/resume`, { method: 'POST', body: {} });
}

export function labEvents(controlUrl: string, after = 0): Promise<LabEvent[]> {
  return requestJson<LabEvent[]>(`${controlUrl}/events?after=${after}`);
}
