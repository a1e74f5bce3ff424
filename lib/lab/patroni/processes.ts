/**
 * The lab on Patroni: one etcd member and two Patroni members manage the lab's two PostgreSQL nodes, in the
 * lab directory, on loopback ports, as the postgres user when root. Patroni elects, promotes and rewinds;
 * the harness only starts, kills and stops processes, by PID, recorded in patroni.json. The DB endpoint
 * follows the leader by itself (follow.ts, the way HAProxy checks GET /primary).
 *
 * DCS timings are the lab's, not Patroni's defaults (ttl 30 s, loop_wait 10 s, retry_timeout 10 s, a
 * failover of 30-40 s): ttl 10 s, loop_wait 1 s, retry_timeout 4 s keep a drill to about ten seconds of
 * outage while leaving a loaded 2-core machine 4 s before a slow etcd or PostgreSQL demotes a healthy leader
 * (ttl >= loop_wait + 2 × retry_timeout, as Patroni requires).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensureRoleAndDatabase,
  giveToServerUser,
  isRoot,
  postmasterPid,
  serverUser,
  stopCluster,
} from '../../adapters/postgres/cluster.ts';
import { callApi } from '../../adapters/postgres/failover/patroni-api.ts';
import { childrenOf, isProcessUnder, signal, terminate, waitGone } from '../../util/proc.ts';
import { UserError } from '../../errors.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { tail } from '../log-tail.ts';
import { labPaths, type LabPaths } from '../paths.ts';
import { freeStablePort, portIsFree } from '../ports.ts';
import { readConfig, readJson, removeFile } from '../state.ts';
import type { LabComponent, LabConfig, LabFacts, LabProvider, LabReplication, PatroniLabConfig } from '../types.ts';
import {
  apiUrlOf,
  ETCD_BIN,
  etcdDir,
  memberConfig,
  NODES,
  PATRONI_BIN,
  PATRONI_LAB_TIMINGS,
  patroniLog,
  pidsFile,
  SUPERUSER,
  writeMemberConfig,
} from './config.ts';
import { patroniProvider, recordPatroniLeader } from './status.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverUserEnv } from '../../util/child-env.ts';

/** What runs, by PID: written before anything else happens after each spawn, so `lab down` finds it after a crash. */
interface PatroniPids {
  etcd: number | null;
  members: Record<string, number>;
}

async function readPids(p: LabPaths): Promise<PatroniPids> {
  return (await readJson<PatroniPids>(pidsFile(p)).catch(() => null)) ?? { etcd: null, members: {} };
}

/** One read-modify-write at a time: members start side by side, and each PID must land in the file. */
let recording: Promise<void> = Promise.resolve();
function recordPid(p: LabPaths, what: { etcd?: number; member?: [string, number] }): Promise<void> {
  const next = recording.then(async () => {
    const pids = await readPids(p);
    if (what.etcd !== undefined) pids.etcd = what.etcd;
    if (what.member) pids.members[what.member[0]] = what.member[1];
    writeJsonAtomic(pidsFile(p), pids);
  });
  recording = next.catch(() => {});
  return next;
}

function configOf(f: LabFacts): PatroniLabConfig | null {
  return f.config?.provider === 'patroni' ? (f.config.patroni ?? null) : null;
}

/** Patroni members and etcd of the lab that are alive, by recorded PID. */
async function liveProcesses(p: LabPaths): Promise<{ etcd: number | null; members: Record<string, number> }> {
  const pids = await readPids(p);
  const members: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids.members)) if (await isProcessUnder(pid, p.dir)) members[name] = pid;
  return { etcd: pids.etcd !== null && (await isProcessUnder(pids.etcd, p.dir)) ? pids.etcd : null, members };
}

/**
 * Before `lab up` with a provider other than the one lab.json records: a running lab is refused (its nodes
 * belong to the other way of failing over); a stopped one starts over, because a data directory Patroni
 * manages and one the harness manages are configured differently. Returns true when it started over.
 */
export async function switchLabProvider(dir: string, f: LabFacts, provider: LabProvider): Promise<boolean> {
  const was = f.config ? (f.config.provider ?? 'pg-promote') : null;
  if (was === null || was === provider) return false;
  const p = labPaths(dir);
  const live = await liveProcesses(p);
  const running =
    f.nodes.some((n) => n.alive) || f.daemonAlive || f.replicaPids.length > 0 || live.etcd !== null || Object.keys(live.members).length > 0;
  if (running) {
    throw new UserError(`the lab in ${dir} runs on ${was}, not ${provider}`, {
      untouched: 'the running lab: nothing was stopped or started',
      next: `run \`drill lab down\` first, then \`drill lab up --provider ${provider}\` (the lab starts over with a fresh database)`,
    });
  }
  await rm(p.pg, { recursive: true, force: true });
  await rm(etcdDir(p), { recursive: true, force: true });
  await removeFile(pidsFile(p));
  await removeFile(p.config);
  return true;
}

/** Ports of both nodes, their REST APIs and etcd: kept from lab.json while free, so a restarted lab keeps its addresses. */
export async function planPatroniLab(p: LabPaths, f: LabFacts, replicas: number, replication: LabReplication): Promise<LabConfig> {
  const prev = configOf(f);
  const taken = new Set<number>();
  const port = async (known: number | undefined): Promise<number> => {
    let chosen = known ?? null;
    if (chosen === null || taken.has(chosen) || !(await portIsFree(chosen))) chosen = await freeStablePort();
    while (taken.has(chosen)) chosen = await freeStablePort();
    taken.add(chosen);
    return chosen;
  };
  const live = await liveProcesses(p);
  const keep = async (known: number | undefined, alive: boolean) =>
    alive && known !== undefined ? (taken.add(known), known) : port(known);
  const nodes: LabConfig['nodes'] = {};
  const members: PatroniLabConfig['members'] = {};
  for (const name of NODES) {
    const alive = live.members[name] !== undefined;
    nodes[name] = { port: await keep(f.config?.nodes[name]?.port, alive || (f.nodes.find((n) => n.name === name)?.alive ?? false)) };
    members[name] = { apiPort: await keep(prev?.members[name]?.apiPort, alive) };
  }
  const etcd = {
    clientPort: await keep(prev?.etcd.clientPort, live.etcd !== null),
    peerPort: await keep(prev?.etcd.peerPort, live.etcd !== null),
  };
  const config: LabConfig = {
    version: 1,
    createdAt: f.config?.createdAt ?? new Date().toISOString(),
    replicas,
    primary: f.config?.primary ?? NODES[0],
    nodes,
    replication,
    provider: 'patroni',
    patroni: {
      scope: 'drill-lab',
      etcd,
      members,
      ttl: prev?.ttl ?? PATRONI_LAB_TIMINGS.ttl,
      loopWait: prev?.loopWait ?? PATRONI_LAB_TIMINGS.loopWait,
      retryTimeout: prev?.retryTimeout ?? PATRONI_LAB_TIMINGS.retryTimeout,
    },
  };
  writeJsonAtomic(p.config, config);
  return config;
}

async function waitHttp(url: string, timeoutMs: number, exited: () => boolean, logFile: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline && !exited()) {
    const r = await callApi(url, '', { timeoutMs: 1000 }).catch((e: Error) => e);
    if (!(r instanceof Error) && r.status < 500) return;
    last = r instanceof Error ? r.message : `HTTP ${r.status}`;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(
    `${url} did not answer within ${timeoutMs} ms (${exited() ? 'the process exited' : last})\n--- ${logFile} (tail) ---\n${await tail(logFile)}`,
  );
}

/** Detached, in its own session: the lab outlives the command that started it. */
async function spawnDetached(
  bin: string,
  args: string[],
  options: { logFile: string; env: NodeJS.ProcessEnv; asServerUser: boolean; cwd: string },
) {
  const log = await open(options.logFile, 'a');
  const ids = options.asServerUser && isRoot() ? await serverUser() : null;
  const child = spawn(bin, args, {
    ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
    env: options.env,
    stdio: ['ignore', log.fd, log.fd],
    detached: true,
    cwd: options.cwd,
  });
  await log.close();
  // Without a listener a failed spawn is an uncaught 'error'; the caller's wait sees the exit instead.
  child.on('error', () => {});
  child.unref();
  return child;
}

async function startEtcd(p: LabPaths, cfg: PatroniLabConfig): Promise<void> {
  const clientUrl = `http://127.0.0.1:${cfg.etcd.clientPort}`;
  const peerUrl = `http://127.0.0.1:${cfg.etcd.peerPort}`;
  const logFile = join(p.logs, 'etcd.log');
  const child = await spawnDetached(
    ETCD_BIN,
    [
      '--name',
      'lab',
      '--data-dir',
      etcdDir(p),
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `lab=${peerUrl}`,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `drill-lab-${cfg.etcd.clientPort}`,
      // The lab's DCS holds leader keys that live ttl seconds: an fsync per lease renewal buys nothing here.
      '--unsafe-no-fsync',
    ],
    { logFile, env: serverUserEnv(), asServerUser: false, cwd: p.dir },
  );
  await recordPid(p, { etcd: child.pid! });
  await waitHttp(`${clientUrl}/health`, 15_000, () => child.exitCode !== null || child.signalCode !== null, logFile);
}

async function startMember(p: LabPaths, cfg: LabConfig, name: string): Promise<number> {
  const logFile = patroniLog(p, name);
  const child = await spawnDetached(PATRONI_BIN, [memberConfig(p, name)], {
    logFile,
    // As root Patroni runs as postgres from a clean environment: root's PATH and PG* variables must not leak in.
    env: serverUserEnv({ HOME: join(p.pg, name) }),
    asServerUser: true,
    cwd: join(p.pg, name),
  });
  await recordPid(p, { member: [name, child.pid!] });
  await waitHttp(`${apiUrlOf(cfg.patroni!, name)}/liveness`, 30_000, () => child.exitCode !== null || child.signalCode !== null, logFile);
  return child.pid!;
}

/** Starts a member's Patroni again (a rejoin after its host died); resolves once its REST API answers. */
export async function startPatroniMember(dir: string, name: string): Promise<void> {
  const p = labPaths(dir);
  const cfg = await readConfig(p.config);
  if (!cfg?.patroni || !cfg.nodes[name]) throw new Error(`${name} is not a Patroni member of the lab in ${dir}`);
  if ((await liveProcesses(p)).members[name] !== undefined) return;
  await writeMemberConfig(p, cfg, name);
  await startMember(p, cfg, name);
}

/** synchronous_mode in the DCS for async/sync, then waits (up to timeoutMs) until the standby's walsender says so. */
export async function setPatroniReplication(cfg: PatroniLabConfig, replication: LabReplication, timeoutMs = 20_000): Promise<void> {
  const pp = patroniProvider(cfg);
  const want = replication === 'sync';
  if ((await pp.settings()).synchronous_mode !== want) await pp.patchSettings({ synchronous_mode: want });
  await waitPair(cfg, replication, timeoutMs);
}

/** Resolves once a leader runs and every other member streams from it, in the given mode. */
async function waitPair(cfg: PatroniLabConfig, replication: LabReplication, timeoutMs: number): Promise<void> {
  const pp = patroniProvider(cfg);
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    const t = await pp.topology().catch((e: Error) => e);
    if (!(t instanceof Error)) {
      last = JSON.stringify(t.members);
      const ok =
        t.primary?.role === 'primary' &&
        t.standbys.length === NODES.length - 1 &&
        t.standbys.every((s) => s.replication.streaming && s.replication.mode === replication);
      if (ok) return;
    } else last = t.message;
    await sleep(200);
  }
  throw new Error(`the lab's Patroni pair is not a leader with a streaming ${replication} replica after ${timeoutMs} ms: ${last}`);
}

/** Resolves with the leader's name once it answers GET /primary with 200 (what HAProxy and the lab's endpoint check). */
async function waitLeader(cfg: PatroniLabConfig, timeoutMs: number, p: LabPaths): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let last = 'no member answered';
  while (performance.now() < deadline) {
    for (const name of Object.keys(cfg.members)) {
      const r = await callApi(apiUrlOf(cfg, name), '/primary', { timeoutMs: 1000 }).catch((e: Error) => e);
      if (!(r instanceof Error) && r.status === 200) return name;
      last = `${name}: ${r instanceof Error ? r.message : `HTTP ${r.status}`}`;
    }
    await sleep(100);
  }
  const logs = await Promise.all(
    Object.keys(cfg.members).map(async (n) => `--- ${patroniLog(p, n)} (tail) ---\n${await tail(patroniLog(p, n), 8)}`),
  );
  throw new Error(`no Patroni member of the lab answered GET /primary with 200 within ${timeoutMs} ms (last: ${last})\n${logs.join('\n')}`);
}

/**
 * Starts what is not running: etcd, then the members (on a first start the first one bootstraps with initdb and
 * the other clones it once it leads). Resolves once the leader serves the lab's role and database; the replica's
 * clone and streaming (and the replication mode) are settled in `standby`.
 */
export async function bringUpPatroniLab(
  p: LabPaths,
  cfg: LabConfig,
  phase: (name: string) => void,
  timeoutMs = 90_000,
): Promise<{ standby: Promise<Error | null> }> {
  const pc = cfg.patroni!;
  await mkdir(p.pg, { recursive: true, mode: 0o755 });
  await giveToServerUser(p.pg);
  await mkdir(p.socketDir, { recursive: true, mode: 0o755 });
  await giveToServerUser(p.socketDir);
  for (const name of NODES) {
    await mkdir(join(p.pg, name), { recursive: true, mode: 0o700 });
    await chmod(join(p.pg, name), 0o700);
    await giveToServerUser(join(p.pg, name));
    await writeMemberConfig(p, cfg, name);
  }
  const live = await liveProcesses(p);
  if (live.etcd === null) {
    await startEtcd(p, pc);
    phase('etcd started');
  }
  const fresh = NODES.every((n) => !existsSync(join(p.node(n).data, 'PG_VERSION')));
  const toStart: string[] = NODES.filter((n) => live.members[n] === undefined);
  if (fresh) {
    // The first member bootstraps (initdb) and takes the leader key; the other clones from it once it leads.
    const [first, ...rest] = [cfg.primary, ...NODES.filter((n) => n !== cfg.primary)].filter((n) => toStart.includes(n));
    if (first) await startMember(p, cfg, first);
    const leader = await waitLeader(pc, timeoutMs, p);
    phase(`patroni ${leader} bootstrapped`);
    await Promise.all(rest.map((n) => startMember(p, cfg, n)));
  } else {
    await Promise.all(toStart.map((n) => startMember(p, cfg, n)));
  }
  if (toStart.length > 0) phase(`patroni ${toStart.join(', ')} started`);
  const leader = await waitLeader(pc, timeoutMs, p);
  await recordPatroniLeader(p.dir, leader);
  phase(`patroni leader ${leader}`);
  await ensureRoleAndDatabase(
    { host: '127.0.0.1', port: cfg.nodes[leader]!.port, user: SUPERUSER, database: 'postgres' },
    { role: 'drill', database: 'orders' },
  );
  const standby = setPatroniReplication(pc, cfg.replication ?? 'async', timeoutMs).then(
    () => (phase('patroni replica streaming'), null),
    (e: Error) => e,
  );
  return { standby };
}

/**
 * The host dies: SIGKILL of the member's Patroni, its postmaster and every child at once (Patroni alive would
 * restart PostgreSQL in place, which is no failover). The postmaster is stopped first so it forks nothing new.
 */
export async function crashPatroniMember(dir: string, name: string): Promise<{ pid: number; children: number[]; detail: string }> {
  const p = labPaths(dir);
  const patroni = (await liveProcesses(p)).members[name] ?? null;
  const data = p.node(name).data;
  const pm = await postmasterPid(data);
  const postmaster = pm !== null && (await isProcessUnder(pm, data)) ? pm : null;
  if (postmaster === null && patroni === null) throw new Error(`${name} (${data}) is not running: nothing to kill`);
  if (patroni !== null) signal(patroni, 'SIGSTOP');
  if (postmaster !== null) signal(postmaster, 'SIGSTOP');
  const children = postmaster !== null ? await childrenOf(postmaster) : [];
  const victims = [...children, ...(postmaster !== null ? [postmaster] : []), ...(patroni !== null ? [patroni] : [])];
  for (const pid of victims) signal(pid, 'SIGKILL');
  const gone = await Promise.all(victims.map((pid) => waitGone(pid, 5000)));
  if (gone.some((g) => !g)) throw new Error(`a process of ${name} survived SIGKILL (${victims.join(' ')})`);
  // The postmaster's PID is the one a drill reports; Patroni's goes with its children.
  const detail = `host died: Patroni ${patroni ?? '(not running)'}, postmaster ${postmaster ?? '(not running)'} and ${children.length} children SIGKILLed at once`;
  return {
    pid: postmaster ?? patroni!,
    children: postmaster !== null ? [...children, ...(patroni !== null ? [patroni] : [])] : [],
    detail,
  };
}

/**
 * Stops the Patroni lab by PID: every member's Patroni at once (each stops its PostgreSQL, and none is left
 * running to take a key the others release), then any postmaster left behind, then etcd. Returns what was stopped.
 */
export async function stopPatroniLab(p: LabPaths): Promise<{ name: string; pid: number }[]> {
  const stopped: { name: string; pid: number }[] = [];
  const cfg = await readConfig(p.config);
  const live = await liveProcesses(p);
  await Promise.all(
    Object.entries(live.members).map(async ([name, pid]) => {
      const data = p.node(name).data;
      const pm = await postmasterPid(data);
      const postmaster = pm !== null && (await isProcessUnder(pm, data)) ? pm : null;
      // SIGTERM: Patroni stops PostgreSQL (fast) and releases its key; 30 s before SIGKILL on a loaded machine.
      await terminate(pid, 30_000);
      stopped.push({ name: `patroni:${name}`, pid });
      if (postmaster !== null) {
        await stopCluster(data, 'fast');
        stopped.push({ name: `postgres:${name}`, pid: postmaster });
      }
    }),
  );
  for (const name of Object.keys(cfg?.nodes ?? {})) {
    const data = p.node(name).data;
    const pm = await postmasterPid(data);
    if (pm === null || !(await isProcessUnder(pm, data))) continue;
    await stopCluster(data, 'fast');
    stopped.push({ name: `postgres:${name}`, pid: pm });
  }
  if (live.etcd !== null) {
    await terminate(live.etcd, 5000);
    stopped.push({ name: 'etcd', pid: live.etcd });
  }
  await removeFile(pidsFile(p));
  return stopped;
}

/** `lab status`: etcd and each member's Patroni, by PID, as components. */
export async function patroniComponents(dir: string, cfg: LabConfig): Promise<LabComponent[]> {
  if (cfg.provider !== 'patroni' || !cfg.patroni) return [];
  const p = labPaths(dir);
  const pids = await readPids(p);
  const out: LabComponent[] = [
    {
      name: 'etcd',
      pid: pids.etcd,
      port: cfg.patroni.etcd.clientPort,
      alive: pids.etcd !== null && (await isProcessUnder(pids.etcd, p.dir)),
    },
  ];
  for (const name of Object.keys(cfg.patroni.members)) {
    const pid = pids.members[name] ?? null;
    out.push({ name: 'patroni', pid, port: cfg.patroni.members[name]!.apiPort, alive: pid !== null && (await isProcessUnder(pid, p.dir)) });
  }
  return out;
}
