/** What the lab's Patroni cluster says of itself (GET /cluster): who leads, and its view for `lab status`. */
import { callApi, type ClusterDoc } from '../../adapters/postgres/failover/patroni-api.ts';
import { PatroniProvider } from '../../adapters/postgres/failover/patroni.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { labPaths } from '../paths.ts';
import { readConfig } from '../state.ts';
import type { LabConfig, LabDatabaseStatus, PatroniLabConfig } from '../types.ts';
import { apiUrlOf, SUPERUSER } from './config.ts';

async function getCluster(cfg: PatroniLabConfig, timeoutMs = 1000): Promise<ClusterDoc | null> {
  for (const name of Object.keys(cfg.members)) {
    const r = await callApi(apiUrlOf(cfg, name), '/cluster', { timeoutMs }).catch(() => null);
    const doc = r?.status === 200 ? (r.json as ClusterDoc | null) : null;
    if (doc && Array.isArray(doc.members)) return doc;
  }
  return null;
}

/** The member that holds the leader key now, or null when no member answers or none leads. */
export async function patroniLeader(cfg: PatroniLabConfig, timeoutMs = 1000): Promise<string | null> {
  const doc = await getCluster(cfg, timeoutMs);
  return doc?.members.find((m) => m.role === 'leader')?.name ?? null;
}

/** lab.json with `primary` set to Patroni's leader when a member answers: on a Patroni lab the DCS, not the file, says who leads. */
export async function readLabConfig(path: string): Promise<LabConfig | null> {
  const cfg = await readConfig(path);
  if (cfg?.provider !== 'patroni' || !cfg.patroni) return cfg;
  const leader = await patroniLeader(cfg.patroni);
  return leader && cfg.nodes[leader] ? { ...cfg, primary: leader } : cfg;
}

/** Records the leader in lab.json (a cache for when Patroni does not answer, and for the next `lab up`). */
export async function recordPatroniLeader(dir: string, leader: string): Promise<void> {
  const p = labPaths(dir);
  const cfg = await readConfig(p.config);
  if (cfg && cfg.primary !== leader && cfg.nodes[leader]) writeJsonAtomic(p.config, { ...cfg, primary: leader });
}

export function patroniProvider(cfg: PatroniLabConfig): PatroniProvider {
  return new PatroniProvider({
    apiUrls: Object.keys(cfg.members).map((n) => apiUrlOf(cfg, n)),
    pg: { user: SUPERUSER, database: 'postgres' },
    env: {},
  });
}

/** `lab status`: the provider's own view (GET /cluster), for the database section. */
export async function patroniStatus(cfg: LabConfig): Promise<Pick<LabDatabaseStatus, 'provider' | 'patroni'>> {
  if (cfg.provider !== 'patroni' || !cfg.patroni) return { provider: 'pg-promote' };
  const pc = cfg.patroni;
  const topo = await patroniProvider(pc)
    .topology()
    .catch(() => null);
  return {
    provider: 'patroni',
    patroni: {
      scope: pc.scope,
      ttl: pc.ttl,
      loopWait: pc.loopWait,
      retryTimeout: pc.retryTimeout,
      leader: topo?.members.find((m) => m.role === 'leader')?.name ?? null,
      members: topo?.members ?? null,
    },
  };
}
