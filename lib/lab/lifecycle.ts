/** labUp and labDown: start and stop a lab by PID, idempotently, and clean up after a crashed harness. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, realpath, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PG_BIN, isRunning, postmasterPid, socketPathProblem, stopCluster } from '../adapters/postgres/cluster.ts';
import { setSyncStandby } from '../adapters/postgres/standby.ts';
import { UserError } from '../errors.ts';
import { isProcessUnder, signal, terminate, waitGone } from '../util/proc.ts';
import { writeJsonAtomic } from '../util/atomic-file.ts';
import { ensureDebianPackages, isExecutable } from '../util/system-packages.ts';
import { labAzuriteStateFile, startLabAzurite, stopLabAzurite } from './azurite.ts';
import { getDaemonStatus, scaleReplicas } from './daemon/client.ts';
import { withLabLock } from './lock.ts';
import { tail } from './log-tail.ts';
import { patroniUnavailable } from './patroni/config.ts';
import { bringUpPatroniLab, planPatroniLab, setPatroniReplication, stopPatroniLab, switchLabProvider } from './patroni/processes.ts';
import { RESTORED_COPY_PREFIX, childEnv, defaultLabDir, entryArgv, labPaths, type LabPaths } from './paths.ts';
import { bringUpPostgres, planPostgres, superConn } from './postgres/pair.ts';
import { assertServerCanReach } from './reach.ts';
import { readConfig, readDaemonState, removeFile } from './state.ts';
import { readWalArchiveState } from '../adapters/postgres/backup/wal-state.ts';
import { DEFAULT_LOG_SHIP_INTERVAL_MS } from './log-ship.ts';
import { DEFAULT_ARCHIVE_LAG_MS, DEFAULT_BASE_BACKUP_EVERY_MS, MIN_BASE_BACKUP_EVERY_MS } from './archive.ts';
import { collectFacts, infoOf, primaryInfoOf } from './status.ts';
import { DEFAULT_REPLICATION_LAG_MS } from '../config/defaults.ts';
import { secondaryPaths, startSecondaryAzurite, stopSecondaryAzurite } from './regions/secondary.ts';
import { readSecondaryDb, regionPaths, stopSecondaryDb } from './regions/contract.ts';
import { globalFrontStatus, startGlobalFront, stopGlobalFront, switchGlobalFront } from './regions/global-front.ts';
import { secondaryComputeStatus, stopSecondaryCompute } from './regions/secondary-compute.ts';
import type { LabDownResult, LabFacts, LabInfo, LabProvider, LabReplication } from './types.ts';
import { warmService } from './warm.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LabUpOptions {
  dir?: string;
  replicas?: number;
  /** async or sync streaming to the standby; default: what lab.json records, else async. */
  replication?: LabReplication;
  /** Who fails the pair over: pg-promote (the harness) or patroni (Patroni + etcd); default: what lab.json records, else pg-promote. */
  provider?: LabProvider;
  /** Budget for the whole start, PostgreSQL init included. */
  timeoutMs?: number;
  /** Called as each start phase ends, with ms since labUp was called: for progress lines and start-time reports. */
  onPhase?: (phase: string, elapsedMs: number) => void;
  /** Start the lab's Azurite (Blob service for backups) beside PostgreSQL and the daemon. Default true. */
  azurite?: boolean;
  /** The most the WAL archive may lag the primary (the archiver closes a segment at half of it); default: lab.json's, else 60 s. */
  archiveLagMs?: number;
  /** How often the WAL archiver takes a new base backup; default: lab.json's, else daily. */
  baseBackupEveryMs?: number;
  /** How often the log shipper uploads the replicas' request logs; default: lab.json's, else 60 s. */
  logShipIntervalMs?: number;
  /** Where to say what the start-up does beyond the phases (installing PostgreSQL 15 on a fresh machine). Default: stderr. */
  say?: (line: string) => void;
  /** 2: a secondary region's storage (its own Azurite and account) and a replicator into it; default: lab.json's, else 1. */
  regions?: 1 | 2;
  /** How long a blob exists in the primary's storage before it is copied to the secondary; default: lab.json's, else 15 min. */
  replicationLagMs?: number;
  /**
   * Failback: on a lab whose global front serves from the secondary region, bring the primary region up behind it
   * without switching the front (the caller switches once the primary holds the data). Without it, such a lab is
   * returned as it serves, and the primary is not started under it.
   */
  rebuildPrimary?: boolean;
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
  // A fresh Debian machine with Node 20 has no PostgreSQL: as root the lab installs it (saying so), otherwise the
  // error names the command. Azurite comes with the npm dependencies.
  ensureDebianPackages(
    [
      {
        package: 'postgresql-15',
        present: () => isExecutable(join(PG_BIN, 'initdb')) && isExecutable(join(PG_BIN, 'postgres')),
        why: "the lab's database",
      },
    ],
    options.say ?? ((line) => process.stderr.write(`${line}\n`)),
  );
  const t0 = performance.now();
  const deadline = t0 + (options.timeoutMs ?? (options.provider === 'patroni' ? 120_000 : 60_000));
  const phase = (name: string) => options.onPhase?.(name, performance.now() - t0);
  const p = labPaths(dir);
  const socketProblem = socketPathProblem(p.socketDir);
  if (socketProblem)
    throw new UserError(`lab directory ${dir}: ${socketProblem}`, { untouched: 'nothing', next: 'set DRILL_LAB_DIR to a shorter path' });
  await assertServerCanReach(dir);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (options.replication !== undefined && options.replication !== 'async' && options.replication !== 'sync') {
    throw new UserError(`replication must be async or sync, got ${String(options.replication)}`, { untouched: 'nothing' });
  }
  if (options.archiveLagMs !== undefined && !(Number.isFinite(options.archiveLagMs) && options.archiveLagMs >= 2000))
    throw new UserError(`archiveLag must be at least 2s, got ${options.archiveLagMs} ms: every segment switch costs a whole segment`, {
      untouched: 'nothing',
    });
  if (
    options.baseBackupEveryMs !== undefined &&
    !(Number.isFinite(options.baseBackupEveryMs) && options.baseBackupEveryMs >= MIN_BASE_BACKUP_EVERY_MS)
  )
    throw new UserError(
      `base-backup-every must be at least ${MIN_BASE_BACKUP_EVERY_MS / 1000}s, got ${options.baseBackupEveryMs} ms: each base backup copies the whole database`,
      { untouched: 'nothing' },
    );
  if (options.logShipIntervalMs !== undefined && !(Number.isFinite(options.logShipIntervalMs) && options.logShipIntervalMs >= 1000))
    throw new UserError(`logShipInterval must be at least 1s, got ${options.logShipIntervalMs} ms`, { untouched: 'nothing' });
  if (options.regions !== undefined && options.regions !== 1 && options.regions !== 2)
    throw new UserError(`regions must be 1 or 2, got ${String(options.regions)}`, { untouched: 'nothing' });
  if (options.replicationLagMs !== undefined && !(Number.isFinite(options.replicationLagMs) && options.replicationLagMs >= 1000))
    throw new UserError(`replicationLag must be at least 1s, got ${options.replicationLagMs} ms`, { untouched: 'nothing' });
  const noPatroni = options.provider === 'patroni' ? patroniUnavailable() : null;
  if (noPatroni)
    throw new UserError(`the lab cannot run on Patroni here: ${noPatroni}`, {
      untouched: 'nothing',
      next: 'apt-get install -y patroni etcd-server, or use the pg-promote provider',
    });
  return withLabLock(p.lock, async () => {
    let f = await collectFacts(dir);
    if (f.regions?.globalFront?.active === 'secondary' && !options.rebuildPrimary) return servingFromSecondary(dir, f, options);
    // While the secondary serves (failback), the primary's own view; otherwise the global front's.
    const view = options.rebuildPrimary ? primaryInfoOf : infoOf;
    const provider: LabProvider = options.provider ?? f.config?.provider ?? 'pg-promote';
    // A lab of the other provider: refused while it runs, started over when it is down.
    if (await switchLabProvider(dir, f, provider)) f = await collectFacts(dir);
    const replication = options.replication ?? f.config?.replication ?? 'async';
    const archiveLagMs = options.archiveLagMs ?? f.config?.archiveLagMs ?? DEFAULT_ARCHIVE_LAG_MS;
    const baseBackupEveryMs = options.baseBackupEveryMs ?? f.config?.baseBackupEveryMs ?? DEFAULT_BASE_BACKUP_EVERY_MS;
    const logShipIntervalMs = options.logShipIntervalMs ?? f.config?.logShipIntervalMs ?? DEFAULT_LOG_SHIP_INTERVAL_MS;
    const regions = options.regions ?? f.config?.regions ?? 1;
    const replicationLagMs = options.replicationLagMs ?? f.config?.replicationLagMs ?? DEFAULT_REPLICATION_LAG_MS;
    if (f.pgAlive && f.live && f.config) {
      // The daemon runs the replicator only when it starts with two regions: changing that means starting over.
      if ((f.config.regions ?? 1) !== regions)
        throw new UserError(`the lab in ${dir} runs ${f.config.regions ?? 1} region(s), not ${regions}`, {
          untouched: 'the running lab: nothing was started or stopped',
          next: `\`drill lab down\`, then \`drill lab up --regions ${regions}\``,
        });
      // The archiver notices a changed lag in lab.json and is restarted with it.
      // So does the log shipper, a changed ship interval. The replicator reads its lag on every pass.
      const lagChanged = regions === 2 && f.config.replicationLagMs !== replicationLagMs;
      if (
        (f.config.archiveLagMs ?? DEFAULT_ARCHIVE_LAG_MS) !== archiveLagMs ||
        (f.config.baseBackupEveryMs ?? DEFAULT_BASE_BACKUP_EVERY_MS) !== baseBackupEveryMs ||
        (f.config.logShipIntervalMs ?? DEFAULT_LOG_SHIP_INTERVAL_MS) !== logShipIntervalMs ||
        lagChanged
      )
        writeJsonAtomic(p.config, {
          ...f.config,
          archiveLagMs,
          baseBackupEveryMs,
          logShipIntervalMs,
          ...(regions === 2 ? { replicationLagMs } : {}),
        });
      // A running lab is left as it is, a standby that is down included: a drill's steady state must see
      // that (exit 3) rather than have it mended behind its back. `lab down` then `lab up` mends it.
      if (f.config.patroni && (f.config.replication ?? 'async') !== replication) await setPatroniReplication(f.config.patroni, replication);
      else if ((f.config.replication ?? 'async') !== replication) {
        const standby = f.nodes.find((n) => n.role === 'standby' && n.alive);
        await setSyncStandby(superConn(f.config.nodes[f.config.primary]!.port), replication === 'sync' && standby ? standby.name : null);
      }
      if (f.live.desired !== replicas || f.config.replication !== replication) {
        if (f.live.desired !== replicas) await scaleReplicas(infoOf(dir, f, true)!.controlUrl, replicas);
        // lab.json holds the declared count a rollback (ensureDesired) restores.
        writeJsonAtomic(p.config, {
          ...(await readConfig(p.config)),
          ...f.config,
          replicas,
          replication,
          archiveLagMs,
          baseBackupEveryMs,
          logShipIntervalMs,
          ...(regions === 2 ? { replicationLagMs } : {}),
        });
      }
      // A lab brought up before it had Azurite, or whose Azurite died, gets one: it is the lab's backup
      // store, not a part a drill breaks.
      if (options.azurite !== false && !f.azurite.up) await startLabAzurite(dir);
      if (regions === 2 && !f.secondary.up) await startSecondaryAzurite(dir);
      if (regions === 2) await ensureGlobalFront(dir, f.live.front.port);
      const info = view(dir, await collectFacts(dir), true)!;
      await waitServing(p, info, replicas, deadline);
      return { ...info, replicas };
    }
    const startedHere: string[] = [];
    // The standby is built alongside the daemon, waitServing and the warm-up; settled (never rejected, so it
    // is never an unhandled rejection) and awaited before labUp returns or cleans up.
    let standby: Promise<Error | null> = Promise.resolve(null);
    let azuriteStartedHere = false;
    // Azurite (1.7 s of CPU to start) is settled like the standby, and awaited only before labUp returns:
    // started at low CPU priority, it takes no core from the lab's critical path on a 2-core machine.
    let azurite: Promise<Error | null> = Promise.resolve(null);
    let secondaryStartedHere = false;
    let secondary: Promise<Error | null> = Promise.resolve(null);
    let globalFrontStartedHere = false;
    try {
      // Leftovers of a crash (dead daemon, orphan replicas) go first; a healthy PostgreSQL is kept.
      await stopDaemonAndReplicas(dir, f);
      await removeFile(p.daemonState);
      await mkdir(p.logs, { recursive: true, mode: 0o755 });
      const patroniPlan = provider === 'patroni' ? await planPatroniLab(p, f, replicas, replication) : null;
      const plan = patroniPlan ? null : await planPostgres(p, f, replicas, replication);
      // Before the daemon starts: its WAL archiver reads the lag from lab.json.
      writeJsonAtomic(p.config, {
        ...(await readConfig(p.config)),
        archiveLagMs,
        baseBackupEveryMs,
        logShipIntervalMs,
        regions,
        ...(regions === 2 ? { replicationLagMs } : {}),
      });
      // The secondary region's storage, started the same way as the primary's and settled with it.
      if (regions === 2) {
        secondary = startSecondaryAzurite(dir, { background: true }).then(
          (a) => {
            secondaryStartedHere = !a.alreadyRunning;
            phase('secondary storage ready');
            return null;
          },
          (e: Error) => e,
        );
      }
      if (options.azurite !== false) {
        azurite = startLabAzurite(dir, { background: true }).then(
          (a) => {
            azuriteStartedHere = !a.alreadyRunning;
            phase('azurite ready');
            return null;
          },
          (e: Error) => e,
        );
      }
      // The daemon and its replicas boot (about a second of node start-up) while PostgreSQL initialises and
      // starts: replicas retry the database until it answers, and only count as ready once it does.
      const [pg, daemon] = await Promise.allSettled([
        (patroniPlan
          ? bringUpPatroniLab(p, patroniPlan, phase)
          : bringUpPostgres(p, plan!, f, (node) => startedHere.push(node), phase)
        ).then((s) => {
          standby = s.standby;
        }),
        spawnDaemon(p, deadline).then((pid) => (phase('daemon ready'), pid)),
      ]);
      if (pg.status === 'rejected') throw pg.reason;
      if (daemon.status === 'rejected') throw daemon.reason;
      if (regions === 2) {
        const front = (await collectFacts(dir)).live?.front.port;
        if (front === undefined) throw new Error(`lab daemon ${daemon.value} started but its control API does not answer`);
        globalFrontStartedHere = await ensureGlobalFront(dir, front);
        phase('global front ready');
      }
      const info = view(dir, await collectFacts(dir), false);
      if (!info) throw new Error(`lab daemon ${daemon.value} started but its state is incomplete (${p.daemonState})`);
      await waitServing(p, info, replicas, deadline);
      phase('serving');
      const warm = await warmService(servedAt(info), { maxMs: Math.max(0, Math.min(8000, deadline - performance.now())) });
      phase(`warm after ${warm.requests} requests (p95 ${warm.lastP95Ms.toFixed(1)} ms)`);
      const azuriteError = (await azurite) ?? (await secondary);
      if (azuriteError) throw azuriteError;
      const standbyError = await standby;
      if (standbyError) throw standbyError;
      // The base backup's checkpoint and the standby's start slow the primary for a while (measured: a
      // baseline right after lab up saw p95 600 ms): warm again, writes included, once the pair is whole.
      const settled = await warmService(servedAt(info), {
        writes: true,
        maxMs: Math.max(0, Math.min(8000, deadline - performance.now())),
      });
      phase(`settled after ${settled.requests} requests (p95 ${settled.lastP95Ms.toFixed(1)} ms)`);
      await waitBaseBackup(p, deadline);
      phase('base backup and WAL in the archive');
      return view(dir, await collectFacts(dir), false) ?? info;
    } catch (e) {
      await standby;
      // Take down what this call started, so a failed start leaves no half lab behind.
      await stopDaemonAndReplicas(dir, await collectFacts(dir)).catch(() => {});
      await Promise.all(startedHere.map((n) => stopCluster(p.node(n).data, 'fast').catch(() => {})));
      if (provider === 'patroni') await stopPatroniLab(p).catch(() => {});
      await azurite;
      if (azuriteStartedHere) await stopLabAzurite(dir).catch(() => {});
      await secondary;
      if (secondaryStartedHere) await stopSecondaryAzurite(dir).catch(() => {});
      if (globalFrontStartedHere) await stopGlobalFront(dir).catch(() => {});
      throw e;
    }
  });
}

/** Where the primary region answers: the global front while it serves the primary, the primary's own front otherwise. */
const servedAt = (info: LabInfo) =>
  info.regions && info.regions.active !== 'primary' ? (info.regions.primaryFrontUrl ?? info.serviceUrl) : info.serviceUrl;

/**
 * The global front in front of the primary's front on `frontPort`: started when it does not run, repointed when
 * it sends the primary's load elsewhere (a daemon started again has a new front port). A front serving from the
 * secondary is left as it is (failback switches it when the primary holds the data). True when started here.
 */
async function ensureGlobalFront(dir: string, frontPort: number): Promise<boolean> {
  const gf = await globalFrontStatus(dir);
  if (gf?.alive) {
    if (gf.active === 'primary' && gf.upstreamPort !== frontPort) await switchGlobalFront(dir, 'primary', frontPort);
    return false;
  }
  if (gf?.active === 'secondary') {
    const c = await secondaryComputeStatus(dir);
    await startGlobalFront(dir, { region: 'secondary', upstreamPort: c.up ? c.frontPort : null });
  } else await startGlobalFront(dir, { region: 'primary', upstreamPort: frontPort });
  return true;
}

/**
 * A lab left serving from the secondary region (a region loss without failback) is returned as it serves: the
 * primary region is not started under the running service. A global front that died is started again, pointed
 * at the secondary's front; a secondary whose compute is gone is refused, nothing started.
 */
async function servingFromSecondary(dir: string, f: LabFacts, options: LabUpOptions): Promise<LabInfo> {
  const gf = f.regions!.globalFront!;
  const c = f.regions!.compute;
  const since = gf.switchedAt ?? 'an unrecorded time';
  if (options.regions === 1)
    throw new UserError(
      `the lab in ${dir} serves from its secondary region (since ${since}): it cannot become a one-region lab while it does`,
      {
        untouched: 'the running lab: nothing was started or stopped',
        next: '`drill lab down` stops both regions, then `drill lab up --regions 1`',
      },
    );
  if (!c.up || c.frontPort === null)
    throw new UserError(
      `the lab in ${dir} was left serving from the secondary region (since ${since}), but the secondary region's compute is not running`,
      {
        untouched: 'nothing was started: the primary region is not restarted under a lab recorded as serving from the secondary',
        next: '`drill lab down` stops both regions; `drill lab up` then starts the lab over in the primary region',
      },
    );
  if (!f.secondary.up) await startSecondaryAzurite(dir);
  if (!gf.alive) await startGlobalFront(dir, { region: 'secondary', upstreamPort: c.frontPort });
  options.say?.(
    `the lab in ${dir} serves from its secondary region since ${since}: returned as it serves, the primary region is not restarted (failback rebuilds it; \`drill lab down\` stops both regions)`,
  );
  const info = infoOf(dir, await collectFacts(dir), true);
  if (!info)
    throw new Error(`the lab in ${dir} serves from the secondary region but its state is incomplete (${regionPaths(dir).globalFront})`);
  return info;
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
    const code = await fetch(`${servedAt(info)}/orders?limit=1`, { signal: AbortSignal.timeout(2000) }).then(
      async (r) => (await r.arrayBuffer(), r.status),
      (e: Error) => e.message,
    );
    if (code === 200) return;
    last = `front answered GET /orders with ${code}`;
    await sleep(50);
  }
  throw new Error(`lab in ${p.dir} not serving in time: ${last}\n--- ${p.replicasLog} (tail) ---\n${await tail(p.replicasLog)}`);
}

/**
 * A fresh lab is restorable once its archiver has archived WAL and taken the base backup. Not a failure
 * when it is late: `drill lab status` then names what the archive lacks.
 */
/**
 * Lab up returns once the archive can serve a restore: a base backup and WAL after it. The base backup has its own
 * bound past lab up's: it copies the whole database, and a loaded machine once took 30 s for it (the lab then came up
 * without one, and `drill lab status` reported it as a problem).
 */
const BASE_BACKUP_WAIT_MS = 120_000;

async function waitBaseBackup(p: LabPaths, deadline: number): Promise<void> {
  const until = Math.max(deadline, performance.now() + BASE_BACKUP_WAIT_MS);
  while (performance.now() < until) {
    const s = await readWalArchiveState(p.walArchive.state);
    if (s?.baseBackup && s.archivedThrough) return;
    await sleep(100);
  }
  throw new UserError(`the lab's WAL archiver took no base backup within ${BASE_BACKUP_WAIT_MS / 1000} s`, {
    untouched: 'the lab was started and is stopped again; no data was changed',
    next: `read ${join(p.dir, 'logs', 'wal-archiver.log')} for why, then run drill lab up again`,
  });
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
  const recorded = await readDaemonState(labPaths(dir).daemonState);
  const latest = recorded?.replicas ?? [];
  // A daemon SIGKILLed leaves its WAL archiver running, and an archiver SIGKILLed leaves its pg_receivewal.
  const archiverPid = recorded?.walArchiver?.pid ?? f.daemon?.walArchiver?.pid ?? null;
  if (archiverPid !== null && (await isProcessUnder(archiverPid, dir))) {
    await terminate(archiverPid, 5000);
    stopped.push({ name: 'wal-archiver', pid: archiverPid });
  }
  const shipperPid = recorded?.logShipper?.pid ?? f.daemon?.logShipper?.pid ?? null;
  if (shipperPid !== null && (await isProcessUnder(shipperPid, dir))) {
    await terminate(shipperPid, 5000);
    stopped.push({ name: 'log-shipper', pid: shipperPid });
  }
  const replicatorPid = recorded?.replicator?.pid ?? f.daemon?.replicator?.pid ?? null;
  if (replicatorPid !== null && (await isProcessUnder(replicatorPid, dir))) {
    await terminate(replicatorPid, 5000);
    stopped.push({ name: 'replicator', pid: replicatorPid });
  }
  const receiverPid = (await readWalArchiveState(labPaths(dir).walArchive.state))?.receiverPid ?? null;
  if (receiverPid !== null && (await isProcessUnder(receiverPid, dir))) {
    await terminate(receiverPid, 3000);
    stopped.push({ name: 'pg_receivewal', pid: receiverPid });
  }
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
  const rp = regionPaths(dir);
  if (
    !existsSync(p.config) &&
    !existsSync(p.daemonState) &&
    !existsSync(labAzuriteStateFile(dir)) &&
    !existsSync(secondaryPaths(dir).azuriteState) &&
    !existsSync(rp.globalFront) &&
    !existsSync(rp.secondaryDb)
  )
    return { dir, stopped: [], wasStale: false };
  const result = await withLabLock(p.lock, async () => {
    const f = await collectFacts(dir);
    const r = f.regions;
    const wasStale =
      !(f.pgAlive && f.live) &&
      r?.globalFront?.active !== 'secondary' &&
      (f.pgAlive ||
        f.daemon !== null ||
        f.replicaPids.length > 0 ||
        f.azurite.alive ||
        f.secondary.alive ||
        r?.globalFront?.alive === true);
    const stopped: { name: string; pid: number }[] = [];
    // The global front first: the load then gets a refused connection, not a region going away under it.
    const gfPid = await stopGlobalFront(dir);
    if (gfPid !== null) stopped.push({ name: 'global-front', pid: gfPid });
    // Both regions' compute at once: each daemon drains its own replicas.
    const [primary, secondaryCompute] = await Promise.all([stopDaemonAndReplicas(dir, f), stopSecondaryCompute(dir)]);
    stopped.push(...primary, ...secondaryCompute);
    // Patroni (which stops its PostgreSQL) and etcd, by PID; the nodes' stop below then finds nothing left.
    if (f.config?.provider === 'patroni' || existsSync(join(dir, 'patroni.json'))) stopped.push(...(await stopPatroniLab(p)));
    // Both nodes, the secondary's database and both Azurites at once: a fast shutdown of the primary does not wait for a standby that is stopping too.
    await Promise.all([
      stopLabAzurite(dir).then((pid) => void (pid !== null && stopped.push({ name: 'azurite', pid }))),
      stopSecondaryAzurite(dir).then((pid) => void (pid !== null && stopped.push({ name: 'azurite-secondary', pid }))),
      stopSecondaryPostgres(dir).then((pid) => void (pid !== null && stopped.push({ name: 'postgres:secondary', pid }))),
      ...Object.keys(f.config?.nodes ?? {}).map(async (name) => {
        const data = p.node(name).data;
        const pid = await postmasterPid(data);
        if (pid === null || !(await isRunning(data))) return;
        await stopCluster(data, 'fast');
        stopped.push({ name: `postgres:${name}`, pid });
      }),
    ]);
    await removeFile(p.daemonState);
    await dropRestoreLeftovers(dir);
    return { dir, stopped, wasStale };
  });
  // The whole lab folder, the secondary region's restored database (secondary/pg) with it.
  if (options.purge) await rm(dir, { recursive: true, force: true });
  return result;
}

/** The secondary region's database as db.json records it, else whatever runs in its folder (a restore cut short). */
async function stopSecondaryPostgres(dir: string): Promise<number | null> {
  const recorded = await readSecondaryDb(dir).catch(() => null);
  const data = recorded?.dataDir ?? join(regionPaths(dir).secondaryPg, 'data');
  const pid = await postmasterPid(data);
  if (pid === null || !(await isProcessUnder(pid, data))) return null;
  if (recorded) await stopSecondaryDb(dir);
  else await stopCluster(data, 'fast');
  return pid;
}

/**
 * The damaged clusters a live restore moved aside for forensics (`quarantine/<run>/<node>`), its restore folders
 * (`pitr/<run>`) and restored copies never linked in (`pg/<node>/data.<run>`): kept until the lab goes down, then
 * dropped, any of them started by hand stopped first.
 */
export async function dropRestoreLeftovers(dir: string): Promise<void> {
  for (const root of [join(dir, 'quarantine'), join(dir, 'pitr')]) {
    if (!existsSync(root)) continue;
    for (const run of await readdir(root).catch(() => []))
      for (const d of await readdir(join(root, run)).catch(() => []))
        await stopCluster(join(root, run, d), 'immediate').catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
  // A restored copy beside a node's data directory that never became it (a restore refused or cut short).
  const pg = labPaths(dir).pg;
  for (const node of await readdir(pg).catch(() => [])) {
    const folder = join(pg, node);
    const inUse = await realpath(join(folder, 'data')).catch(() => null);
    for (const d of await readdir(folder).catch(() => [])) {
      const copy = join(folder, d);
      if (!d.startsWith(RESTORED_COPY_PREFIX) || copy === inUse) continue;
      await stopCluster(copy, 'immediate').catch(() => undefined);
      await rm(copy, { recursive: true, force: true });
    }
  }
}
