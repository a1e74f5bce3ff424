/** The lab's PostgreSQL pair as status sees it: each node by PID, and what each says of its replication. */
import { isRunning, postmasterPid } from '../../adapters/postgres/cluster.ts';
import { PgPromoteProvider } from '../../adapters/postgres/failover/pg-promote.ts';
import { walSenders } from '../../adapters/postgres/standby.ts';
import { childrenOf, cmdlineOf, stateLetter } from '../../util/proc.ts';
import { patroniStatus } from '../patroni/status.ts';
import { labPaths } from '../paths.ts';
import type { LabConfig, LabDatabaseStatus, LabDbNode, LabWalSender } from '../types.ts';

export const LAB_DB = { database: 'orders', user: 'drill', superuser: 'postgres' } as const;

/** The nodes of lab.json, the primary first; a PID counts only while it is a postmaster of that data dir. */
export async function nodeFacts(dir: string, config: LabConfig): Promise<(LabDbNode & { alive: boolean })[]> {
  const p = labPaths(dir);
  const names = Object.keys(config.nodes).sort((a, b) => Number(b === config.primary) - Number(a === config.primary));
  return Promise.all(
    names.map(async (name) => {
      const { data, log: pgLog, patroniLog } = p.node(name);
      // Under Patroni, PostgreSQL's output goes to its member's log: point status and errors where the lines are.
      const log = config.provider === 'patroni' ? patroniLog : pgLog;
      const pid = await postmasterPid(data);
      const alive = pid !== null && (await isRunning(data));
      return {
        name,
        role: name === config.primary ? 'primary' : 'standby',
        host: '127.0.0.1',
        port: config.nodes[name]!.port,
        dataDir: data,
        log,
        pid: alive ? pid : null,
        alive,
      } as const;
    }),
  );
}

/** Asks each running node what it is and how its replication goes; read-only, 1 s per node at most. */
export async function databaseStatus(config: LabConfig, nodes: (LabDbNode & { alive: boolean })[]): Promise<LabDatabaseStatus> {
  const [seen, provider] = await Promise.all([queryNodes(nodes), patroniStatus(config)]);
  // The node that says it takes writes, whatever lab.json calls it: its walsenders are the ones that feed the standby.
  const writer = nodes.find((n) => n.alive && seen.get(n.name)?.inRecovery === false);
  return {
    replication: config.replication ?? 'async',
    ...provider,
    primary: config.primary,
    walsenders: writer?.pid ? await walSendersOf(writer.pid, writer.port) : [],
    nodes: nodes.map((n) => {
      const q = seen.get(n.name);
      return {
        ...n,
        inRecovery: q?.inRecovery ?? null,
        streaming: n.role === 'standby' ? (q?.streaming ?? false) : null,
        syncState: q?.syncState ?? null,
        replayLagMs: q?.replayLagMs ?? null,
        lagBytes: q?.lagBytes ?? null,
      };
    }),
  };
}

export interface NodeReplication {
  inRecovery: boolean | null;
  streaming: boolean | null;
  syncState: string | null;
  replayLagMs: number | null;
  lagBytes: number | null;
}

/** What each running node says about itself and its replication (read-only), by node name. */
export async function queryNodes(nodes: Pick<LabDbNode, 'name' | 'port' | 'role' | 'dataDir'>[]): Promise<Map<string, NodeReplication>> {
  const out = new Map<string, NodeReplication>();
  if (nodes.length < 2) return out;
  const provider = new PgPromoteProvider({
    nodes: nodes.map((n) => ({ name: n.name, host: '127.0.0.1', port: n.port, role: n.role, dataDir: n.dataDir })),
    endpoint: { host: '127.0.0.1', port: 0 },
    user: LAB_DB.superuser,
    database: 'postgres',
    replication: 'async',
    repoint: async () => {
      throw new Error('status is read-only');
    },
  });
  const topo = await provider.topology();
  if (topo.primary) out.set(topo.primary.name, { inRecovery: false, streaming: null, syncState: null, replayLagMs: null, lagBytes: null });
  for (const s of topo.standbys) {
    out.set(s.name, {
      inRecovery: s.role === 'standby' ? true : null,
      streaming: s.replication.streaming,
      syncState: s.replication.mode === 'unknown' ? null : s.replication.mode,
      replayLagMs: s.replication.replayLagMs,
      lagBytes: s.replication.lagBytes,
    });
  }
  return out;
}

/**
 * The walsenders of the postmaster `pid`, found by /proc (a SIGSTOPped walsender still shows `streaming` in
 * pg_stat_replication, and the standby's receiver still says it streams: only its process state tells).
 * Which standby each feeds comes from pg_stat_replication when the node answers.
 */
export async function walSendersOf(pid: number, port: number): Promise<LabWalSender[]> {
  const out: LabWalSender[] = [];
  for (const child of await childrenOf(pid)) {
    const title = (await cmdlineOf(child))?.[0] ?? '';
    if (!title.includes('walsender')) continue;
    const state = await stateLetter(child);
    if (state === null || state === 'Z' || state === 'X') continue;
    out.push({ pid: child, to: null, stopped: state === 'T' || state === 't' });
  }
  if (out.length === 0) return out;
  const named = await walSenders({ host: '127.0.0.1', port, user: LAB_DB.superuser, database: 'postgres' }).catch(() => []);
  for (const w of out) w.to = named.find((n) => n.pid === w.pid)?.applicationName ?? null;
  return out;
}
