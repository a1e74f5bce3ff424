/** labStatus: what of a lab is running, checked by PID (/proc) and by asking the daemon. Changes nothing. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { postmasterPid } from '../adapters/postgres/cluster.ts';
import { isProcessUnder } from '../util/proc.ts';
import { labAzuriteStatus, labAzuriteView } from './azurite.ts';
import { getDaemonStatus } from './daemon/client.ts';
import { requestJson } from './daemon/http-json.ts';
import { OWNER, TEMPLATE_LABELS } from './daemon/supervisor.ts';
import { patroniComponents } from './patroni/processes.ts';
import { readLabConfig } from './patroni/status.ts';
import { labPaths, regionComputePaths } from './paths.ts';
import { readSecondaryDb, regionPaths } from './regions/contract.ts';
import { globalFrontStatus } from './regions/global-front.ts';
import { secondaryComputeStatus } from './regions/secondary-compute.ts';
import { databaseStatus, LAB_DB, nodeFacts } from './postgres/status.ts';
import { readDaemonState, readJson } from './state.ts';
import { logShippingStatus, shippingProblems } from './log-shipping.ts';
import { lagNowMs, readWalArchiveState, type ServerWalPosition } from '../adapters/postgres/backup/wal-state.ts';
import pg from 'pg';
import { lagMarginMs, listIntervalMs, measuredLagMs, type ReplicationState } from './regions/replication.ts';
import { labSecondaryView, secondaryAzuriteStatus, secondaryPaths } from './regions/secondary.ts';
import { DEFAULT_REPLICATION_LAG_MS } from '../config/defaults.ts';
import { formatDuration } from '../config/duration.ts';
import { DEFAULT_BASE_BACKUP_EVERY_MS, holeAfter } from './archive.ts';
import type {
  DaemonStatus,
  LabArchiveStatus,
  LabComponent,
  LabConfig,
  LabDatabaseStatus,
  LabDbNode,
  LabFacts,
  LabInfo,
  LabPart,
  LabProblem,
  LabRegionsInfo,
  LabRegionsStatus,
  LabReplicationStatus,
  LabStatus,
  ReplicaView,
} from './types.ts';

export async function collectFacts(dir: string): Promise<LabFacts> {
  const p = labPaths(dir);
  const [config, daemon, azurite, secondary] = await Promise.all([
    readLabConfig(p.config),
    readDaemonState(p.daemonState),
    labAzuriteStatus(dir),
    secondaryAzuriteStatus(dir),
  ]);
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
  const regions = await regionFacts(p.dir, config);
  return { config, nodes, daemon, daemonAlive, live, pgPid, pgAlive, replicaPids, azurite, secondary, ...(regions ? { regions } : {}) };
}

/** The global front, the secondary's compute and its database; undefined on a lab that never had any of them. */
async function regionFacts(dir: string, config: LabConfig | null): Promise<LabFacts['regions']> {
  const rp = regionPaths(dir);
  if (config?.regions !== 2 && !existsSync(rp.globalFront) && !existsSync(regionComputePaths(dir, 'secondary').daemonState))
    return undefined;
  const [globalFront, compute, sdb] = await Promise.all([globalFrontStatus(dir), secondaryComputeStatus(dir), readSecondaryDb(dir)]);
  const pid = sdb ? await postmasterPid(sdb.dataDir) : null;
  const running = sdb !== null && pid !== null && (await isProcessUnder(pid, sdb.dataDir));
  return { globalFront, compute, db: sdb ? { ...sdb, running, pid: running ? pid : null } : null };
}

const url = (port: number) => `http://127.0.0.1:${port}`;

/**
 * How to reach the lab. On a two-region lab `serviceUrl` is the global front; while it sends the load to the
 * secondary region, the lab is that region's compute and database (`db` is its single node).
 */
export function infoOf(dir: string, f: LabFacts, alreadyRunning: boolean): LabInfo | null {
  const gf = f.regions?.globalFront ?? null;
  return gf?.active === 'secondary' ? secondaryInfoOf(dir, f, alreadyRunning) : primaryInfoOf(dir, f, alreadyRunning);
}

function regionsInfo(f: LabFacts): LabRegionsInfo | undefined {
  const gf = f.regions?.globalFront;
  if (!gf) return undefined;
  const c = f.regions!.compute;
  return {
    active: gf.active,
    globalFrontUrl: url(gf.port),
    primaryFrontUrl: f.live ? url(f.live.front.port) : null,
    secondaryFrontUrl: c.up && c.frontPort !== null ? url(c.frontPort) : null,
  };
}

function secondaryInfoOf(dir: string, f: LabFacts, alreadyRunning: boolean): LabInfo | null {
  const r = f.regions!;
  const c = r.compute;
  if (!f.config || !r.globalFront || !c.up || c.controlPort === null || c.daemonPid === null) return null;
  const sdb = r.db;
  const port = sdb?.port ?? c.dbPort ?? 0;
  const node: LabDbNode = {
    name: 'secondary',
    role: 'primary',
    host: '127.0.0.1',
    port,
    dataDir: sdb?.dataDir ?? '',
    log: sdb?.logFile ?? '',
    pid: sdb?.pid ?? null,
  };
  return {
    dir: resolve(dir),
    serviceUrl: url(r.globalFront.port),
    controlUrl: url(c.controlPort),
    db: {
      host: '127.0.0.1',
      port,
      endpointPort: c.dbEndpointPort ?? port,
      database: LAB_DB.database,
      user: LAB_DB.user,
      superuser: LAB_DB.superuser,
      socketDir: join(regionPaths(dir).secondaryDir, 'sock'),
      dataDir: node.dataDir,
      replication: 'async',
      nodes: [node],
      provider: 'pg-promote',
    },
    replicas: c.desired,
    pids: { daemon: c.daemonPid, postgres: sdb?.pid ?? null },
    azurite: f.azurite.up && f.azurite.azurite ? labAzuriteView(f.azurite.azurite) : null,
    secondary: f.secondary.up && f.secondary.azurite ? labSecondaryView(f.secondary.azurite) : null,
    regions: regionsInfo(f),
    alreadyRunning,
  };
}

/** The primary region's view; on a two-region lab `serviceUrl` is still the global front (whichever region it serves). */
export function primaryInfoOf(dir: string, f: LabFacts, alreadyRunning: boolean): LabInfo | null {
  const p = labPaths(dir);
  // A dead primary leaves the lab reachable (daemon, front, standby): the info stays, so a rollback can mend it.
  if (!f.config || !f.daemon || !f.live) return null;
  const regions = regionsInfo(f);
  return {
    dir: p.dir,
    serviceUrl: regions?.globalFrontUrl ?? url(f.live.front.port),
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
    pids: { daemon: f.daemon.pid, postgres: f.pgAlive ? f.pgPid : null },
    azurite: f.azurite.up && f.azurite.azurite ? labAzuriteView(f.azurite.azurite) : null,
    ...(f.config.regions === 2 ? { secondary: f.secondary.up && f.secondary.azurite ? labSecondaryView(f.secondary.azurite) : null } : {}),
    ...(regions ? { regions } : {}),
    alreadyRunning,
  };
}

/** Replication into the secondary region as replication.json and the daemon's record of the replicator say; undefined on a one-region lab. */
async function replicationStatus(dir: string, f: LabFacts): Promise<LabReplicationStatus | undefined> {
  if (f.config?.regions !== 2) return undefined;
  const s = await readJson<ReplicationState>(secondaryPaths(dir).replication).catch(() => null);
  const view = f.daemon?.replicator;
  const pid = view?.pid ?? null;
  const alive = pid !== null && f.daemonAlive && (await isProcessUnder(pid, labPaths(dir).dir));
  const lagMs = f.config.replicationLagMs ?? DEFAULT_REPLICATION_LAG_MS;
  // Measured now, not at the last pass: a replicator that stopped passing shows a lag that keeps growing.
  const measured = s?.lastPassAt ? measuredLagMs(s.oldestMissing ? Date.parse(s.oldestMissing) : null, Date.now()) : null;
  return {
    state: alive ? 'running' : 'down',
    pid: alive ? pid : null,
    restarts: view?.restarts ?? 0,
    lastExit: view?.lastExit ?? null,
    lagSeconds: lagMs / 1000,
    measuredLagSeconds: measured === null ? null : Math.round(measured / 100) / 10,
    allowedLagSeconds: (lagMs + lagMarginMs(lagMs)) / 1000,
    lastPassAt: s?.lastPassAt ?? null,
    newestCopied: s?.newestCopied ?? null,
    pending: s?.lastPassAt ? s.pending : null,
    copiedTotal: s?.copiedTotal ?? 0,
    lastError: s?.errors[0] ? `${s.errors[0].at}: ${s.errors[0].message}` : null,
  };
}

/** Grace for a replicator that has just (re)started before "no pass yet" is a problem. */
const REPLICATION_START_GRACE_MS = 30_000;

function replicationProblems(r: LabReplicationStatus | undefined, f: LabFacts): LabProblem[] {
  if (f.config?.regions !== 2) return [];
  const out: LabProblem[] = [];
  const sec = f.secondary.azurite;
  if (!f.secondary.up)
    out.push({
      part: 'azurite-secondary',
      detail: sec
        ? `the secondary region's Azurite (pid ${sec.pid}, port ${sec.port}) ${f.secondary.alive ? 'does not answer' : 'is not running'}`
        : "the secondary region's Azurite is not running (no state recorded)",
    });
  if (!r) return out;
  const add = (detail: string) => out.push({ part: 'replication', detail });
  if (r.state === 'down')
    add(
      `the replicator is not running${r.lastExit ? ` (last exit: ${r.lastExit})` : ''}: nothing reaches the secondary region until it runs again`,
    );
  if (r.measuredLagSeconds !== null && r.measuredLagSeconds > r.allowedLagSeconds)
    add(
      `the secondary region's storage lags ${r.measuredLagSeconds}s behind the primary's (replicationLag ${r.lagSeconds}s, allowed up to ${r.allowedLagSeconds}s)${r.lastError ? `; last error: ${r.lastError}` : ''}`,
    );
  const startedMs = f.daemon?.replicator?.startedAt ? Date.now() - Date.parse(f.daemon.replicator.startedAt) : 0;
  if (r.lastPassAt === null && r.state === 'running' && startedMs > REPLICATION_START_GRACE_MS)
    add(`no replication pass ${Math.round(startedMs / 1000)}s after the replicator started${r.lastError ? `: ${r.lastError}` : ''}`);
  // A replicator that hangs keeps its last state, which may say it lacks nothing: how long ago it passed says more.
  const lagMs = r.lagSeconds * 1000;
  const sincePassMs = r.lastPassAt ? Date.now() - Date.parse(r.lastPassAt) : 0;
  if (r.state === 'running' && sincePassMs > listIntervalMs(lagMs) + lagMarginMs(lagMs))
    add(
      `the replicator (pid ${r.pid}) last finished a pass ${Math.round(sincePassMs / 1000)}s ago (it passes at least every ${listIntervalMs(lagMs) / 1000}s): blobs written since may not reach the secondary region`,
    );
  return out;
}

/** Patroni's states of a member that is doing its job. */
const MEMBER_OK = new Set(['running', 'streaming']);

/** Every broken part of a lab whose daemon runs, or of the leftovers of one whose daemon died. */
function problemsOf(f: LabFacts, database: LabDatabaseStatus | null, patroniParts: LabComponent[]): LabProblem[] {
  const out: LabProblem[] = [];
  const add = (part: LabPart, detail: string) => out.push({ part, detail });
  if (f.daemon && !f.daemonAlive) add('daemon', `daemon pid ${f.daemon.pid} is gone (or its PID now belongs to another process)`);
  if (!f.daemon) add('daemon', 'no daemon is recorded (daemon.json is missing)');
  if (f.daemonAlive && !f.live)
    add('control', `the daemon (pid ${f.daemon!.pid}) runs but its control API on port ${f.daemon!.ports.control} does not answer`);
  if (!f.daemonAlive && f.replicaPids.length > 0) add('replicas', `${f.replicaPids.length} replica(s) running without their daemon`);
  const live = f.live;
  if (live) {
    if (live.front.paused)
      add('front', `paused: the front on port ${live.front.port} refuses connections (\`drill lab resume-front\` ends it)`);
    if (live.ready < live.desired) {
      const notReady = live.replicas.filter((r) => !r.ready).map((r) => r.name);
      add('replicas', `${live.ready} of ${live.desired} replicas ready${notReady.length ? ` (not ready: ${notReady.join(', ')})` : ''}`);
    }
  }
  const cfg = f.config;
  if (cfg && database) {
    const nodes = database.nodes;
    const primary = nodes.find((n) => n.name === database.primary);
    const writers = nodes.filter((n) => n.alive && n.inRecovery === false);
    if (!primary?.alive) {
      const other = writers.find((n) => n.name !== database.primary);
      add(
        'primary',
        `${database.primary} (PostgreSQL on port ${primary?.port ?? cfg.nodes[database.primary]?.port ?? '?'}) is not running: ${other ? `${other.name} takes writes but the lab does not name it the primary` : 'no node takes writes'}`,
      );
    } else if (primary.inRecovery === true)
      add('primary', `${primary.name} is recorded as primary but is in recovery: no node takes writes`);
    else if (primary.inRecovery === null)
      add('primary', `${primary.name} (pid ${primary.pid}, port ${primary.port}) runs but does not answer queries`);
    if (writers.length > 1) add('primary', `${writers.map((n) => n.name).join(' and ')} all take writes (split brain)`);
    for (const n of nodes) {
      if (n.role !== 'standby') continue;
      if (!n.alive) add('standby', `standby ${n.name} (PostgreSQL on port ${n.port}) is not running`);
      else if (n.streaming === false && n.inRecovery !== false)
        add('standby', `standby ${n.name} runs but does not stream from ${database.primary}`);
    }
    for (const w of database.walsenders)
      if (w.stopped)
        add(
          'walsender',
          `walsender pid ${w.pid} on ${database.primary} (to ${w.to ?? 'an unknown standby'}) is stopped (state T): WAL does not reach ${w.to ?? 'it'}; \`kill -CONT ${w.pid}\` resumes it`,
        );
    if (live && primary?.alive && cfg.provider !== 'patroni' && live.db.primaryPort !== primary.port)
      add(
        'db-endpoint',
        `the service's database endpoint points at port ${live.db.primaryPort}, but the primary ${primary.name} is on port ${primary.port}`,
      );
    if (database.patroni) {
      if (!database.patroni.members) add('patroni', 'no Patroni member answers GET /cluster');
      for (const m of database.patroni.members ?? [])
        if (!MEMBER_OK.has(m.state)) add('patroni', `member ${m.name} (${m.role}) is ${m.state}`);
    }
  }
  for (const c of patroniParts)
    if (!c.alive) add(c.name === 'etcd' ? 'etcd' : 'patroni', `${c.name}${c.pid ? ` pid ${c.pid}` : ''} (port ${c.port}) is not running`);
  if (f.azurite.azurite && !f.azurite.up)
    add(
      'azurite',
      `Azurite (pid ${f.azurite.azurite.pid}, port ${f.azurite.azurite.port}) ${f.azurite.alive ? 'does not answer' : 'is not running'}`,
    );
  return out;
}

/** The primary's WAL insert position, or null when it does not answer within a second. */
async function primaryLsn(port: number): Promise<ServerWalPosition | null> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: LAB_DB.superuser, database: 'postgres', connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return (
      await c.query<ServerWalPosition>('SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS "walFile"')
    ).rows[0]!;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => {});
  }
}

/** The WAL archive as its archiver's state file and the daemon's record of it say; null when the lab never had one. */
async function archiveStatus(dir: string, f: LabFacts, database: LabDatabaseStatus | null): Promise<LabArchiveStatus | null> {
  const p = labPaths(dir);
  const s = await readWalArchiveState(p.walArchive.state);
  const view = f.daemon?.walArchiver;
  if (!s && !view) return null;
  const pid = view?.pid ?? null;
  const alive = pid !== null && f.daemonAlive && (await isProcessUnder(pid, p.dir));
  const primary = database?.nodes.find((n) => n.name === database.primary && n.alive && n.inRecovery === false);
  const lsn = primary ? await primaryLsn(primary.port) : null;
  const archiveLagMs = f.config?.archiveLagMs ?? s?.archiveLagMs ?? 60_000;
  return {
    state: alive ? (s?.pid === pid ? s.state : 'starting') : 'down',
    pid: alive ? pid : null,
    restarts: view?.restarts ?? 0,
    archivedThrough: s?.archivedThrough?.segment ?? null,
    timeline: s?.archivedThrough?.timeline ?? null,
    lagSeconds: s?.archivedThrough ? Math.round(lagNowMs(s, lsn, Date.now()) / 100) / 10 : null,
    archiveLagSeconds: archiveLagMs / 1000,
    baseBackup: s?.baseBackup ?? null,
    baseBackupEverySeconds: (f.config?.baseBackupEveryMs ?? DEFAULT_BASE_BACKUP_EVERY_MS) / 1000,
    holes: (s?.holes ?? []).map(({ from, to, count, detail, foundAt }) => ({
      from,
      to,
      count,
      detail,
      foundAt,
      beforeBaseBackup: s?.baseBackup ? !holeAfter(foundAt, s.baseBackup.at) : false,
    })),
    lastError: s?.lastError ?? null,
  };
}

/** Grace for an archiver that has just (re)started before "nothing archived yet" is a problem. */
const ARCHIVE_START_GRACE_MS = 30_000;

function archiveProblems(a: LabArchiveStatus | null, f: LabFacts): LabProblem[] {
  if (!a) return [];
  const out: LabProblem[] = [];
  const add = (detail: string) => out.push({ part: 'wal-archive', detail });
  const view = f.daemon?.walArchiver;
  if (a.state === 'down')
    add(
      `the WAL archiver is not running${view?.lastExit ? ` (last exit: ${view.lastExit})` : ''}: WAL written now is not archived until it runs again`,
    );
  if (a.lagSeconds !== null && a.lagSeconds > a.archiveLagSeconds)
    add(
      `the archive lags ${a.lagSeconds}s behind the primary (allowed ${a.archiveLagSeconds}s), archived through ${a.archivedThrough}${a.lastError ? `; last error: ${a.lastError}` : ''}`,
    );
  const startedMs = view?.startedAt ? Date.now() - Date.parse(view.startedAt) : 0;
  if (a.archivedThrough === null && a.state !== 'down' && startedMs > ARCHIVE_START_GRACE_MS)
    add(`nothing archived ${Math.round(startedMs / 1000)}s after the archiver started${a.lastError ? `: ${a.lastError}` : ''}`);
  if (a.baseBackup === null && a.archivedThrough !== null && startedMs > ARCHIVE_START_GRACE_MS)
    add('no base backup beside the archive: a restore has nothing to start from (see logs/wal-archiver.log)');
  // Twice the interval: one was missed, not just due. A restore then replays all the WAL since the last one.
  const baseAgeMs = a.baseBackup ? Date.now() - Date.parse(a.baseBackup.at) : 0;
  if (a.state !== 'down' && baseAgeMs > 2 * a.baseBackupEverySeconds * 1000)
    add(
      `the newest base backup ${a.baseBackup!.folder} is ${formatDuration(Math.round(baseAgeMs / 1000) * 1000)} old, and the archiver takes one every ${formatDuration(a.baseBackupEverySeconds * 1000)}: a restore replays all the WAL since (see logs/wal-archiver.log)`,
    );
  // A hole before the newest base backup no longer stops a restore: the archiver takes a new one when it finds a hole.
  for (const h of a.holes.filter((x) => !x.beforeBaseBackup)) add(`hole in the archive: ${h.detail}`);
  return out;
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
    archive: null,
    logShipping: null,
    problems: [],
  };
  if (!existsSync(dir)) return empty;
  const f = await collectFacts(dir);
  if (!f.config && !f.daemon && !f.azurite.alive && !f.secondary.alive && !f.regions) return empty;
  const regions = regionsStatus(f);
  // After a region loss the lab is what serves: the secondary region, not a broken primary.
  if (regions?.active === 'secondary') return secondaryServingStatus(dir, f, regions);
  // Up is the daemon running: a lab with a dead primary is up and broken, not down (its front still answers).
  const up = f.daemonAlive;
  const r = f.regions;
  // Anything recorded as running while the daemon is not is a leftover of a crash.
  const stale =
    !up &&
    (f.nodes.some((n) => n.alive) ||
      f.daemon !== null ||
      f.replicaPids.length > 0 ||
      f.azurite.alive ||
      f.secondary.alive ||
      r?.globalFront?.alive === true ||
      r?.compute.daemonPid != null ||
      r?.db?.running === true);
  const database = f.config ? await databaseStatus(f.config, f.nodes) : null;
  const patroniParts = f.config ? await patroniComponents(dir, f.config) : [];
  // A lab stopped on purpose has one thing to say: it is not running. Its parts are down by design.
  const archive = up || stale ? await archiveStatus(dir, f, database) : null;
  const replication = up || stale ? await replicationStatus(dir, f) : undefined;
  const logShipping = up || stale ? await logShippingStatus(dir, f.daemonAlive) : null;
  const problems: LabProblem[] =
    up || stale
      ? [
          ...problemsOf(f, database, patroniParts),
          ...(up ? archiveProblems(archive, f) : []),
          ...(up ? replicationProblems(replication, f) : []),
          ...(up ? shippingProblems(logShipping).map((detail) => ({ part: 'log-shipper' as const, detail })) : []),
          ...(up ? globalFrontProblems(f) : []),
        ]
      : [{ part: 'daemon', detail: 'the lab is not running: `drill lab up` starts it' }];
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
    stale,
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
      ...(archive ? [{ name: 'wal-archiver' as const, pid: archive.pid, port: null, alive: archive.state !== 'down' }] : []),
      ...(f.secondary.azurite
        ? [{ name: 'azurite-secondary' as const, pid: f.secondary.azurite.pid, port: f.secondary.azurite.port, alive: f.secondary.up }]
        : []),
      ...(replication ? [{ name: 'replicator' as const, pid: replication.pid, port: null, alive: replication.state === 'running' }] : []),
      ...(logShipping ? [{ name: 'log-shipper' as const, pid: logShipping.pid, port: null, alive: logShipping.state !== 'down' }] : []),
      ...(r?.globalFront
        ? [{ name: 'global-front' as const, pid: r.globalFront.pid, port: r.globalFront.port, alive: r.globalFront.alive }]
        : []),
    ],
    replicas,
    desired: f.live?.desired ?? f.config?.replicas ?? 0,
    database: database ?? null,
    archive,
    ...(replication === undefined ? {} : { replication }),
    logShipping,
    ...(regions ? { regions } : {}),
    problems,
  };
}

export function regionsStatus(f: LabFacts): LabRegionsStatus | undefined {
  const r = f.regions;
  if (!r) return undefined;
  const gf = r.globalFront;
  const primaryRuns = f.daemonAlive || f.nodes.some((n) => n.alive);
  return {
    active: gf?.active ?? null,
    globalFront: gf
      ? {
          pid: gf.pid,
          port: gf.port,
          url: url(gf.port),
          controlPort: gf.controlPort,
          alive: gf.alive,
          upstreamPort: gf.upstreamPort,
          switchedAt: gf.switchedAt,
        }
      : null,
    secondary: { compute: { ...r.compute, walArchiver: false, replicator: false }, database: r.db },
    note:
      gf?.active === 'secondary'
        ? `serving from the secondary region since ${gf.switchedAt ?? 'an unrecorded time'}; primary region ${primaryRuns ? 'partly running again, not serving' : 'down'}`
        : null,
  };
}

/** A two-region lab serving from the primary: the global front must run and send the load to the primary's front. */
export function globalFrontProblems(f: LabFacts): LabProblem[] {
  if (f.config?.regions !== 2) return [];
  const gf = f.regions?.globalFront ?? null;
  const add = (detail: string): LabProblem[] => [{ part: 'global-front', detail }];
  if (!gf) return add('no global front runs: the load has no stable address in front of the regions (`drill lab up` starts it)');
  if (!gf.alive)
    return add(`the global front (pid ${gf.pid}, port ${gf.port}) is not running: the load reaches no region (\`drill lab up\` starts it)`);
  if (f.live && gf.upstreamPort !== f.live.front.port)
    return add(
      `the global front sends the primary region's load to port ${gf.upstreamPort ?? 'none'}, but the primary's front is on port ${f.live.front.port}`,
    );
  return [];
}

/**
 * Status of a lab whose global front serves from the secondary region: the dead primary is the drill's doing,
 * said once, not listed as broken parts; what is checked is what serves.
 */
async function secondaryServingStatus(dir: string, f: LabFacts, regions: LabRegionsStatus): Promise<LabStatus> {
  const r = f.regions!;
  const gf = r.globalFront!;
  const c = r.compute;
  const up = gf.alive && c.up;
  const problems: LabProblem[] = [];
  const add = (part: LabPart, detail: string) => problems.push({ part, detail });
  if (!gf.alive)
    add(
      'global-front',
      `the global front (pid ${gf.pid}, port ${gf.port}) is not running: the load reaches no region (\`drill lab up\` starts it again, pointed at the secondary)`,
    );
  if (!c.up)
    add(
      'secondary-compute',
      `the secondary region's compute is not running${c.daemonPid === null && c.dbPort !== null ? ` (it served database port ${c.dbPort})` : ''}: nothing serves the load`,
    );
  else if (c.ready < c.desired) add('secondary-compute', `${c.ready} of ${c.desired} replicas ready in the secondary region`);
  if (gf.alive && c.up && gf.upstreamPort !== c.frontPort)
    add(
      'global-front',
      `the global front sends the load to port ${gf.upstreamPort ?? 'none'}, but the secondary region's front is on port ${c.frontPort}`,
    );
  if (r.db && !r.db.running) add('secondary-db', `the secondary region's database (port ${r.db.port}, ${r.db.dataDir}) is not running`);
  if (!f.secondary.up) add('azurite-secondary', "the secondary region's Azurite is not answering: files and logs cannot be stored");
  const live = c.up && c.controlPort !== null ? await getDaemonStatus(url(c.controlPort), { timeoutMs: 2000 }).catch(() => null) : null;
  const sec = f.secondary.azurite;
  return {
    dir,
    up,
    // Not serving, yet recorded as the secondary serving: what is left is cleaned by `drill lab down`.
    stale: !up,
    info: up ? secondaryInfoOf(dir, f, true) : null,
    components: [
      { name: 'global-front', pid: gf.pid, port: gf.port, alive: gf.alive },
      { name: 'secondary-daemon', pid: c.daemonPid, port: c.controlPort, alive: c.up },
      { name: 'secondary-front', pid: c.daemonPid, port: c.frontPort, alive: c.up },
      { name: 'secondary-log-shipper', pid: c.logShipperPid, port: null, alive: c.logShipperPid !== null },
      ...(r.db ? [{ name: 'secondary-db' as const, pid: r.db.pid, port: r.db.port, alive: r.db.running }] : []),
      ...(sec ? [{ name: 'azurite-secondary' as const, pid: sec.pid, port: sec.port, alive: f.secondary.up }] : []),
    ],
    replicas: live?.replicas ?? [],
    desired: c.desired,
    database: null,
    archive: null,
    logShipping: null,
    regions,
    problems,
  };
}
