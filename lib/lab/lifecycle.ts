/** labUp and labDown: start and stop a lab by PID, idempotently, and clean up after a crashed harness. */
import { warmService } from './warm.ts';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ensureRoleAndDatabase, giveToServerUser, initCluster, postmasterPid, readNodeConf, socketPathProblem, startCluster, stopCluster, writeNodeConf,
} from '../adapters/postgres/cluster.ts';
import { isProcessUnder, signal, terminate, waitGone } from '../adapters/postgres/proc.ts';
import { UserError } from '../errors.ts';
import { getDaemonStatus, scaleReplicas } from './client.ts';
import { withLabLock } from './lock.ts';
import { childEnv, defaultLabDir, entryArgv, labPaths, type LabPaths } from './paths.ts';
import { freeStablePort, portIsFree } from './ports.ts';
import { assertServerCanReach } from './reach.ts';
import { readDaemonState, removeFile, writeJsonAtomic } from './state.ts';
import { collectFacts, infoOf, LAB_DB, type LabFacts } from './status.ts';
import type { LabConfig, LabDownResult, LabInfo } from './types.ts';

export interface LabUpOptions {
  dir?: string;
  replicas?: number;
  /** Budget for the whole start, PostgreSQL init included. */
  timeoutMs?: number;
  /** Called as each start phase ends, with ms since labUp was called: for progress lines and start-time reports. */
  onPhase?: (phase: string, elapsedMs: number) => void;
}

const FIRST_NODE = 'n1';

async function tail(path: string, lines = 15): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Brings the lab up: PostgreSQL (initialised on first use), then the daemon, and returns once the front
 * answers GET /orders with 200 and `replicas` replicas are ready. A lab already up is left running and
 * reported with `alreadyRunning: true` (rescaled if `replicas` differs).
 */
export async function labUp(options: LabUpOptions = {}): Promise<LabInfo> {
  const dir = resolve(options.dir ?? defaultLabDir());
  const replicas = options.replicas ?? 3;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 64) {
    throw new UserError(`replicas must be an integer 1-64, got ${replicas}`, { untouched: 'nothing' });
  }
  const t0 = performance.now();
  const deadline = t0 + (options.timeoutMs ?? 60_000);
  const phase = (name: string) => options.onPhase?.(name, performance.now() - t0);
  const p = labPaths(dir);
  const socketProblem = socketPathProblem(p.socketDir);
  if (socketProblem) throw new UserError(`lab directory ${dir}: ${socketProblem}`, { untouched: 'nothing', next: 'set DRILL_LAB_DIR to a shorter path' });
  await assertServerCanReach(dir);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return withLabLock(p.lock, async () => {
    const f = await collectFacts(dir);
    if (f.pgAlive && f.live) {
      const info = infoOf(dir, f, true)!;
      if (f.live.desired !== replicas) {
        await scaleReplicas(info.controlUrl, replicas);
        // lab.json holds the declared count a rollback (ensureDesired) restores.
        if (f.config) await writeJsonAtomic(p.config, { ...f.config, replicas });
      }
      await waitServing(p, info, replicas, deadline);
      return { ...info, replicas };
    }
    let pgStartedHere: string | null = null;
    try {
      // Leftovers of a crash (dead daemon, orphan replicas) go first; a healthy PostgreSQL is kept.
      await stopDaemonAndReplicas(dir, f);
      await removeFile(p.daemonState);
      await mkdir(p.logs, { recursive: true, mode: 0o755 });
      const plan = await planPostgres(p, f, replicas);
      // The daemon and its replicas boot (about a second of node start-up) while PostgreSQL initialises and
      // starts: replicas retry the database until it answers, and only count as ready once it does.
      const [pg, daemon] = await Promise.allSettled([
        bringUpPostgres(p, plan, f.pgAlive, () => (pgStartedHere = plan.node), phase),
        spawnDaemon(p, deadline).then((pid) => (phase('daemon ready'), pid)),
      ]);
      if (pg.status === 'rejected') throw pg.reason;
      if (daemon.status === 'rejected') throw daemon.reason;
      const info = infoOf(dir, await collectFacts(dir), false);
      if (!info) throw new Error(`lab daemon ${daemon.value} started but its state is incomplete (${p.daemonState})`);
      await waitServing(p, info, replicas, deadline);
      phase('serving');
      const warm = await warmService(info.serviceUrl, { maxMs: Math.max(0, Math.min(8000, deadline - performance.now())) });
      phase(`warm after ${warm.requests} requests (p95 ${warm.lastP95Ms.toFixed(1)} ms)`);
      return info;
    } catch (e) {
      // Take down what this call started, so a failed start leaves no half lab behind.
      await stopDaemonAndReplicas(dir, await collectFacts(dir)).catch(() => {});
      if (pgStartedHere) await stopCluster(p.node(pgStartedHere).data, 'fast').catch(() => {});
      throw e;
    }
  });
}

interface PgPlan {
  node: string;
  port: number;
  needsInit: boolean;
}

/** Decides the primary's port before anything starts (the daemon needs it) and records it in lab.json. */
async function planPostgres(p: LabPaths, f: LabFacts, replicas: number): Promise<PgPlan> {
  const node = f.config?.primary ?? FIRST_NODE;
  const data = p.node(node).data;
  const needsInit = !existsSync(join(data, 'PG_VERSION'));
  let port = needsInit ? null : ((await readNodeConf(data))?.port ?? f.config?.nodes[node]?.port ?? null);
  if (port === null || (!f.pgAlive && !(await portIsFree(port)))) port = await freeStablePort();
  const config: LabConfig = {
    version: 1,
    createdAt: f.config?.createdAt ?? new Date().toISOString(),
    replicas,
    primary: node,
    nodes: { ...f.config?.nodes, [node]: { port } },
  };
  await writeJsonAtomic(p.config, config);
  return { node, port, needsInit };
}

async function bringUpPostgres(p: LabPaths, plan: PgPlan, running: boolean, started: () => void, phase: (name: string) => void): Promise<void> {
  const node = p.node(plan.node);
  if (plan.needsInit) {
    await mkdir(join(p.pg, plan.node), { recursive: true, mode: 0o755 });
    for (const d of [p.pg, join(p.pg, plan.node)]) await giveToServerUser(d);
    // A data dir without PG_VERSION is an initdb that died half way: start over.
    await rm(node.data, { recursive: true, force: true });
    await initCluster(node.data, { port: plan.port, socketDir: p.socketDir });
    phase('postgres initialised');
  }
  if (!running) {
    // Re-applied on every start: the port may have changed, and a copied config must not keep another node's.
    await writeNodeConf(node.data, { port: plan.port, socketDir: p.socketDir });
    await startCluster(node.data, { logFile: node.log });
    started();
    phase('postgres started');
  }
  await ensureRoleAndDatabase({ host: '127.0.0.1', port: plan.port, user: LAB_DB.superuser, database: 'postgres' }, { role: LAB_DB.user, database: LAB_DB.database });
}

/**
 * Detached, in its own process group and session: the daemon outlives the command that started it and
 * does not get the terminal's Ctrl-C. It reports its ports once over IPC; the channel is then closed.
 */
async function spawnDaemon(p: LabPaths, deadline: number): Promise<number> {
  const out = openSync(p.daemonLog, 'a');
  const child = spawn(process.execPath, [...entryArgv('daemon.ts'), '--lab', p.dir], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    cwd: p.dir,
    env: childEnv(),
  });
  closeSync(out);
  return new Promise<number>((resolvePid, reject) => {
    const fail = async (why: string) => {
      clearTimeout(timer);
      if (child.pid) signal(child.pid, 'SIGKILL');
      reject(new Error(`lab daemon ${why}\n--- ${p.daemonLog} (tail) ---\n${await tail(p.daemonLog)}`));
    };
    const timer = setTimeout(() => void fail('did not report ready in time'), Math.max(1000, deadline - performance.now()));
    child.once('error', (e) => void fail(`could not start: ${e.message}`));
    child.once('exit', (code, sig) => void fail(`exited (${sig ?? `code ${code}`}) before it was ready`));
    child.on('message', (m: { type?: string }) => {
      if (m?.type !== 'ready') return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.disconnect();
      child.unref();
      resolvePid(child.pid!);
    });
  });
}

/** Ready replicas >= desired (long-polling the control API), then one real GET /orders through the front. */
async function waitServing(p: LabPaths, info: LabInfo, desired: number, deadline: number): Promise<void> {
  let version = -1;
  let last = '';
  while (performance.now() < deadline) {
    const waitMs = Math.min(1000, deadline - performance.now());
    const s = await getDaemonStatus(info.controlUrl, { after: version, waitMs });
    version = s.version;
    last = `${s.ready}/${s.desired} replicas ready`;
    if (s.ready < desired) continue;
    const code = await fetch(`${info.serviceUrl}/orders?limit=1`, { signal: AbortSignal.timeout(2000) }).then(
      async (r) => (await r.arrayBuffer(), r.status),
      (e: Error) => e.message,
    );
    if (code === 200) return;
    last = `front answered GET /orders with ${code}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`lab in ${p.dir} not serving in time: ${last}\n--- ${p.replicasLog} (tail) ---\n${await tail(p.replicasLog)}`);
}

/** Stops the daemon (which stops its replicas), then any replica it left behind; by verified PID only. */
async function stopDaemonAndReplicas(dir: string, f: LabFacts): Promise<{ name: string; pid: number }[]> {
  const stopped: { name: string; pid: number }[] = [];
  if (f.daemon && f.daemonAlive) {
    signal(f.daemon.pid, 'SIGTERM');
    // The daemon gives its replicas 3 s before SIGKILL; allow for that and a little more.
    if (!(await waitGone(f.daemon.pid, 6000))) {
      signal(f.daemon.pid, 'SIGKILL');
      await waitGone(f.daemon.pid, 2000);
    }
    stopped.push({ name: 'daemon', pid: f.daemon.pid });
  }
  // Re-read: the daemon may have started replacements after `f` was taken, and recorded them before dying.
  const latest = (await readDaemonState(labPaths(dir).daemonState))?.replicas ?? [];
  const candidates = new Map([...f.replicaPids, ...latest].map((r) => [r.pid, r.name]));
  await Promise.all(
    [...candidates].map(async ([pid, name]) => {
      if (!(await isProcessUnder(pid, dir))) return;
      await terminate(pid, 2000);
      stopped.push({ name, pid });
    }),
  );
  return stopped;
}

/**
 * Stops everything of the lab in `dir` by PID: daemon, replicas, PostgreSQL (pg_ctl fast). Works on the
 * leftovers of a crashed harness; a PID now used by another process is left alone. Data is kept unless `purge`.
 */
export async function labDown(options: { dir?: string; purge?: boolean } = {}): Promise<LabDownResult> {
  const dir = resolve(options.dir ?? defaultLabDir());
  const p = labPaths(dir);
  if (!existsSync(p.config) && !existsSync(p.daemonState)) return { dir, stopped: [], wasStale: false };
  const result = await withLabLock(p.lock, async () => {
    const f = await collectFacts(dir);
    const wasStale = !(f.pgAlive && f.live) && (f.pgAlive || f.daemon !== null || f.replicaPids.length > 0);
    const stopped = await stopDaemonAndReplicas(dir, f);
    for (const name of Object.keys(f.config?.nodes ?? {})) {
      const data = p.node(name).data;
      const pid = await postmasterPid(data);
      if (pid === null || !(await isProcessUnder(pid, data))) continue;
      await stopCluster(data, 'fast');
      stopped.push({ name: `postgres:${name}`, pid });
    }
    await removeFile(p.daemonState);
    return { dir, stopped, wasStale };
  });
  if (options.purge) await rm(dir, { recursive: true, force: true });
  return result;
}
