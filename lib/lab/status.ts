/** labStatus: what of a lab is running, checked by PID (/proc) and by asking the daemon. Changes nothing. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { postmasterPid } from '../adapters/postgres/cluster.ts';
import { isProcessUnder } from '../util/proc.ts';
import { labAzuriteStatus, labAzuriteView } from './azurite.ts';
import { requestJson } from './daemon/http-json.ts';
import { OWNER, TEMPLATE_LABELS } from './daemon/supervisor.ts';
import { patroniComponents } from './patroni/processes.ts';
import { readLabConfig } from './patroni/status.ts';
import { labPaths } from './paths.ts';
import { databaseStatus, LAB_DB, nodeFacts } from './postgres/status.ts';
import { readDaemonState } from './state.ts';
import type { DaemonStatus, LabFacts, LabInfo, LabStatus, ReplicaView } from './types.ts';

export async function collectFacts(dir: string): Promise<LabFacts> {
  const p = labPaths(dir);
  const [config, daemon, azurite] = await Promise.all([readLabConfig(p.config), readDaemonState(p.daemonState), labAzuriteStatus(dir)]);
  const nodes = config ? await nodeFacts(dir, config) : [];
  const primary = nodes.find((n) => n.role === 'primary');
  const pgPid = primary ? (primary.pid ?? (await postmasterPid(primary.dataDir))) : null;
  const pgAlive = primary?.alive ?? false;
  const daemonAlive = daemon !== null && (await isProcessUnder(daemon.pid, p.dir));
  let live: DaemonStatus | null = null;
  if (daemonAlive)
    live = await requestJson<DaemonStatus>(`http://127.0.0.1:${daemon!.ports.control}/status`, { timeoutMs: 2000 }).catch(() => null);
  const replicaPids: { name: string; pid: number }[] = [];
  for (const r of daemon?.replicas ?? []) if (await isProcessUnder(r.pid, p.dir)) replicaPids.push({ name: r.name, pid: r.pid });
  return { config, nodes, daemon, daemonAlive, live, pgPid, pgAlive, replicaPids, azurite };
}

export function infoOf(dir: string, f: LabFacts, alreadyRunning: boolean): LabInfo | null {
  const p = labPaths(dir);
  if (!f.config || !f.daemon || !f.live || f.pgPid === null) return null;
  return {
    dir: p.dir,
    serviceUrl: `http://127.0.0.1:${f.live.front.port}`,
    controlUrl: `http://127.0.0.1:${f.daemon.ports.control}`,
    db: {
      host: '127.0.0.1',
      port: f.live.db.primaryPort,
      endpointPort: f.live.db.endpointPort,
      database: LAB_DB.database,
      user: LAB_DB.user,
      superuser: LAB_DB.superuser,
      socketDir: p.socketDir,
      dataDir: p.node(f.config.primary).data,
      replication: f.config.replication ?? 'async',
      nodes: f.nodes.map(({ alive: _alive, ...n }) => n),
      provider: f.config.provider ?? 'pg-promote',
      ...(f.config.patroni ? { patroni: f.config.patroni } : {}),
    },
    replicas: f.live.desired,
    pids: { daemon: f.daemon.pid, postgres: f.pgPid },
    azurite: f.azurite.up && f.azurite.azurite ? labAzuriteView(f.azurite.azurite) : null,
    alreadyRunning,
  };
}

export async function labStatus(options: { dir: string }): Promise<LabStatus> {
  const dir = resolve(options.dir);
  const empty: LabStatus = {
    dir,
    up: false,
    stale: false,
    info: null,
    components: [],
    replicas: [],
    desired: 0,
    database: null,
    problems: [],
  };
  if (!existsSync(dir)) return empty;
  const f = await collectFacts(dir);
  if (!f.config && !f.daemon && !f.azurite.alive) return empty;
  const problems: string[] = [];
  if (f.config && !f.pgAlive) problems.push(f.pgPid ? `PostgreSQL pid ${f.pgPid} is not running` : 'PostgreSQL is not running');
  if (f.daemon && !f.daemonAlive) problems.push(`daemon pid ${f.daemon.pid} is gone (or its PID now belongs to another process)`);
  if (f.daemonAlive && !f.live) problems.push('daemon is alive but its control API does not answer');
  if (!f.daemonAlive && f.replicaPids.length > 0) problems.push(`${f.replicaPids.length} replica(s) running without their daemon`);
  for (const n of f.nodes)
    if (n.role === 'standby' && !n.alive) problems.push(`standby ${n.name} (PostgreSQL on port ${n.port}) is not running`);
  if (f.azurite.azurite && !f.azurite.up)
    problems.push(
      `Azurite (pid ${f.azurite.azurite.pid}, port ${f.azurite.azurite.port}) ${f.azurite.alive ? 'does not answer' : 'is not running'}`,
    );
  const up = f.pgAlive && f.live !== null;
  const database = f.config ? await databaseStatus(f.config, f.nodes) : null;
  for (const n of database?.nodes ?? []) {
    if (n.role === 'standby' && n.alive && n.streaming === false)
      problems.push(`standby ${n.name} runs but does not stream from ${f.config!.primary}`);
    if (n.role === 'primary' && n.inRecovery === true) problems.push(`${n.name} is recorded as primary but is in recovery`);
  }
  const patroniParts = f.config ? await patroniComponents(dir, f.config) : [];
  for (const c of patroniParts) if (!c.alive) problems.push(`${c.name}${c.pid ? ` pid ${c.pid}` : ''} (port ${c.port}) is not running`);
  const d = f.daemon;
  const replicas: ReplicaView[] =
    f.live?.replicas ??
    f.replicaPids.map((r) => ({
      name: r.name,
      pid: r.pid,
      labels: { ...TEMPLATE_LABELS },
      ready: false,
      startedAt: '',
      owner: OWNER,
      port: null,
    }));
  return {
    dir,
    up,
    // Anything recorded as running but not all of it answering is a leftover of a crash.
    stale: !up && (f.nodes.some((n) => n.alive) || f.daemon !== null || f.replicaPids.length > 0 || f.azurite.alive),
    info: up ? infoOf(dir, f, true) : null,
    components: [
      {
        name: 'postgres',
        pid: f.pgPid,
        port: f.live?.db.primaryPort ?? (f.config ? (f.config.nodes[f.config.primary]?.port ?? null) : null),
        alive: f.pgAlive,
      },
      ...f.nodes
        .filter((n) => n.role === 'standby')
        .map((n) => ({ name: 'postgres-standby' as const, pid: n.pid ?? null, port: n.port, alive: n.alive })),
      { name: 'daemon', pid: d?.pid ?? null, port: null, alive: f.daemonAlive },
      { name: 'control', pid: d?.pid ?? null, port: d?.ports.control ?? null, alive: f.live !== null },
      { name: 'front', pid: d?.pid ?? null, port: d?.ports.front ?? null, alive: f.live !== null && !f.live.front.paused },
      { name: 'db-endpoint', pid: d?.pid ?? null, port: d?.ports.dbEndpoint ?? null, alive: f.live !== null },
      ...patroniParts,
      ...(f.azurite.azurite
        ? [{ name: 'azurite' as const, pid: f.azurite.azurite.pid, port: f.azurite.azurite.port, alive: f.azurite.up }]
        : []),
    ],
    replicas,
    desired: f.live?.desired ?? f.config?.replicas ?? 0,
    database: database ?? null,
    problems,
  };
}
