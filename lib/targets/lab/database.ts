/**
 * The lab's PostgreSQL pair as a DatabaseAdapter: a pg-promote provider over its two nodes whose endpoint
 * repoint goes through the lab's control API and is recorded in lab.json, so `lab status`, `lab down`
 * and the next `lab up` know which node is primary after a failover.
 */
import { readFileSync } from 'node:fs';
import { crashCluster, isRunning, postmasterPid, stopCluster } from '../../adapters/postgres/cluster.ts';
import { PgPromoteProvider, type PgPromoteNode } from '../../adapters/postgres/failover/pg-promote.ts';
import type { PgNode } from '../../adapters/postgres/failover/types.ts';
import { childrenOf } from '../../util/proc.ts';
import type { DatabaseAdapter, DbNodeView } from '../../adapters/types.ts';
import { setDbPrimary } from '../../lab/daemon/client.ts';
import { takesWrite } from '../../adapters/postgres/standby.ts';
import { createPatroniLabDatabase } from './patroni-database.ts';
import { labPaths } from '../../lab/paths.ts';
import { readConfig } from '../../lab/state.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { LAB_DB, nodeFacts } from '../../lab/postgres/status.ts';
import type { LabConfig, LabDbNode, LabInfo, LabReplication } from '../../lab/types.ts';

/** A node's port as lab.json has it now, read when asked: a live restore moves the primary to its restored copy's port. */
function portNow(configPath: string, name: string, fallback: number): number {
  try {
    const port = (JSON.parse(readFileSync(configPath, 'utf8')) as LabConfig).nodes[name]?.port;
    return typeof port === 'number' ? port : fallback;
  } catch {
    return fallback;
  }
}

function providerNodes(dir: string, nodes: Pick<LabDbNode, 'name' | 'port' | 'role'>[]): PgPromoteNode[] {
  const p = labPaths(dir);
  return nodes.map((n) => ({
    name: n.name,
    host: '127.0.0.1',
    get port() {
      return portNow(p.config, n.name, n.port);
    },
    role: n.role,
    dataDir: p.node(n.name).data,
    logFile: p.node(n.name).log,
    socketDir: p.socketDir,
  }));
}

/**
 * Records the new primary in lab.json first (the truth about roles, read by status, down and up), then
 * repoints the endpoint; a crash in between leaves lab.json right and the next `lab up` points the endpoint.
 */
export async function repointLab(dir: string, controlUrl: string, node: PgNode): Promise<void> {
  const p = labPaths(dir);
  const config = await readConfig(p.config);
  if (!config) throw new Error(`${p.config} is missing: the lab is not set up`);
  if (!config.nodes[node.name])
    throw new Error(`${node.name} is not a node of the lab in ${dir} (${Object.keys(config.nodes).join(', ')})`);
  const next: LabConfig = { ...config, primary: node.name, nodes: { ...config.nodes, [node.name]: { port: node.port } } };
  writeJsonAtomic(p.config, next);
  await setDbPrimary(controlUrl, node.port);
}

/** A node's port in lab.json, where it now listens: a live restore starts the standby from its copy on a port of its own. */
export async function recordNodePort(dir: string, name: string, port: number): Promise<void> {
  const config = await readConfig(labPaths(dir).config);
  if (!config?.nodes[name] || config.nodes[name].port === port) return;
  writeJsonAtomic(labPaths(dir).config, { ...config, nodes: { ...config.nodes, [name]: { port } } });
}

export function createLabProvider(
  dir: string,
  options: { controlUrl: string; endpointPort: number; replication: LabReplication; nodes: Pick<LabDbNode, 'name' | 'port' | 'role'>[] },
): PgPromoteProvider {
  return new PgPromoteProvider({
    nodes: providerNodes(dir, options.nodes),
    endpoint: { host: '127.0.0.1', port: options.endpointPort },
    user: LAB_DB.superuser,
    database: 'postgres',
    replication: options.replication,
    repoint: (node) => repointLab(dir, options.controlUrl, node),
  });
}

export function createLabDatabase(info: LabInfo): DatabaseAdapter {
  if (info.db.provider === 'patroni') return createPatroniLabDatabase(info);
  const provider = createLabProvider(info.dir, {
    controlUrl: info.controlUrl,
    endpointPort: info.db.endpointPort,
    replication: info.db.replication,
    nodes: info.db.nodes,
  });
  const dataDirOf = (node: PgNode) => {
    const known = provider.nodes.find((n) => n.name === node.name);
    if (!known?.dataDir) throw new Error(`${node.name} is not a node of the lab in ${info.dir}`);
    return known.dataDir;
  };
  return {
    where: `lab:${info.dir} (pg-promote, ${info.db.replication})`,
    provider,
    replication: info.db.replication,
    endpoint: { host: '127.0.0.1', port: info.db.endpointPort, database: info.db.database, user: info.db.user },
    admin: { user: info.db.superuser, database: info.db.database },
    async nodes(): Promise<DbNodeView[]> {
      const config = await readConfig(labPaths(info.dir).config);
      if (!config) return [];
      return (await nodeFacts(info.dir, config)).map((n) => ({
        name: n.name,
        host: n.host,
        port: n.port,
        dataDir: n.dataDir,
        role: n.role,
        pid: n.pid,
        logFile: n.log,
      }));
    },
    async crash(node, how) {
      const dataDir = dataDirOf(node);
      if (how === 'kill') {
        const r = await crashCluster(dataDir);
        if (!r) throw new Error(`${node.name} (${dataDir}) is not running: nothing to kill`);
        return r;
      }
      const pid = await postmasterPid(dataDir);
      if (pid === null || !(await isRunning(dataDir))) throw new Error(`${node.name} (${dataDir}) is not running: nothing to stop`);
      const children = await childrenOf(pid);
      await stopCluster(dataDir, 'immediate');
      return { pid, children };
    },
    restartAsPrimary: (node, options) => provider.restartAsPrimary(node, options),
    repointEndpoint: async (node) => {
      await repointLab(info.dir, info.controlUrl, node);
      return `pointed the lab endpoint at ${node.name} (port ${node.port})`;
    },
    takesWrites: () =>
      takesWrite(
        { host: '127.0.0.1', port: info.db.endpointPort, user: info.db.superuser, database: info.db.database },
        `the lab endpoint 127.0.0.1:${info.db.endpointPort}`,
      ),
  };
}
