/**
 * Real PostgreSQL behind the miniature CloudNativePG operator's instance pods: one server per instance on a
 * free loopback port, each with its own data directory that outlives its pod (as a PVC does), and a TCP proxy
 * standing in for the `<cluster>-rw` Service that follows the pod labelled primary once it is Ready.
 *
 * As the real operator and instance manager do: the first instance is initdb'd as the primary, the others
 * are base backups streaming from it (their primary_conninfo names the -rw Service, so they follow a new
 * primary); deleting a pod with grace 0 sends SIGKILL to its postmaster and every child before the API answers
 * (or, with killDelayMs, that much later: a force-deleted pod's containers outlive its object);
 * the operator's failover runs pg_promote on the chosen standby; an instance coming back (its pod recreated)
 * rejoins as a replica of whoever is primary by pg_rewind, or a fresh base backup when rewind cannot.
 * As root, PostgreSQL runs as the postgres user (lib/adapters/postgres/cluster.ts).
 *
 * Recovery bootstrap (a Cluster with `spec.bootstrap.recovery` naming an `externalClusters` entry with a
 * `barmanObjectStore`): the first instance's data is restored by the project's own point-in-time restore
 * (lib/adapters/postgres/backup/pitr.ts `restoreToPoint`) from the Blob store the entry names, with the
 * credentials read from the Secrets its `azureCredentials` reference; then it starts as the primary and the other
 * instances are base backups of it, as for an initdb cluster. What is modelled: the spec the operator reads
 * (source, destinationPath, serverName, Secret references, targetLSN with exclusive: true, or no target for the end
 * of the archive), the Secrets read from the API server, a real restore of real data, a fresh volume per Cluster
 * (a Cluster deleted and created again under the same name starts from an empty data directory). What is not:
 * barman-cloud's object layout (`<serverName>/base/...`, `<serverName>/wals/...`) and tools; the stand-in reads the
 * project's own layout (`<path>/postgres/<serverName>/...`, as `drill backup --kind physical` and the WAL shipper
 * write it) under the same destinationPath; targetTime, targetXID, targetName, inclusive LSN targets and
 * `backup:` sources; the recovery Job's retries (a failed restore leaves the pod not Ready, the error in `errors`).
 *
 * With `service`, the -rw proxy stands for that Service instead: it reaches the Ready instance pod its
 * `spec.selector` matches, of whichever Cluster (so patching the selector repoints the application), and
 * replicas stream from their own cluster's primary directly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensureRoleAndDatabase,
  giveToServerUser,
  initCluster,
  isRunning,
  startCluster,
  stopCluster,
  writeNodeConf,
  type PgConn,
} from '../../../lib/adapters/postgres/cluster.ts';
import { clearRecoverySettings, restoreToPoint } from '../../../lib/adapters/postgres/backup/pitr.ts';
import { readCatalog } from '../../../lib/adapters/postgres/backup/catalog.ts';
import { backupStoreFromEnv } from '../../../lib/adapters/postgres/backup/store.ts';
import { parseLsn } from '../../../lib/backup/wal-names.ts';
import { blobEnvFromSecretValues, parseDestinationPath } from '../../../lib/adapters/kubernetes/cnpg-manifest.ts';
import type { RestoreTarget } from '../../../lib/adapters/types.ts';
import {
  cloneStandby,
  ensureSlot,
  isStandbyDir,
  rewindToStandby,
  waitStreaming,
  withClient,
} from '../../../lib/adapters/postgres/standby.ts';
import { cnpgSyncOf } from '../../../lib/adapters/postgres/failover/cnpg.ts';
import { DbEndpoint } from '../../../lib/lab/daemon/db-endpoint.ts';
import { freePort } from '../ports.ts';
import type { CnpgRuntime, CnpgRuntimeHost, KubeObject } from './types.ts';

export interface CnpgPostgresOptions {
  /** A folder the postgres user can traverse (test/support/tmp.ts); each instance gets a subfolder. */
  root: string;
  /** The instance names the Cluster will have (`pg-1`, `pg-2`). */
  instances: string[];
  /** Application role and database, as CloudNativePG bootstraps them (`app`), owner of the database. */
  app?: { user: string; database: string };
  /** When set, the app role logs in over TCP with this password (scram-sha-256); otherwise trust. */
  appPassword?: string;
  /**
   * How long a pod deleted with grace 0 keeps its PostgreSQL running after the API server removed the object.
   * A force delete removes the object at once and the kubelet kills the containers only when it notices: seconds
   * on a healthy node, never on a partitioned one (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination-forced:
   * "the API server does not wait for confirmation from the kubelet that the Pod has been terminated on the
   * node it was running on ... Pods that are set to terminate immediately will still be given a small grace
   * period before being force killed"). Meanwhile it keeps serving the connections it has (the -rw proxy here keeps pointing at it
   * until another pod is labelled primary) and its WAL senders keep streaming; its pod's bound service-account
   * token is invalidated with the pod object, so the instance manager cannot read the operator's "pending" and stop it.
   * Default 0: the postmaster and its children are SIGKILLed before the DELETE is answered.
   */
  killDelayMs?: number;
  /** The Service the -rw proxy stands for (see the header); absent: it follows the first cluster's primary pod. */
  service?: { namespace: string; name: string };
}

export interface CnpgInstance {
  name: string;
  port: number;
  dataDir: string;
  logFile: string;
  socketDir: string;
}

export interface CnpgPostgres {
  runtime: CnpgRuntime;
  /** The `-rw` Service's loopback address. */
  rw: { host: string; port: number };
  instances: Map<string, CnpgInstance>;
  /** Direct connection to one instance as the superuser (what a test asserts through). */
  conn(instance: string, database?: string): PgConn;
  /** The postmaster PID of a running instance, or null. */
  pid(instance: string): number | null;
  /** Every kill done for a removed pod: instance, postmaster PID and its children, when its pod was removed and when it was killed. */
  readonly kills: { instance: string; pid: number; children: number[]; deletedAt: number; at: number }[];
  /** Which instance the -rw Service reaches now, and every switch it made. */
  readonly rwLog: string[];
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The postmaster PID from postmaster.pid when that process runs with this data directory, else null (sync: see killNow). */
function livePostmaster(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) [ZX]/s.test(stat)) return null;
    if (
      !readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        .split('\0')
        .some((a) => a === dataDir || a.startsWith(`${dataDir}/`))
    )
      return null;
  } catch {
    return null;
  }
  return Number.isInteger(pid) && pid > 1 ? pid : null;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

/**
 * The host dies, synchronously: the postmaster is stopped so it forks nothing more, then SIGKILL goes to its
 * children and to itself, all before this returns (so before the API server answers the DELETE); the kernel
 * ends them moments later.
 */
function killNow(dataDir: string): { pid: number; children: number[] } | null {
  const pid = livePostmaster(dataDir);
  if (pid === null) return null;
  signal(pid, 'SIGSTOP');
  let children: number[] = [];
  try {
    const raw = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    children = raw === '' ? [] : raw.split(/\s+/).map(Number);
  } catch {
    children = [];
  }
  for (const c of children) signal(c, 'SIGKILL');
  signal(pid, 'SIGKILL');
  return { pid, children };
}

export async function startCnpgPostgres(o: CnpgPostgresOptions): Promise<CnpgPostgres> {
  const app = o.app ?? { user: 'app', database: 'app' };
  const instances = new Map<string, CnpgInstance>();
  /** An instance's folder and port: the named ones at start, a recovery cluster's when its first pod starts. */
  const allocate = async (name: string): Promise<CnpgInstance> => {
    const dir = join(o.root, name);
    const i = { name, port: await freePort(), dataDir: join(dir, 'data'), logFile: join(dir, 'postgres.log'), socketDir: join(dir, 's') };
    instances.set(name, i);
    return i;
  };
  for (const name of o.instances) await allocate(name);
  /** The Cluster (uid) whose volume each instance's data directory is: a new Cluster of the same name gets a new one. */
  const volumeOf = new Map<string, string>();
  /** Instance names of one cluster (`<cluster>-<n>`), among every cluster the runtime serves. */
  const membersOf = (cluster: string) =>
    [...instances.keys()].filter((n) => n.startsWith(`${cluster}-`) && /^\d+$/.test(n.slice(cluster.length + 1)));
  const clusterNameOf = (instance: string) => instance.replace(/-\d+$/, '');
  const rwLog: string[] = [];
  const kills: CnpgPostgres['kills'] = [];
  const rw = new DbEndpoint(0, (line) => rwLog.push(line));
  const rwPort = await rw.listen(0);
  let rwTarget: string | undefined;
  let host: CnpgRuntimeHost | undefined;
  let stopped = false;
  /** Pod uid each instance's processes belong to now; a kill or start for an older pod is stale. */
  const podOf = new Map<string, string>();
  /** Instances whose start (or promotion) finished and whose pod has not been removed since. */
  const serving = new Set<string>();
  /** Instances whose pod was force-deleted and whose processes still run (killDelayMs). */
  const lingering = new Set<string>();
  /** Where each instance's pod lives, once it had one. */
  const podNs = new Map<string, { namespace: string; cluster: string }>();
  /** One operation at a time per instance (start, promote, rejoin), in order. */
  const chains = new Map<string, Promise<unknown>>();
  const serial = <T>(instance: string, fn: () => Promise<T>): Promise<T> => {
    const next = (chains.get(instance) ?? Promise.resolve()).catch(() => undefined).then(fn);
    chains.set(instance, next);
    return next;
  };

  const inst = (name: string): CnpgInstance => {
    const i = instances.get(name);
    if (!i) throw new Error(`cnpg runtime: ${name} is not one of ${[...instances.keys()].join(', ')}`);
    return i;
  };
  const conn = (name: string, database = 'postgres'): PgConn => ({ host: '127.0.0.1', port: inst(name).port, user: SUPERUSER, database });
  const clusterOf = (pod: KubeObject) => host!.get('clusters', pod.metadata.namespace, pod.metadata.labels!['cnpg.io/cluster']!);
  // Behind a Service (o.service) the proxy may reach another cluster: replicas then stream from their own primary.
  const standbyId = (name: string, primary: string) => ({
    name,
    port: inst(name).port,
    socketDir: inst(name).socketDir,
    primary: { host: '127.0.0.1', port: o.service ? inst(primary).port : rwPort, user: SUPERUSER },
  });

  /**
   * Synchronous replication as the instance manager applies it on the primary, from `.spec.postgresql.synchronous`
   * or the legacy `minSyncReplicas`: `ANY n ("pg-2","pg-3")` (quorum) or `FIRST n (...)` (priority). (The real
   * operator lists only the replicas it sees, and with dataDurability preferred drops those that are gone;
   * listing every other instance is the same while all of them run.)
   */
  async function applySyncReplicas(cluster: KubeObject | undefined, primary: string): Promise<void> {
    const sync = cnpgSyncOf(cluster?.spec);
    const others = membersOf(clusterNameOf(primary)).filter((n) => n !== primary);
    const names =
      sync.mode === 'async' ? '' : `${sync.mode === 'sync' ? 'FIRST' : 'ANY'} ${sync.number} (${others.map((n) => `"${n}"`).join(',')})`;
    await withClient(conn(primary), async (c) => {
      await c.query(`ALTER SYSTEM SET synchronous_standby_names = ${c.escapeLiteral(names)}`);
      await c.query('SELECT pg_reload_conf()');
    });
  }

  /** Point the -rw proxy at the Ready pod labelled primary, as the Service's endpoints follow the pods. */
  function followPrimary(namespace: string, cluster: string): void {
    const primary = [...instances.keys()]
      .map((n) => host!.get('pods', namespace, n))
      .find(
        (p) =>
          p &&
          p.metadata.labels?.['cnpg.io/cluster'] === cluster &&
          p.metadata.labels?.['cnpg.io/instanceRole'] === 'primary' &&
          !p.metadata.deletionTimestamp &&
          (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'),
      );
    const name = primary?.metadata.name;
    if (!name || name === rwTarget) return;
    rwTarget = name;
    rw.repoint(inst(name).port);
    rwLog.push(`-rw -> ${name}`);
  }
  /** With o.service: the proxy reaches the Ready instance pod the Service's selector matches, as its endpoints would. */
  function followService(svc: { namespace: string; name: string }): void {
    const selector: Record<string, string> = host!.get('services', svc.namespace, svc.name)?.spec?.selector ?? {};
    const wanted = Object.entries(selector);
    if (wanted.length === 0) return;
    const pod = [...instances.keys()]
      .map((n) => host!.get('pods', svc.namespace, n))
      .find(
        (p) =>
          p &&
          wanted.every(([k, v]) => p.metadata.labels?.[k] === v) &&
          !p.metadata.deletionTimestamp &&
          (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'),
      );
    const name = pod?.metadata.name;
    if (!name || name === rwTarget) return;
    rwTarget = name;
    const cut = rw.repoint(inst(name).port);
    rwLog.push(`service ${svc.name} -> ${name} (${cut} connections closed)`);
  }
  let unsubscribe: (() => void) | undefined;

  /** Until the operator is not mid-switch, and the primary it names runs (or is `self`): who an instance follows. */
  async function settledPrimary(pod: KubeObject, self: string): Promise<string> {
    for (;;) {
      if (stopped) throw new Error('runtime stopped');
      const s = clusterOf(pod)?.status;
      if (
        s?.currentPrimary &&
        s.currentPrimary === s.targetPrimary &&
        (s.currentPrimary === self || (serving.has(s.currentPrimary) && (await isRunning(inst(s.currentPrimary).dataDir))))
      )
        return s.currentPrimary;
      await sleep(50);
    }
  }

  async function bootstrapPrimary(i: CnpgInstance): Promise<void> {
    await initCluster(i.dataDir, {
      port: i.port,
      socketDir: i.socketDir,
      superuser: SUPERUSER,
      settings: { dynamic_shared_memory_type: 'mmap' },
    });
    if (o.appPassword !== undefined) {
      // The app role over TCP needs its password; everything else keeps the lab's loopback trust.
      const hba = join(i.dataDir, 'pg_hba.conf');
      await writeFile(hba, `host all ${app.user} 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    }
    await startCluster(i.dataDir, { logFile: i.logFile });
    await ensureRoleAndDatabase(conn(i.name), { role: app.user, database: app.database });
    await withClient(conn(i.name), async (c) => {
      // pg_stat_replication's details are for pg_monitor: the drill reads replication as this role.
      await c.query(`GRANT pg_monitor TO ${c.escapeIdentifier(app.user)}`);
      if (o.appPassword !== undefined)
        await c.query(`ALTER ROLE ${c.escapeIdentifier(app.user)} PASSWORD ${c.escapeLiteral(o.appPassword)}`);
    });
  }

  /**
   * The `full-recovery` Job: the newest physical base backup of `serverName` under `destinationPath` that ended
   * before the target, plus archived WAL, restored and checked by pitr.ts, then put in the instance's volume.
   */
  async function recoverPrimary(i: CnpgInstance, cluster: KubeObject): Promise<string> {
    const rec = cluster.spec.bootstrap.recovery;
    const ext = (cluster.spec.externalClusters ?? []).find((e: { name: string }) => e.name === rec.source);
    const bos = ext?.barmanObjectStore;
    if (!bos) throw new Error(`external cluster ${rec.source} has no barmanObjectStore: only object-store recovery is modelled`);
    const t = rec.recoveryTarget ?? {};
    const unmodelled = Object.keys(t).filter((k) => !['targetLSN', 'exclusive'].includes(k));
    if (unmodelled.length > 0 || (t.targetLSN !== undefined && t.exclusive !== true))
      throw new Error(`recoveryTarget ${JSON.stringify(t)} is not modelled: only targetLSN with exclusive: true, or none (latest)`);
    const values: Record<string, string> = {};
    for (const [field, ref] of Object.entries(bos.azureCredentials ?? {}) as [string, { name: string; key: string }][]) {
      const secret = host!.get('secrets', cluster.metadata.namespace, ref.name);
      const raw = (secret?.data as Record<string, string> | undefined)?.[ref.key];
      if (!raw) throw new Error(`secret ${ref.name} has no key ${ref.key}`);
      values[field] = Buffer.from(raw, 'base64').toString('utf8');
    }
    const where = parseDestinationPath(bos.destinationPath);
    const store = backupStoreFromEnv(where.container, where.prefix, blobEnvFromSecretValues(bos.destinationPath, values));
    const serverName: string = bos.serverName ?? ext.name;
    const target: RestoreTarget = t.targetLSN ? { lsn: t.targetLSN, inclusive: false } : 'latest';
    const entries = (await readCatalog(store, { kind: 'physical', cluster: serverName })).filter(
      (e) => e.manifest && (target === 'latest' || parseLsn(e.manifest.lsn.end) <= parseLsn(target.lsn)),
    );
    const entry = entries[entries.length - 1];
    if (!entry?.manifest) throw new Error(`no physical base backup of ${serverName} in ${bos.destinationPath} before the target`);
    const root = join(o.root, `${i.name}-recovery`);
    const r = await restoreToPoint({
      store,
      manifest: entry.manifest,
      folder: entry.folder,
      target,
      systemId: entry.manifest.cluster.systemIdentifier,
      root,
      port: await freePort(),
      socketDir: i.socketDir,
      database: app.database,
      runId: cluster.metadata.uid!,
    });
    // The Job's pod ends with the restore: its start and end are what the drill reads the restore's time from.
    host?.finishJob(cluster.metadata.namespace!, i.name, 'full-recovery', r.ok);
    if (!r.ok) throw new Error(`full-recovery of ${i.name} from ${entry.folder}: ${r.problem}`);
    await mkdir(join(o.root, i.name), { recursive: true, mode: 0o755 });
    await giveToServerUser(join(o.root, i.name));
    await rm(i.dataDir, { recursive: true, force: true });
    await rename(r.dataDir, i.dataDir);
    await rm(root, { recursive: true, force: true });
    await clearRecoverySettings(i.dataDir);
    await writeNodeConf(i.dataDir, { port: i.port, socketDir: i.socketDir });
    await startCluster(i.dataDir, { logFile: i.logFile });
    return `restored from ${entry.folder} to ${r.marker?.reachedLsn ?? '?'} (bootstrap.recovery${target === 'latest' ? ', latest' : `, before ${target.lsn}`})`;
  }

  /** The instance as a streaming replica of `primary`: started as it is if it already is one, else rewound, else copied. */
  async function asReplica(i: CnpgInstance, primary: string): Promise<string> {
    const id = standbyId(i.name, primary);
    await ensureSlot(conn(primary), i.name);
    if (isStandbyDir(i.dataDir)) {
      await startCluster(i.dataDir, { logFile: i.logFile });
      try {
        await waitStreaming(conn(primary), i.name, { timeoutMs: 15_000 });
        return 'restarted as a replica';
      } catch {
        await stopCluster(i.dataDir, 'fast');
      }
    }
    if (existsSync(join(i.dataDir, 'PG_VERSION'))) {
      try {
        await rewindToStandby(conn(primary), i.dataDir, id);
        await startCluster(i.dataDir, { logFile: i.logFile });
        await waitStreaming(conn(primary), i.name, { timeoutMs: 30_000 });
        return 'rewound with pg_rewind';
      } catch {
        await stopCluster(i.dataDir, 'immediate').catch(() => undefined);
      }
    }
    await cloneStandby(conn(primary), i.dataDir, id);
    await startCluster(i.dataDir, { logFile: i.logFile });
    await waitStreaming(conn(primary), i.name, { timeoutMs: 30_000 });
    return 'copied with pg_basebackup';
  }

  const runtime: CnpgRuntime = {
    lingering: (instance) => lingering.has(instance),

    async mostAdvanced(candidates) {
      const received = await Promise.all(
        candidates.map((n) =>
          withClient(
            conn(n),
            (c) => c.query<{ lsn: string | null }>("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::text AS lsn"),
            2000,
          )
            .then((r) => ({ n, lsn: r.rows[0]?.lsn == null ? -1 : Number(r.rows[0].lsn) }))
            .catch(() => ({ n, lsn: -1 })),
        ),
      );
      const best = received.filter((x) => x.lsn >= 0).sort((a, b) => b.lsn - a.lsn || a.n.localeCompare(b.n))[0];
      if (best) rwLog.push(`failover candidates by received WAL: ${received.map((x) => `${x.n} ${x.lsn}`).join(', ')}`);
      return best?.n;
    },

    attach(h) {
      host = h;
      // The Service's endpoints change as the pods do: every store change re-reads them.
      unsubscribe = h.subscribe(() => {
        if (o.service) return followService(o.service);
        const any = [...podNs.values()][0];
        if (any) followPrimary(any.namespace, any.cluster);
      });
    },

    start(pod) {
      const name = pod.metadata.name!;
      podOf.set(name, pod.metadata.uid!);
      podNs.set(name, { namespace: pod.metadata.namespace!, cluster: pod.metadata.labels!['cnpg.io/cluster']! });
      return serial(name, async () => {
        const i = instances.get(name) ?? (await allocate(name));
        const volume = pod.metadata.ownerReferences?.find((r) => r.kind === 'Cluster')?.uid ?? '';
        if (volumeOf.has(name) && volumeOf.get(name) !== volume) {
          // The Cluster was deleted and made again: its PVCs went with it, and this instance starts from nothing.
          await stopCluster(i.dataDir, 'immediate').catch(() => killNow(i.dataDir));
          await rm(i.dataDir, { recursive: true, force: true });
        }
        volumeOf.set(name, volume);
        const primary = await settledPrimary(pod, name);
        let how: string;
        if (primary === name) {
          const cluster = clusterOf(pod);
          if (existsSync(join(i.dataDir, 'PG_VERSION'))) {
            await startCluster(i.dataDir, { logFile: i.logFile });
            how = 'restarted as the primary (crash recovery)';
          } else if (cluster?.spec?.bootstrap?.recovery) {
            how = await recoverPrimary(i, cluster).catch((e: Error) => {
              host?.finishJob(pod.metadata.namespace!, name, 'full-recovery', false);
              throw e;
            });
          } else {
            await bootstrapPrimary(i);
            how = 'initdb as the primary';
          }
          await applySyncReplicas(clusterOf(pod), name);
        } else {
          how = await asReplica(i, primary);
        }
        // Deleted while it was starting: the host of that pod is gone, so are its processes.
        if (podOf.get(name) !== pod.metadata.uid) {
          killNow(i.dataDir);
          throw new Error(`pod ${name} was deleted while its PostgreSQL started (${how})`);
        }
        serving.add(name);
        rwLog.push(`${name} ${how}`);
      });
    },

    fence(pod, fenced) {
      const name = pod.metadata.name!;
      const ns = pod.metadata.namespace!;
      if (!instances.has(name)) return Promise.resolve();
      const i = inst(name);
      if (fenced) {
        serving.delete(name);
        host!.setPodReady(ns, name, false);
      }
      return serial(name, async () => {
        if (fenced) {
          if (await isRunning(i.dataDir)) await stopCluster(i.dataDir, 'fast');
          return;
        }
        if (!(await isRunning(i.dataDir))) await startCluster(i.dataDir, { logFile: i.logFile });
        serving.add(name);
        host!.setPodReady(ns, name, true);
      });
    },

    stop(pod, graceful) {
      const name = pod.metadata.name!;
      if (!instances.has(name) || podOf.get(name) !== pod.metadata.uid) return;
      const i = inst(name);
      if (graceful) {
        serving.delete(name);
        void serial(name, () => stopCluster(i.dataDir, 'fast')).catch((e: Error) => host?.errors.push(e));
        return;
      }
      podOf.delete(name);
      serving.delete(name);
      const deletedAt = Date.now();
      if (!o.killDelayMs) {
        const k = killNow(i.dataDir);
        if (k) kills.push({ instance: name, ...k, deletedAt, at: Date.now() });
        return;
      }
      // The containers outlive the object for killDelayMs; a new pod of this instance starts after them (serial).
      lingering.add(name);
      void serial(name, async () => {
        await sleep(o.killDelayMs!);
        const k = killNow(i.dataDir);
        lingering.delete(name);
        if (k) kills.push({ instance: name, ...k, deletedAt, at: Date.now() });
      }).catch((e: Error) => host?.errors.push(e));
    },

    promote(cluster, target, old) {
      inst(target);
      return serial(target, async () => {
        // Only a primary whose pod still exists can be told to stop: one whose pod was deleted while its processes
        // run on (killDelayMs) is out of the operator's reach, and goes on as it is until its host kills it.
        const oldRuns = old !== target && instances.has(old) && podOf.has(old) && (await isRunning(inst(old).dataDir));
        // A switchover: the old primary shuts down first (a fast shutdown ships its last WAL to the standbys).
        if (oldRuns) {
          serving.delete(old);
          await serial(old, () => stopCluster(inst(old).dataDir, 'fast'));
        }
        await withClient(conn(target), async (c) => {
          const r = await c.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
          if (!r.rows[0]?.ok) throw new Error(`pg_promote on ${target} did not finish within 60 s`);
        });
        // Replication slots are not replicated: the new primary keeps WAL for every other instance from now.
        for (const n of membersOf(clusterNameOf(target))) if (n !== target) await ensureSlot(conn(target), n);
        await applySyncReplicas(host!.get('clusters', cluster.metadata.namespace, cluster.metadata.name!), target);
        if (oldRuns && podOf.has(old)) {
          // Its pod stays; its PostgreSQL comes back as a replica of the new primary, not Ready until it streams.
          const ns = podNs.get(old)!;
          void serial(old, async () => {
            host!.setPodReady(ns.namespace, old, false);
            await sleep(200);
            const how = await asReplica(inst(old), target);
            rwLog.push(`${old} ${how}`);
            serving.add(old);
            host!.setPodReady(ns.namespace, old, true);
          }).catch((e: Error) => host?.errors.push(e));
        }
        serving.add(target);
        rwLog.push(`${target} promoted (was ${old})`);
      });
    },
  };
  return {
    runtime,
    rw: { host: '127.0.0.1', port: rwPort },
    instances,
    conn,
    pid: (name) => livePostmaster(inst(name).dataDir),
    kills,
    rwLog,
    async stop() {
      stopped = true;
      unsubscribe?.();
      await rw.close();
      await Promise.allSettled([...chains.values()]);
      for (const i of instances.values()) {
        await stopCluster(i.dataDir, 'immediate', { timeoutMs: 10_000 }).catch(() => killNow(i.dataDir));
      }
      await rm(o.root, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
