/**
 * The pg-promote lab's PostgreSQL pair: ports planned and recorded in lab.json, the primary initialised and
 * started, the standby cloned or restarted until it streams. Patroni brings up its own pair (patroni/processes.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensureRoleAndDatabase,
  giveToServerUser,
  initCluster,
  readNodeConf,
  removeDataDir,
  startCluster,
  stopCluster,
  writeNodeConf,
} from '../../adapters/postgres/cluster.ts';
import {
  cloneStandby,
  configureStandby,
  ensureSlot,
  isStandbyDir,
  setSyncStandby,
  waitStreaming,
  withClient,
} from '../../adapters/postgres/standby.ts';
import { ensureArchiveSlot } from '../../adapters/postgres/backup/wal.ts';
import { UserError } from '../../errors.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import type { LabPaths } from '../paths.ts';
import { freeStablePort, portIsFree } from '../ports.ts';
import type { LabConfig, LabFacts, LabReplication } from '../types.ts';
import { LAB_DB } from './status.ts';

const FIRST_NODE = 'n1';
const SECOND_NODE = 'n2';

export interface PgPlan {
  primary: string;
  standby: string;
  ports: Record<string, number>;
  replication: LabReplication;
  needsInit: boolean;
}

/**
 * Decides both nodes' ports before anything starts (the daemon needs the primary's) and records them in
 * lab.json. The primary is whichever node lab.json names: after a failover that is the promoted one.
 */
export async function planPostgres(p: LabPaths, f: LabFacts, replicas: number, replication: LabReplication): Promise<PgPlan> {
  const primary = f.config?.primary ?? FIRST_NODE;
  const standby = Object.keys(f.config?.nodes ?? {}).find((n) => n !== primary) ?? (primary === FIRST_NODE ? SECOND_NODE : FIRST_NODE);
  const needsInit = !existsSync(join(p.node(primary).data, 'PG_VERSION'));
  const ports: Record<string, number> = {};
  for (const node of [primary, standby]) {
    const data = p.node(node).data;
    const alive = f.nodes.find((n) => n.name === node)?.alive ?? false;
    let port = existsSync(join(data, 'PG_VERSION'))
      ? ((await readNodeConf(data))?.port ?? f.config?.nodes[node]?.port ?? null)
      : (f.config?.nodes[node]?.port ?? null);
    if (port === null || Object.values(ports).includes(port) || (!alive && !(await portIsFree(port)))) port = await freeStablePort();
    ports[node] = port;
  }
  const config: LabConfig = {
    version: 1,
    createdAt: f.config?.createdAt ?? new Date().toISOString(),
    replicas,
    primary,
    nodes: { [primary]: { port: ports[primary]! }, [standby]: { port: ports[standby]! } },
    replication,
  };
  writeJsonAtomic(p.config, config);
  return { primary, standby, ports, replication, needsInit };
}

export const superConn = (port: number) => ({ host: '127.0.0.1', port, user: LAB_DB.superuser, database: 'postgres' });

/** Resolves once the primary serves the lab's role and database, with the standby's bring-up still under way. */
export async function bringUpPostgres(
  p: LabPaths,
  plan: PgPlan,
  f: LabFacts,
  started: (node: string) => void,
  phase: (name: string) => void,
): Promise<{ standby: Promise<Error | null> }> {
  const node = p.node(plan.primary);
  const port = plan.ports[plan.primary]!;
  if (plan.needsInit) {
    await mkdir(join(p.pg, plan.primary), { recursive: true, mode: 0o755 });
    for (const d of [p.pg, join(p.pg, plan.primary)]) await giveToServerUser(d);
    // A data dir without PG_VERSION is an initdb that died half way: start over.
    await removeDataDir(node.data);
    await initCluster(node.data, { port, socketDir: p.socketDir });
    phase('postgres initialised');
  }
  const running = f.nodes.find((n) => n.name === plan.primary)?.alive ?? false;
  if (!running) {
    // A primary that was a standby once keeps a standby.signal only if it was never promoted; a
    // promoted node has none. One that still has it here is not the primary lab.json thinks it is.
    if (existsSync(join(node.data, 'standby.signal'))) {
      throw new UserError(`lab.json names ${plan.primary} as the primary, but its data directory ${node.data} is a standby's`, {
        untouched: 'PostgreSQL was not started',
        next: `run \`drill lab down\` and remove ${p.dir} to start a fresh lab`,
      });
    }
    // Re-applied on every start: the port may have changed, and a copied config must not keep another node's.
    await writeNodeConf(node.data, { port, socketDir: p.socketDir });
    await startCluster(node.data, { logFile: node.log });
    started(plan.primary);
    phase('postgres started');
    // A sync primary whose standby is not back yet would hang every commit until it is: async until the
    // standby streams again, then sync (ensureStandby).
    if (plan.replication === 'sync') await setSyncStandby(superConn(port), null);
  }
  // The archive's slot before the standby's base backup: pg_backup_stop switches to a new WAL segment, and the
  // archiver's pg_receivewal starts from the slot, so a slot made after that switch leaves the segment before it
  // unarchived (a failed-back primary's first segment on its new timeline was, and the archiver named the hole).
  await withClient(superConn(port), (c) => ensureArchiveSlot(c));
  const standbyAlive = f.nodes.find((n) => n.name === plan.standby)?.alive ?? false;
  // The base backup starts as soon as the primary accepts connections, alongside the role and database.
  const standby = ensureStandby(p, plan, standbyAlive, started, phase).then(
    () => null,
    (e: Error) => e,
  );
  try {
    await ensureRoleAndDatabase(superConn(port), { role: LAB_DB.user, database: LAB_DB.database });
    // A live restore runs pg_amcheck on its copy: with the extension in the backup (or its WAL), its
    // --install-missing finds it there and writes nothing into the restored database.
    for (const database of [LAB_DB.database, 'postgres'])
      await withClient({ ...superConn(port), database }, (c) => c.query('CREATE EXTENSION IF NOT EXISTS amcheck'));
  } catch (e) {
    await standby;
    throw e;
  }
  // Wrapped: an async function returning a promise would wait for it.
  return { standby };
}

/**
 * Makes `plan.standby` a streaming standby of the primary: kept when it already streams, restarted with
 * its own identity when it is a standby that is down, rebuilt by base backup otherwise (first start, or a
 * former primary that never rejoined). Then applies the replication mode.
 */
async function ensureStandby(
  p: LabPaths,
  plan: Pick<PgPlan, 'primary' | 'standby' | 'ports' | 'replication'>,
  alive: boolean,
  started: (node: string) => void,
  phase: (name: string) => void,
): Promise<void> {
  const primary = superConn(plan.ports[plan.primary]!);
  const node = p.node(plan.standby);
  const id = {
    name: plan.standby,
    port: plan.ports[plan.standby]!,
    socketDir: p.socketDir,
    primary: { host: '127.0.0.1', port: primary.port, user: primary.user },
  };
  const streaming = async (timeoutMs: number) =>
    waitStreaming(primary, plan.standby, { timeoutMs }).then(
      () => true,
      () => false,
    );
  let ok = alive && isStandbyDir(node.data) && (await streaming(alive ? 200 : 0));
  if (!ok && alive) await stopCluster(node.data, 'fast');
  if (!ok && isStandbyDir(node.data)) {
    await configureStandby(node.data, id);
    await ensureSlot(primary, plan.standby);
    const up = await startCluster(node.data, { logFile: node.log }).then(
      () => true,
      () => false,
    );
    if (up) started(plan.standby);
    ok = up && (await streaming(10_000));
    if (!ok) await stopCluster(node.data, 'immediate');
    else phase('standby started');
  }
  if (!ok) {
    await cloneStandby(primary, node.data, id);
    phase('standby base backup');
    await startCluster(node.data, { logFile: node.log });
    started(plan.standby);
    await waitStreaming(primary, plan.standby, { timeoutMs: 30_000 });
    phase('standby streaming');
  }
  await setSyncStandby(primary, plan.replication === 'sync' ? plan.standby : null);
}
