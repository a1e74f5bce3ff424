/**
 * The lab's DB endpoint following Patroni's leader by itself, as HAProxy does in front of a Patroni cluster
 * (`option httpchk GET /primary` on every member, `on-marked-down shutdown-sessions`): the member that answers
 * GET /primary with 200 gets the connections, and the old one's are cut. Nobody repoints it after a failover.
 *
 * Cheaper than HAProxy's check of every member every interval: the current target is checked each interval,
 * and the others only while it does not answer 200. A member whose API times out (a loaded machine) is not
 * taken for dead: the endpoint moves only when another member says it is the primary.
 */
import { callApi } from '../../adapters/postgres/failover/patroni-api.ts';
import type { LabConfig } from '../types.ts';

export const FOLLOW_INTERVAL_MS = 250;

export interface FollowedMember {
  name: string;
  pgPort: number;
  apiUrl: string;
}

export function followedMembers(config: LabConfig): FollowedMember[] {
  if (config.provider !== 'patroni' || !config.patroni) return [];
  return Object.entries(config.patroni.members).map(([name, m]) => ({
    name,
    pgPort: config.nodes[name]!.port,
    apiUrl: `http://127.0.0.1:${m.apiPort}`,
  }));
}

/** Starts following; returns a stop function. `onRepoint` hears every move (for the control API's feed and daemon.json). */
export function followPatroniLeader(
  /** The daemon's DB endpoint: where it points now, and moving it (returns the connections it closed). */
  endpoint: { readonly primaryPort: number; repoint(port: number): number },
  members: FollowedMember[],
  onRepoint: (move: { from: number; to: number; member: string; closedConnections: number }) => void,
  intervalMs = FOLLOW_INTERVAL_MS,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const isPrimary = (m: FollowedMember) =>
    callApi(m.apiUrl, '/primary', { timeoutMs: 1000 }).then(
      (r) => r.status === 200,
      () => false,
    );
  const tick = async () => {
    const current = members.find((m) => m.pgPort === endpoint.primaryPort);
    if (!current || !(await isPrimary(current))) {
      for (const m of members) {
        if (m === current || stopped) continue;
        if (await isPrimary(m)) {
          const from = endpoint.primaryPort;
          const closedConnections = endpoint.repoint(m.pgPort);
          onRepoint({ from, to: m.pgPort, member: m.name, closedConnections });
          break;
        }
      }
    }
    if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
  };
  void tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
