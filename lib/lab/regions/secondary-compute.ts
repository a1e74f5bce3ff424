/**
 * The secondary region's compute, as the paired region's AKS cluster the runbook scales up: a second lab
 * daemon (`daemon.ts --region secondary --db-port N`) with its own supervisor, front, DB endpoint (pointing at
 * the secondary's database) and control API. Its replicas store attachments in the secondary's account and
 * write request logs under `<lab>/secondary/service-logs/`, shipped into the secondary's lab-logs. It runs no
 * WAL archiver and no replicator. State: `<lab>/secondary/daemon.json`, written by that daemon.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../../errors.ts';
import { isProcessUnder, terminate, waitGone, signal as sendSignal } from '../../util/proc.ts';
import { getDaemonStatus, scaleReplicas, setDbPrimary } from '../daemon/client.ts';
import { tail } from '../log-tail.ts';
import { entryArgv, labPaths, regionComputePaths } from '../paths.ts';
import { spawnDetached } from '../spawn-detached.ts';
import { readConfig, readDaemonState, removeFile } from '../state.ts';
import type { DaemonState } from '../types.ts';
import { secondaryAzuriteStatus } from './secondary.ts';

export interface SecondaryComputeStatus {
  /** Its daemon runs and its control API answers. */
  up: boolean;
  frontPort: number | null;
  ready: number;
  desired: number;
  daemonPid: number | null;
  /** Additive: its control API, the database port its DB endpoint points at, its log shipper's PID while it runs. */
  controlPort: number | null;
  /** Its DB endpoint (what its replicas connect to) and the database port that endpoint points at. */
  dbEndpointPort: number | null;
  dbPort: number | null;
  logShipperPid: number | null;
}

const secondaryState = (labDir: string) => readDaemonState(regionComputePaths(labDir, 'secondary').daemonState);

export async function secondaryComputeStatus(labDir: string): Promise<SecondaryComputeStatus> {
  const dir = resolve(labDir);
  const s = await secondaryState(dir);
  const down: SecondaryComputeStatus = {
    up: false,
    frontPort: null,
    ready: 0,
    desired: s?.desired ?? 0,
    daemonPid: null,
    controlPort: null,
    dbEndpointPort: null,
    dbPort: s?.primaryPort ?? null,
    logShipperPid: null,
  };
  if (!s || !(await isProcessUnder(s.pid, dir))) return down;
  const live = await getDaemonStatus(`http://127.0.0.1:${s.ports.control}`, { timeoutMs: 2000 }).catch(() => null);
  const shipper = s.logShipper?.pid ?? null;
  return {
    up: live !== null,
    frontPort: s.ports.front,
    ready: live?.ready ?? 0,
    desired: live?.desired ?? s.desired,
    daemonPid: s.pid,
    controlPort: s.ports.control,
    dbEndpointPort: s.ports.dbEndpoint,
    dbPort: live?.db.primaryPort ?? s.primaryPort,
    logShipperPid: shipper !== null && (await isProcessUnder(shipper, dir)) ? shipper : null,
  };
}

/**
 * Starts the secondary's compute against the database on `dbPort` and resolves once `replicas` replicas are
 * ready and its front answers GET /orders with 200. Idempotent: a running one is repointed and rescaled.
 */
export async function startSecondaryCompute(
  labDir: string,
  o: { dbPort: number; replicas?: number; signal?: AbortSignal; timeoutMs?: number },
): Promise<{ frontPort: number; daemonPid: number; replicas: number }> {
  const dir = resolve(labDir);
  const p = labPaths(dir);
  if (!Number.isInteger(o.dbPort) || o.dbPort < 1 || o.dbPort > 65535)
    throw new UserError(`the secondary database port must be 1-65535, got ${o.dbPort}`, { untouched: 'nothing' });
  const config = await readConfig(p.config);
  if (config?.regions !== 2)
    throw new UserError(`the lab in ${dir} has no secondary region (lab.json regions: ${config?.regions ?? 'none'})`, {
      untouched: 'nothing',
      next: '`drill lab down`, then `drill lab up --regions 2`',
    });
  const replicas = o.replicas ?? config.replicas;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 64)
    throw new UserError(`replicas must be an integer 1-64, got ${replicas}`, { untouched: 'nothing' });
  if (!(await secondaryAzuriteStatus(dir)).up)
    throw new UserError(
      "the secondary region's storage (its Azurite) is not answering: its replicas would have nowhere to store files and logs",
      {
        untouched: 'nothing was started in the secondary region',
        next: '`drill lab up` starts the secondary storage again',
      },
    );
  const deadline = performance.now() + (o.timeoutMs ?? 60_000);
  const own = regionComputePaths(dir, 'secondary');
  let s = await secondaryState(dir);
  if (s && (await isProcessUnder(s.pid, dir))) {
    const controlUrl = `http://127.0.0.1:${s.ports.control}`;
    const live = await getDaemonStatus(controlUrl, { timeoutMs: 2000 });
    if (live.db.primaryPort !== o.dbPort) await setDbPrimary(controlUrl, o.dbPort);
    if (live.desired !== replicas) await scaleReplicas(controlUrl, replicas, { resetBackoff: true });
  } else {
    // What a dead secondary daemon left running goes first: its replicas would hold the old database.
    await stopLeftovers(dir, s);
    await removeFile(own.daemonState);
    mkdirSync(p.logs, { recursive: true });
    mkdirSync(own.serviceLogs.dir, { recursive: true });
    const argv = [
      ...entryArgv('daemon.ts'),
      '--lab',
      dir,
      '--region',
      'secondary',
      '--db-port',
      String(o.dbPort),
      '--replicas',
      String(replicas),
    ];
    await spawnDetached({
      label: "the secondary region's lab daemon",
      argv,
      cwd: dir,
      logFile: own.daemonLog,
      timeoutMs: Math.max(1000, deadline - performance.now()),
      signal: o.signal,
    });
    s = await secondaryState(dir);
    if (!s) throw new Error(`the secondary region's daemon started but wrote no state (${own.daemonState})`);
  }
  await waitServing(dir, s, replicas, deadline, o.signal);
  return { frontPort: s.ports.front, daemonPid: s.pid, replicas };
}

async function waitServing(dir: string, s: DaemonState, replicas: number, deadline: number, signal?: AbortSignal): Promise<void> {
  const controlUrl = `http://127.0.0.1:${s.ports.control}`;
  let version = -1;
  let last = '';
  while (performance.now() < deadline) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const waitMs = Math.min(1000, deadline - performance.now());
    const st = await getDaemonStatus(controlUrl, { after: version, waitMs, signal });
    version = st.version;
    last = `${st.ready}/${st.desired} replicas ready`;
    if (st.ready < replicas) continue;
    const code = await fetch(`http://127.0.0.1:${s.ports.front}/orders?limit=1`, { signal: AbortSignal.timeout(2000) }).then(
      async (r) => (await r.arrayBuffer(), r.status),
      (e: Error) => e.message,
    );
    if (code === 200) return;
    last = `its front answered GET /orders with ${code}`;
    await sleep(50);
  }
  const log = regionComputePaths(dir, 'secondary').replicasLog;
  throw new Error(`the secondary region's compute is not serving in time: ${last}\n--- ${log} (tail) ---\n${await tail(log)}`);
}

/** Every process a secondary daemon recorded (replicas, log shipper) that still runs, by verified PID. */
async function stopLeftovers(dir: string, s: DaemonState | null): Promise<{ name: string; pid: number }[]> {
  const stopped: { name: string; pid: number }[] = [];
  if (!s) return stopped;
  const shipper = s.logShipper?.pid ?? null;
  const pids = [...s.replicas.map((r) => ({ name: `secondary ${r.name}`, pid: r.pid }))];
  if (shipper !== null) pids.push({ name: 'secondary log-shipper', pid: shipper });
  await Promise.all(
    pids.map(async (x) => {
      if (!(await isProcessUnder(x.pid, dir))) return;
      await terminate(x.pid, x.name.endsWith('log-shipper') ? 5000 : 2000);
      stopped.push(x);
    }),
  );
  return stopped;
}

/** Stops the secondary's compute (its daemon drains its replicas and ships their last lines), then anything it left. */
export async function stopSecondaryCompute(labDir: string): Promise<{ name: string; pid: number }[]> {
  const dir = resolve(labDir);
  const s = await secondaryState(dir);
  if (!s) return [];
  const stopped: { name: string; pid: number }[] = [];
  if (await isProcessUnder(s.pid, dir)) {
    sendSignal(s.pid, 'SIGTERM');
    // Replicas get 3 s, the shipper 5 s more for its last pass.
    if (!(await waitGone(s.pid, 10_000))) {
      sendSignal(s.pid, 'SIGKILL');
      await waitGone(s.pid, 2000);
    }
    stopped.push({ name: 'secondary daemon', pid: s.pid });
  }
  // Re-read: the daemon may have started replacements after `s` was read, and recorded them before it died.
  stopped.push(...(await stopLeftovers(dir, (await secondaryState(dir)) ?? s)));
  await removeFile(regionComputePaths(dir, 'secondary').daemonState);
  return stopped;
}
