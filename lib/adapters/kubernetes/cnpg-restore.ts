/**
 * The live restore of a CloudNativePG cluster, as its runbook does it: CloudNativePG restores only into a new
 * Cluster ("recovery is not performed in place on an existing cluster ... it is used to bootstrap a new cluster",
 * https://cloudnative-pg.io/documentation/current/recovery/), so the drill creates a recovery Cluster bootstrapped
 * from the damaged cluster's Blob object store (cnpg-manifest.ts), waits until the operator reports it healthy,
 * and then points the application at it.
 *
 * Repointing: the operator owns `<cluster>-rw` and reconciles its selector back, and the application's Deployment
 * is the user's, not the drill's. The cleanest single switch is the Service the drill file names (the one the
 * application's connection string uses): its `spec.selector` is replaced with the recovery cluster's primary
 * (`cnpg.io/cluster: <recovery>`, `cnpg.io/instanceRole: primary`, the labels the operator's own -rw Service
 * selects on), so every client follows at its next connection, and undoing it is one patch.
 *
 * The damaged Cluster is never deleted, and never patched but to fence it for the lose-cluster fault: it stays, with its pods and volumes, for forensics (the
 * record names it, as the lab's quarantine). Only a recovery Cluster this run created (its annotation says so)
 * is ever deleted, when it is broken, and then made again. Every step decides from what it finds, so a second
 * call (the rollback, `drill recover`) continues where the first stopped.
 */
import { beginLiveRestore } from '../live-restore-outcome.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { KubernetesRestore } from '../../config/types.ts';
import { blobEnvConfigured } from '../blob/index.ts';
import { backupStoreFromEnv, type BackupStore } from '../postgres/backup/store.ts';
import { takesWrite, withClient } from '../postgres/standby.ts';
import { checkArchive, chooseBaseBackup, layoutName, planFromBackup, readArchiveView, type BaseBackup } from './cnpg-archive.ts';
import type { LiveRestoreAdapter, LiveRestoreOutcome, RestorePoint, RestoreTarget } from '../types.ts';
import { createCaller } from './call.ts';
import { KubeError } from './errors.ts';
import {
  DRILL_RUN_ANNOTATION,
  parseDestinationPath,
  recoveryClusterManifest,
  recoveryClusterName,
  type CnpgRestoreSettings,
} from './cnpg-manifest.ts';
import { checkNamespace } from './replicas.ts';

const GROUP = 'postgresql.cnpg.io';
const VERSION = 'v1';
const PLURAL = 'clusters';
const HEALTHY = 'Cluster in healthy state';
/** CloudNativePG's fencing annotation (https://cloudnative-pg.io/documentation/current/fencing/). */
const FENCED_ANNOTATION = 'cnpg.io/fencedInstances';
/** How long a fenced cluster may still take writes: the instance managers stop PostgreSQL with a fast shutdown. */
const FENCE_WAIT_MS = 60_000;
/** Phases after which the operator will not make progress on its own (cloudnative-pg api/v1 PhaseCannotCreateClusterObjects, PhaseUnrecoverable). */
const BROKEN = /^(Unable to create required cluster objects|Cluster cannot proceed)/;
/** CloudNativePG's default archive_timeout is 5 min: the segment holding the target may take that long to be archived. */
const ARCHIVE_WAIT_MS = 6 * 60_000;

type Conn = { host: string; port: number; user: string; database: string; password: () => string };

interface ClusterLike {
  metadata?: { name?: string; annotations?: Record<string, string>; uid?: string };
  spec?: Record<string, unknown> & { instances?: number };
  status?: { phase?: string; phaseReason?: string; currentPrimary?: string; readyInstances?: number; instances?: number };
}

export interface CnpgLiveRestoreOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  allowedNamespaces: string[];
  /** The damaged (source) Cluster. */
  cluster: string;
  settings: KubernetesRestore;
  /** The database as the drill reaches it: through the Service the restore repoints. */
  endpoint: Conn;
  env?: NodeJS.ProcessEnv;
  requestTimeoutMs?: number;
}

/** For `drill recover`: the settings without a single secret (Secret names and keys only), under keys the record keeps. */
export function cnpgRestoreDetails(s: KubernetesRestore): Record<string, unknown> {
  return {
    destinationPath: s.destinationPath,
    serverName: s.serverName,
    service: s.service,
    ...(s.instances ? { instances: s.instances } : {}),
    refs: Object.entries(s.azureCredentials).map(([field, r]) => ({ field, name: r!.name, entry: r!.key })),
  };
}

export function cnpgRestoreFromDetails(d: Record<string, unknown>): KubernetesRestore {
  const refs = (d.refs as { field: string; name: string; entry: string }[] | undefined) ?? [];
  return {
    destinationPath: String(d.destinationPath),
    serverName: String(d.serverName),
    service: String(d.service),
    ...(typeof d.instances === 'number' ? { instances: d.instances } : {}),
    azureCredentials: Object.fromEntries(refs.map((r) => [r.field, { name: r.name, key: r.entry }])),
  };
}

export function createCnpgLiveRestore(o: CnpgLiveRestoreOptions): LiveRestoreAdapter {
  checkNamespace(o.namespace, o.allowedNamespaces);
  const { namespace, cluster, settings } = o;
  const env = o.env ?? process.env;
  const custom = o.kubeConfig.makeApiClient(CustomObjectsApi);
  const core = o.kubeConfig.makeApiClient(CoreV1Api);
  const { call, server } = createCaller(o.kubeConfig, namespace, o.requestTimeoutMs);
  const damaged = `kube:${namespace}/clusters.postgresql.cnpg.io/${cluster}`;
  const where = `kube:${o.kubeConfig.getCurrentContext() || server}/${namespace} CloudNativePG cluster ${cluster} (restore from ${settings.destinationPath}, Service ${settings.service})`;

  async function getCluster(name: string, signal?: AbortSignal): Promise<ClusterLike | null> {
    try {
      return (await call(
        { verb: 'get', resource: PLURAL, group: GROUP, name },
        (opt) => custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name }, opt),
        signal,
      )) as ClusterLike;
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return null;
      throw e;
    }
  }

  /** The drill's own view of the object store: the process's Blob credentials (environment), the container the path names. */
  function ownStore(): BackupStore {
    if (!blobEnvConfigured(env))
      throw new Error(
        `no Blob credentials in the drill's environment to read ${settings.destinationPath}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY`,
      );
    const p = parseDestinationPath(settings.destinationPath);
    return backupStoreFromEnv(p.container, p.prefix, env);
  }

  /** Until the archive holds every segment up to the target's, or the wait runs out: then the missing ones are the gap. */
  async function awaitArchive(
    store: BackupStore,
    backup: BaseBackup,
    target: RestoreTarget,
    say: (l: string) => void,
    signal: AbortSignal,
  ) {
    const deadline = performance.now() + ARCHIVE_WAIT_MS;
    for (let round = 0; ; round++) {
      signal.throwIfAborted();
      const view = await readArchiveView(store, settings.serverName, settings.destinationPath, false);
      const { missing } = await planFromBackup(store, view, backup, target);
      if (missing.length === 0 || performance.now() > deadline) return { missing, layout: layoutName(view) };
      if (round === 0) say(`waiting for the WAL archive to receive ${missing.join(', ')} (archive_timeout closes a segment)`);
      await sleep(1000, undefined, { signal });
    }
  }

  async function secretProblems(signal: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    for (const [field, ref] of Object.entries(settings.azureCredentials)) {
      if (!ref) continue;
      const named = `target.database.restore.azureCredentials.${field}`;
      try {
        const s = await call(
          { verb: 'get', resource: 'secrets', group: '', name: ref.name },
          (opt) => core.readNamespacedSecret({ name: ref.name, namespace }, opt),
          signal,
        );
        // Only the key's presence is looked at; the value is never read into the drill.
        if (!s.data?.[ref.key]) out.push(`Secret ${ref.name} in namespace ${namespace} has no key ${ref.key} (${named})`);
      } catch (e) {
        if (e instanceof KubeError && e.status === 404) out.push(`Secret ${ref.name} is not in namespace ${namespace} (${named})`);
        else throw e;
      }
    }
    return out;
  }

  async function repoint(name: string, signal: AbortSignal): Promise<string> {
    const selector = { 'cnpg.io/cluster': name, 'cnpg.io/instanceRole': 'primary' };
    const svc = await call(
      { verb: 'get', resource: 'services', group: '', name: settings.service },
      (opt) => core.readNamespacedService({ name: settings.service, namespace }, opt),
      signal,
    );
    const now = svc.spec?.selector ?? {};
    if (Object.keys(now).length === 2 && Object.entries(selector).every(([k, v]) => now[k] === v))
      return `Service ${settings.service} already selects ${name}'s primary`;
    await call(
      { verb: 'patch', resource: 'services', group: '', name: settings.service },
      (opt) =>
        core.patchNamespacedService(
          { name: settings.service, namespace, body: [{ op: 'replace', path: '/spec/selector', value: selector }] },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, opt),
        ),
      signal,
    );
    return `Service ${settings.service} now selects ${name}'s primary (was ${JSON.stringify(now)})`;
  }

  async function primaryReady(c: ClusterLike, signal: AbortSignal): Promise<boolean> {
    const primary = c.status?.currentPrimary;
    if (!primary || (c.status?.readyInstances ?? 0) < 1) return false;
    try {
      const pod = await call(
        { verb: 'get', resource: 'pods', group: '', name: primary },
        (opt) => core.readNamespacedPod({ name: primary, namespace }, opt),
        signal,
      );
      return !pod.metadata?.deletionTimestamp && (pod.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True');
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return false;
      throw e;
    }
  }

  /**
   * The restore's time split as the API shows it: the full-recovery Job's pod from its container's start to its end
   * (download and replay), then until the primary's pod turned Ready (start on the restored data). Kubernetes times
   * have whole seconds, so each part is known to about a second; null when the Job's pod is gone or not finished.
   */
  async function recoverySplit(name: string, primary: string, signal: AbortSignal): Promise<{ jobMs: number; startMs: number } | null> {
    const jobs = await call(
      { verb: 'list', resource: 'pods', group: '' },
      (opt) => core.listNamespacedPod({ namespace, labelSelector: `cnpg.io/cluster=${name},cnpg.io/jobRole=full-recovery` }, opt),
      signal,
    );
    const ended = jobs.items
      .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated)
      .find((x) => x?.exitCode === 0 && x.startedAt && x.finishedAt);
    if (!ended) return null;
    const pod = await call(
      { verb: 'get', resource: 'pods', group: '', name: primary },
      (opt) => core.readNamespacedPod({ name: primary, namespace }, opt),
      signal,
    );
    const ready = (pod.status?.conditions ?? []).find((x) => x.type === 'Ready' && x.status === 'True')?.lastTransitionTime;
    const started = new Date(ended.startedAt!).getTime();
    const finished = new Date(ended.finishedAt!).getTime();
    if (!ready || !Number.isFinite(started) || !Number.isFinite(finished)) return null;
    return { jobMs: Math.max(0, finished - started), startMs: Math.max(0, new Date(ready).getTime() - finished) };
  }

  async function deleteBroken(name: string, why: string, say: (l: string) => void, signal: AbortSignal): Promise<void> {
    say(`recovery Cluster ${name} is broken (${why}): deleting it to create it again`);
    await call(
      { verb: 'delete', resource: PLURAL, group: GROUP, name },
      (opt) => custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name }, opt),
      signal,
    ).catch((e) => {
      if (!(e instanceof KubeError && e.status === 404)) throw e;
    });
    while ((await getCluster(name, signal)) !== null) await sleep(250, undefined, { signal });
  }

  const ours = (c: ClusterLike, runId: string) => c.metadata?.annotations?.[DRILL_RUN_ANNOTATION] === runId;

  return {
    where,
    steps: [
      { name: 'replay', label: 'recovery Job (download, replay)' },
      { name: 'promote', label: 'primary started (Job end to pod Ready)' },
      { name: 'repoint', label: 'repoint' },
      { name: 'standby', label: 'replicas ready' },
    ],
    quarantineOf: () => `${damaged} (the damaged cluster, left as it was)`,

    async preflight({ table, signal }) {
      const problems: string[] = [];
      let backup: { folder: string; takenAt: string } | null = null;
      let archiveLagSeconds: number | null = null;
      if (!(await getCluster(cluster, signal)))
        problems.push(`CloudNativePG cluster ${cluster} is not in namespace ${namespace} (target.database.cluster)`);
      problems.push(...(await secretProblems(signal)));
      await call(
        { verb: 'get', resource: 'services', group: '', name: settings.service },
        (opt) => core.readNamespacedService({ name: settings.service, namespace }, opt),
        signal,
      ).catch((e) => {
        if (e instanceof KubeError && e.status === 404)
          problems.push(`Service ${settings.service} is not in namespace ${namespace} (target.database.restore.service)`);
        else throw e;
      });
      try {
        const found = await checkArchive(ownStore(), settings.serverName, settings.destinationPath);
        problems.push(...found.problems);
        if (found.backup) backup = { folder: found.backup.folder, takenAt: found.backup.takenAt };
        archiveLagSeconds = found.archiveLagSeconds;
      } catch (e) {
        problems.push(`the object store ${settings.destinationPath} cannot be read: ${(e as Error).message}`);
      }
      if (table) {
        const found = await withClient(o.endpoint, (c) =>
          c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]),
        ).catch(() => null);
        signal.throwIfAborted();
        if (!found)
          problems.push(
            `the database behind ${o.endpoint.host}:${o.endpoint.port} does not answer: cannot check that table ${table} exists`,
          );
        else if (!found.rows[0]?.t) problems.push(`table ${table} does not exist in database ${o.endpoint.database}`);
      }
      return { problems, backup, archiveLagSeconds };
    },

    async markRestorePoint(signal): Promise<RestorePoint> {
      signal.throwIfAborted();
      const r = await withClient(o.endpoint, (c) =>
        c.query<{ lsn: string; wal: string; id: string }>(
          `SELECT pg_current_wal_insert_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_insert_lsn()) AS wal,
                  (SELECT system_identifier::text FROM pg_control_system()) AS id`,
        ),
      );
      const row = r.rows[0]!;
      return { lsn: row.lsn, at: new Date().toISOString(), timeline: Number.parseInt(row.wal.slice(0, 8), 16), systemId: row.id };
    },

    /**
     * The whole cluster lost, as a storage failure takes it: fenced (`cnpg.io/fencedInstances: ["*"]`, CloudNativePG's
     * own switch), so every instance's postmaster is shut down and stays down while pods and volumes are kept for
     * forensics, and no failover follows. Nothing is deleted; the recovery Cluster then comes from the object store.
     */
    async loseCluster(_runId, signal) {
      const c = await getCluster(cluster, signal);
      if (!c) throw new Error(`the CloudNativePG cluster ${cluster} is not in ${namespace}: nothing to lose`);
      await call(
        { verb: 'patch', resource: PLURAL, group: GROUP, name: cluster },
        (opt) =>
          custom.patchNamespacedCustomObject(
            {
              group: GROUP,
              version: VERSION,
              namespace,
              plural: PLURAL,
              name: cluster,
              body: { metadata: { annotations: { [FENCED_ANNOTATION]: '["*"]' } } },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch, opt),
          ),
        signal,
      );
      const where = `${o.endpoint.host}:${o.endpoint.port}`;
      for (const until = Date.now() + FENCE_WAIT_MS; ; ) {
        const w = await takesWrite(o.endpoint, where);
        if (!w.ok) break;
        if (Date.now() > until)
          throw new Error(`Cluster ${cluster} was fenced, but a write still commits through ${where} after ${FENCE_WAIT_MS / 1000} s`);
        await sleep(250, undefined, { signal });
      }
      const nodes = (c.status as { instanceNames?: string[] } | undefined)?.instanceNames ?? [];
      const quarantine = `${damaged}, fenced (${FENCED_ANNOTATION}: ["*"]), pods and volumes kept; \`kubectl cnpg fencing off ${cluster} "*"\` lifts it`;
      return {
        quarantine,
        nodes,
        detail: `Cluster ${cluster} fenced (${FENCED_ANNOTATION}: ["*"]): PostgreSQL stopped on ${nodes.join(', ') || 'every instance'}, no write commits through ${where}; pods and volumes kept`,
      };
    },

    async restoreLive({ runId, target, signal, onStep, log }): Promise<LiveRestoreOutcome> {
      const say = log ?? (() => {});
      const { out, step } = beginLiveRestore(onStep);
      const name = recoveryClusterName(cluster, runId);
      try {
        if (name === cluster) throw new Error(`the recovery cluster's name ${name} is the damaged cluster's`);
        const source = await getCluster(cluster, signal);
        let existing = await getCluster(name, signal);
        if (existing && !ours(existing, runId))
          throw new Error(`a Cluster ${name} exists in ${namespace} that this run did not create: it is left alone`);
        if (!existing && !source) throw new Error(`the damaged cluster ${cluster} is gone from ${namespace}: its spec cannot be copied`);
        out.quarantine = `${damaged} (the damaged cluster, left as it was)`;

        const store = ownStore();
        const view = await readArchiveView(store, settings.serverName, settings.destinationPath);
        const { backup, problem } = chooseBaseBackup(view, target);
        if (!backup || problem) throw new Error(problem ?? `no base backup in the ${layoutName(view)}`);
        out.backup = { folder: backup.folder, takenAt: backup.takenAt, bytes: backup.bytes };
        if (!existing) {
          // Refused before anything is created: past a gap no recovery reaches the point, and the operator would loop on it.
          const { missing, layout } = await awaitArchive(store, backup, target, say, signal);
          if (missing.length > 0) {
            out.missingSegments = missing;
            throw new Error(
              `the WAL archive in the ${layout} misses ${missing.join(', ')} between ${backup.blob}'s first segment ${backup.startSegment} and the target: no recovery can pass it`,
            );
          }
        }

        let t = performance.now();
        if (existing && BROKEN.test(existing.status?.phase ?? '')) {
          await deleteBroken(name, `${existing.status?.phase}: ${existing.status?.phaseReason ?? ''}`, say, signal);
          existing = null;
        }
        if (!existing) {
          const body = recoveryClusterManifest({
            name,
            namespace,
            source: { name: cluster, spec: source!.spec ?? {} },
            settings: settings as CnpgRestoreSettings,
            target,
            runId,
          });
          await call(
            { verb: 'create', resource: PLURAL, group: GROUP, name },
            (opt) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, body }, opt),
            signal,
          );
          say(
            `created recovery Cluster ${name} (bootstrap.recovery from ${settings.destinationPath}, ${target === 'latest' ? 'latest' : `targetLSN ${target.lsn} exclusive`})`,
          );
        }
        // The operator's full-recovery Job downloads and replays; the primary's pod then starts on what it restored.
        let primary: string | undefined;
        for (;;) {
          const c = await getCluster(name, signal);
          if (!c) throw new Error(`recovery Cluster ${name} disappeared while it was restoring`);
          if (BROKEN.test(c.status?.phase ?? ''))
            throw new Error(`recovery Cluster ${name}: ${c.status?.phase}: ${c.status?.phaseReason ?? ''}`);
          if (await primaryReady(c, signal)) {
            primary = c.status?.currentPrimary;
            break;
          }
          await sleep(250, undefined, { signal });
        }
        const split = primary ? await recoverySplit(name, primary, signal).catch(() => null) : null;
        if (split) {
          step('replay', split.jobMs);
          step('promote', split.startMs);
        } else step('replay', performance.now() - t);

        t = performance.now();
        say(await repoint(name, signal));
        out.replaced = true;
        step('repoint', performance.now() - t);

        t = performance.now();
        for (;;) {
          const c = await getCluster(name, signal);
          const want = c?.spec?.instances ?? 1;
          if (c?.status?.phase === HEALTHY && (c.status.readyInstances ?? 0) >= want) break;
          await sleep(250, undefined, { signal });
        }
        step('standby', performance.now() - t);
        const reached = await withClient(o.endpoint, (c) =>
          c.query<{ lsn: string | null }>('SELECT redo_lsn::text AS lsn FROM pg_control_checkpoint()'),
        ).catch(() => null);
        out.reachedLsn = reached?.rows[0]?.lsn ?? null;
        say(`recovery Cluster ${name} healthy; the damaged cluster ${cluster} is left as it was`);
        out.ok = true;
      } catch (e) {
        if (signal.aborted && !(e instanceof Error && /misses/.test(e.message))) out.problem = `interrupted: ${(e as Error).message}`;
        else out.problem = (e as Error).message;
      }
      return out;
    },

    async restoredAndWhole(runId, signal) {
      const name = recoveryClusterName(cluster, runId);
      const c = await getCluster(name, signal);
      if (!c || !ours(c, runId)) return { ok: false, detail: `no recovery Cluster ${name} of this run in ${namespace}` };
      const want = c.spec?.instances ?? 1;
      if (c.status?.phase !== HEALTHY || (c.status.readyInstances ?? 0) < want)
        return {
          ok: false,
          detail: `recovery Cluster ${name} is not healthy: ${c.status?.phase ?? 'no status'}, ${c.status?.readyInstances ?? 0}/${want} ready`,
        };
      const svc = await call(
        { verb: 'get', resource: 'services', group: '', name: settings.service },
        (opt) => core.readNamespacedService({ name: settings.service, namespace }, opt),
        signal,
      );
      if (svc.spec?.selector?.['cnpg.io/cluster'] !== name)
        return { ok: false, detail: `Service ${settings.service} selects ${JSON.stringify(svc.spec?.selector ?? {})}, not ${name}` };
      const w = await takesWrite(o.endpoint, `Service ${settings.service} (${o.endpoint.host}:${o.endpoint.port})`);
      if (!w.ok) return { ok: false, detail: w.detail };
      const left = (await getCluster(cluster, signal)) ? `damaged cluster ${cluster} kept` : `damaged cluster ${cluster} not found`;
      const bos = (c.spec?.backup as { barmanObjectStore?: { serverName?: string } } | undefined)?.barmanObjectStore;
      // The operator archives; the drill only says where it was told to (without the damaged cluster's spec.backup, nowhere).
      const archive = bos
        ? `WAL archived by the operator under serverName ${bos.serverName}`
        : 'no spec.backup: the restored cluster does not archive WAL';
      return {
        ok: true,
        detail: `recovery Cluster ${name} healthy (${want}/${want} ready) behind Service ${settings.service}; ${w.detail}; ${archive}; ${left}`,
      };
    },
  };
}
