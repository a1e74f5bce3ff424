/**
 * A real Patroni cluster for tests: one etcd member and N Patroni members, all on loopback ports in a temp
 * dir. Patroni runs as the `postgres` user when we are root (it starts PostgreSQL, which refuses root), so
 * every member directory belongs to postgres. Everything started here is stopped by PID in `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { giveToServerUser, isRoot, PG_BIN, postmasterPid, serverUser, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { childrenOf, isProcessUnder, signal, terminate, waitGone } from '../../lib/util/proc.ts';
import { callApi } from '../../lib/adapters/postgres/failover/patroni-api.ts';
import { freePort } from './ports.ts';
import { freeStablePort } from '../../lib/lab/ports.ts';
import { PATRONI_HBA, patroniBootstrap } from '../../lib/lab/patroni/config.ts';
import type { TempDir } from './tmp.ts';

export interface PatroniTimings {
  ttl: number;
  loopWait: number;
  retryTimeout: number;
}

export interface PatroniMember {
  name: string;
  dir: string;
  dataDir: string;
  pgPort: number;
  apiPort: number;
  apiUrl: string;
  logFile: string;
  configFile: string;
}

export interface PatroniCluster {
  scope: string;
  dir: string;
  etcdUrl: string;
  timings: PatroniTimings;
  members: PatroniMember[];
  member(name: string): PatroniMember;
  /** Starts (or restarts) a member's Patroni; resolves once its REST API answers. */
  start(name: string): Promise<void>;
  /**
   * Kills a member the way a host dies: SIGKILL of Patroni, of the postmaster and of all its children at
   * once (a postmaster killed alone leaves backends that still acknowledge writes). Returns the PIDs killed.
   */
  crash(name: string): Promise<number[]>;
  /** Patroni's own log of a member, for assertions on what it did (pg_rewind, promotion). */
  log(name: string): Promise<string>;
  stop(): Promise<void>;
}

export interface PatroniClusterOptions {
  members?: number;
  timings?: Partial<PatroniTimings>;
  /** Basic auth on the REST API's unsafe endpoints (POST, PATCH, PUT, DELETE), as Patroni offers it. */
  restApiAuth?: { username: string; password: string };
}

const PATRONI_BIN = '/usr/bin/patroni';
const ETCD_BIN = '/usr/bin/etcd';

export async function startPatroniCluster(options: PatroniClusterOptions = {}): Promise<PatroniCluster> {
  for (const bin of [PATRONI_BIN, ETCD_BIN]) {
    await access(bin, fsConstants.X_OK).catch(() => {
      throw new Error(`${bin} is missing: apt-get install -y patroni etcd-server (.ci/run does this on CI)`);
    });
  }
  const timings: PatroniTimings = { ttl: 10, loopWait: 2, retryTimeout: 4, ...options.timings };
  const tmp = await clusterDir();
  const scope = `drill-${Math.random().toString(36).slice(2, 8)}`;
  const procs = new Map<string, ChildProcess>();
  let etcd: ChildProcess | null = null;
  const members: PatroniMember[] = [];

  const stop = async (): Promise<void> => {
    const errors: unknown[] = [];
    // Patroni first (SIGTERM makes it stop PostgreSQL fast), then any postmaster it left, then etcd.
    await Promise.all(
      members.map(async (m) => {
        const child = procs.get(m.name);
        procs.delete(m.name);
        try {
          if (child?.pid && (await isProcessUnder(child.pid, m.dir))) await terminate(child.pid, 10_000);
          await stopCluster(m.dataDir, 'immediate', { timeoutMs: 10_000 });
        } catch (e) {
          errors.push(e);
        }
      }),
    );
    if (etcd?.pid && (await isProcessUnder(etcd.pid, tmp.path))) await terminate(etcd.pid, 5000);
    etcd = null;
    await tmp.remove().catch((e) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, 'stopping the Patroni cluster left errors');
  };

  try {
    etcd = await startEtcd(tmp);
    const etcdUrl = (etcd as ChildProcess & { clientUrl: string }).clientUrl;
    const n = options.members ?? 2;
    for (let i = 1; i <= n; i++) members.push(await prepareMember(tmp, scope, `m${i}`, etcdUrl, timings, options.restApiAuth));

    const startMember = async (name: string): Promise<void> => {
      const m = members.find((x) => x.name === name);
      if (!m) throw new Error(`no member ${name}`);
      const old = procs.get(name);
      if (old?.pid && (await isProcessUnder(old.pid, m.dir))) throw new Error(`Patroni ${name} is already running (pid ${old.pid})`);
      const log = await open(m.logFile, 'a');
      const ids = await serverUser();
      const child = spawn(PATRONI_BIN, [m.configFile], {
        // As root, Patroni runs as postgres from a clean environment: root's PATH and PG* variables must not leak in.
        ...(isRoot() ? { uid: ids.uid, gid: ids.gid } : {}),
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'C.UTF-8', HOME: m.dir },
        stdio: ['ignore', log.fd, log.fd],
        detached: true,
        // Patroni, and the initdb, pg_ctl and pg_rewind it runs, start where postgres may enter, not in our cwd.
        cwd: m.dir,
      });
      await log.close();
      // Without a listener a failed spawn would be an uncaught 'error'; waitHttp sees the exit code instead.
      child.on('error', () => {});
      procs.set(name, child);
      await waitHttp(`${m.apiUrl}/liveness`, 30_000, () => child.exitCode !== null || child.signalCode !== null, m.logFile);
    };

    const cluster: PatroniCluster = {
      scope,
      dir: tmp.path,
      etcdUrl,
      timings,
      members,
      member(name) {
        const m = members.find((x) => x.name === name);
        if (!m) throw new Error(`no member ${name}`);
        return m;
      },
      start: startMember,
      async crash(name) {
        const m = cluster.member(name);
        const patroniPid = procs.get(name)?.pid;
        const pm = await postmasterPid(m.dataDir);
        const postmaster = pm !== null && (await isProcessUnder(pm, m.dataDir)) ? pm : null;
        const victims: number[] = [];
        if (patroniPid && (await isProcessUnder(patroniPid, m.dir))) victims.push(patroniPid);
        if (postmaster !== null) victims.push(postmaster, ...(await childrenOf(postmaster)));
        // All in one go, so neither Patroni nor the postmaster gets a chance to react to the other's death.
        for (const pid of victims) signal(pid, 'SIGKILL');
        for (const pid of victims) await waitGone(pid, 5000);
        procs.delete(name);
        return victims;
      },
      log: (name) => readFile(cluster.member(name).logFile, 'utf8'),
      stop,
    };
    // The first member bootstraps (initdb) and takes the leader key; the others clone from it.
    await startMember(members[0]!.name);
    await Promise.all(members.slice(1).map((m) => startMember(m.name)));
    return cluster;
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

/**
 * In /dev/shm when there is one: under load initdb alone took 12.6 s on disk and 5.7 s there (fsync). The test
 * kills processes, not the machine, so what a commit left in the page cache survives either way, and failover
 * time is ruled by the leader key's TTL, not by the disk.
 */
async function clusterDir(): Promise<TempDir> {
  const base = await access('/dev/shm').then(
    () => '/dev/shm',
    () => tmpdir(),
  );
  const path = await mkdtemp(join(base, 'drill-patroni-'));
  // postgres must be able to traverse it to reach the member directories.
  await chmod(path, 0o755);
  return { path, remove: () => rm(path, { recursive: true, force: true, maxRetries: 3 }) };
}

async function startEtcd(tmp: TempDir): Promise<ChildProcess & { clientUrl: string }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = join(tmp.path, 'etcd');
  const log = await open(join(tmp.path, 'etcd.log'), 'a');
  const child = spawn(
    ETCD_BIN,
    [
      '--name',
      'e0',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `e0=${peerUrl}`,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `drill-${clientPort}`,
      // A test's data is gone with the temp dir: no need to wait on fsync for every lease renewal.
      '--unsafe-no-fsync',
    ],
    { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', log.fd, log.fd], detached: true, cwd: tmp.path },
  );
  await log.close();
  child.on('error', () => {});
  await waitHttp(`${clientUrl}/health`, 15_000, () => child.exitCode !== null, join(tmp.path, 'etcd.log'));
  return Object.assign(child, { clientUrl });
}

async function prepareMember(
  tmp: TempDir,
  scope: string,
  name: string,
  etcdUrl: string,
  timings: PatroniTimings,
  auth: { username: string; password: string } | undefined,
): Promise<PatroniMember> {
  const dir = join(tmp.path, name);
  const socketDir = join(dir, 'sock');
  await mkdir(socketDir, { recursive: true });
  await chmod(dir, 0o700);
  await giveToServerUser(dir);
  await giveToServerUser(socketDir);
  // Ports outside the ephemeral range: a member restarted for a rejoin gets its ports back.
  const pgPort = await freeStablePort();
  const apiPort = await freeStablePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const dataDir = join(dir, 'data');
  const config = {
    scope,
    namespace: '/drill/',
    name,
    restapi: {
      listen: `127.0.0.1:${apiPort}`,
      connect_address: `127.0.0.1:${apiPort}`,
      ...(auth ? { authentication: auth } : {}),
    },
    etcd3: { hosts: etcdUrl.replace('http://', '') },
    bootstrap: patroniBootstrap({ ...timings, sync: false }),
    postgresql: {
      listen: `127.0.0.1:${pgPort}`,
      connect_address: `127.0.0.1:${pgPort}`,
      data_dir: dataDir,
      bin_dir: PG_BIN,
      pgpass: join(dir, 'pgpass'),
      authentication: {
        superuser: { username: 'postgres', password: 'drill-test-only' },
        replication: { username: 'replicator', password: 'drill-test-only' },
      },
      parameters: { unix_socket_directories: socketDir },
      pg_hba: PATRONI_HBA,
      // A replica's clone should not wait for a spread checkpoint on the leader.
      basebackup: [{ checkpoint: 'fast' }],
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
  const configFile = join(dir, 'patroni.yml');
  await writeFile(configFile, YAML.stringify(config), { mode: 0o600 });
  await giveToServerUser(configFile);
  return { name, dir, dataDir, pgPort, apiPort, apiUrl, logFile: join(tmp.path, `${name}.log`), configFile };
}

async function waitHttp(url: string, timeoutMs: number, exited: () => boolean, logFile: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    if (exited()) break;
    try {
      const r = await callApi(url, '', { timeoutMs: 1000 });
      if (r.status < 500) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-15).join('\n');
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${exited() ? 'process exited' : last})\n--- ${logFile} ---\n${tail}`);
}
