/**
 * The CloudNativePG operator in miniature, for the postgresql.cnpg.io/v1 Cluster resource: it keeps one pod
 * per instance (`<cluster>-1`, `-2`, ...) labelled with its role, and reports `currentPrimary` and
 * `targetPrimary` in the Cluster's status as the operator does. A switchover is asked for the way
 * `kubectl cnpg promote` asks, by setting `status.targetPrimary`; a primary pod that disappears makes the
 * operator fail over to a Ready replica once `spec.failoverDelay` seconds have passed (with a runtime, the one
 * that received the most WAL). Either way the
 * flip takes `switchDelayMs`, and a deleted instance is recreated (as a replica) after the ReplicaSet delay.
 * Without a runtime no PostgreSQL runs behind these pods; with one (cnpg-postgres.ts) every pod is a real
 * server, the flip waits for the real pg_promote, and a pod is Ready when its server is (a replica: streaming).
 *
 * A failover goes in two steps, as the real operator's does (docs: https://cloudnative-pg.io/documentation/current/failover/,
 * "it will mark the TargetPrimary as pending ... Once all WAL receivers are stopped, there will be a leader
 * election"; source: cloudnative-pg/cloudnative-pg internal/controller/replicas.go,
 * reconcileTargetPrimaryForNonReplicaCluster sets `apiv1.PendingFailoverMarker` = "pending", then the most
 * advanced instance): `status.targetPrimary` is "pending" for `electDelayMs`, then names the elected pod.
 * While `spec.failoverDelay` runs, `status.currentPrimaryFailingSinceTimestamp` says since when the primary
 * has been failing (evaluateFailoverDelay in the same file sets it only when the delay is not 0).
 *
 * Pods: instance pods carry `cnpg.io/podRole=instance`; each instance's first creation also leaves the
 * completed pod of the Job that made its data (`<cluster>-1-initdb-xxxxx`, `<cluster>-N-join-xxxxx`),
 * labelled `cnpg.io/cluster` and `cnpg.io/jobRole` but not `cnpg.io/podRole=instance`, as the real operator's
 * initdb/join Jobs do (https://cloudnative-pg.io/documentation/current/labels_annotations/: cnpg.io/jobRole
 * "role of the job (that is, import, initdb, join, ...)", cnpg.io/podRole "distinguishes pods dedicated to
 * pooler deployment from those used for database instances"). A client that selects on `cnpg.io/cluster` alone
 * sees them. (The real chain is Cluster -> Job -> Pod; Jobs are not modelled, the pod is owned by the Cluster.)
 *
 * Recovery bootstrap (`spec.bootstrap.recovery`): the create is refused with a 422 where the CRD schema or the
 * operator's webhook would refuse it (defaults.ts: an inline credential, a source not in externalClusters, a bad
 * targetLSN); the Secrets its object store references must be there, or no instance is made and the phase says
 * which (`Unable to create required cluster objects`; the real operator's recovery Job fails on the missing Secret,
 * and a Secret created later is not noticed here until the Cluster changes); the first instance's Job pod is
 * `full-recovery`. The restore itself is the runtime's (cnpg-postgres.ts).
 */
import { applyDefaults } from './defaults.ts';
import { NODE_NAME, podIsActive, podIsReady } from './kubelet.ts';
import { canonical, randomSuffix, type Creations } from './pod-controllers.ts';
import type { Store } from './store.ts';
import type { CnpgRuntime, KubeObject } from './types.ts';

export const CNPG_CLUSTER_LABEL = 'cnpg.io/cluster';
export const CNPG_ROLE_LABEL = 'cnpg.io/instanceRole';
export const CNPG_POD_ROLE_LABEL = 'cnpg.io/podRole';
export const CNPG_JOB_ROLE_LABEL = 'cnpg.io/jobRole';
/** apiv1.PendingFailoverMarker: the target primary while the operator waits to elect. */
export const CNPG_PENDING = 'pending';

/** Whether a pod is one of a Cluster's instances (not a Job's pod, not a pooler). */
export function isCnpgInstancePod(p: KubeObject): boolean {
  return p.metadata.labels?.[CNPG_POD_ROLE_LABEL] === 'instance';
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function instancePod(cluster: KubeObject, name: string, role: 'primary' | 'replica'): KubeObject {
  const c = cluster.metadata.name!;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: cluster.metadata.namespace,
      labels: { [CNPG_CLUSTER_LABEL]: c, 'cnpg.io/instanceName': name, [CNPG_ROLE_LABEL]: role, role, [CNPG_POD_ROLE_LABEL]: 'instance' },
      ownerReferences: [
        {
          apiVersion: 'postgresql.cnpg.io/v1',
          kind: 'Cluster',
          name: c,
          uid: cluster.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      containers: [
        {
          name: 'postgres',
          image: cluster.spec?.imageName ?? 'ghcr.io/cloudnative-pg/postgresql:16.4',
          ports: [{ containerPort: 5432, name: 'postgresql', protocol: 'TCP' }],
        },
      ],
    },
  };
}

/** The pod of the Job that made an instance's data, as it stays after the Job completed (`kubectl get pods`: 0/1 Completed). */
function jobPod(cluster: KubeObject, instance: string, role: 'initdb' | 'join' | 'full-recovery', running = false): KubeObject {
  const c = cluster.metadata.name!;
  const job = `${instance}-${role}`;
  const at = now();
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${job}-${randomSuffix()}`,
      namespace: cluster.metadata.namespace,
      labels: {
        [CNPG_CLUSTER_LABEL]: c,
        [CNPG_JOB_ROLE_LABEL]: role,
        'cnpg.io/instanceName': instance,
        'batch.kubernetes.io/job-name': job,
        'job-name': job,
      },
      ownerReferences: [{ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', name: c, uid: cluster.metadata.uid!, controller: false }],
    },
    spec: {
      nodeName: NODE_NAME,
      restartPolicy: 'Never',
      containers: [{ name: role, image: cluster.spec?.imageName ?? 'ghcr.io/cloudnative-pg/postgresql:16.4' }],
    },
    status: running
      ? {
          // The restore runs now (the runtime's): the pod completes when it ends (CnpgRuntimeHost.finishJob).
          phase: 'Running',
          startTime: at,
          conditions: [
            { type: 'Initialized', status: 'True', lastTransitionTime: at },
            { type: 'Ready', status: 'True', lastTransitionTime: at },
            { type: 'ContainersReady', status: 'True', lastTransitionTime: at },
            { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
          ],
          containerStatuses: [
            {
              name: role,
              ready: true,
              restartCount: 0,
              started: true,
              image: cluster.spec?.imageName ?? 'ghcr.io/cloudnative-pg/postgresql:16.4',
              state: { running: { startedAt: at } },
            },
          ],
        }
      : {
          phase: 'Succeeded',
          startTime: at,
          conditions: [
            { type: 'Initialized', status: 'True', lastTransitionTime: at, reason: 'PodCompleted' },
            { type: 'Ready', status: 'False', lastTransitionTime: at, reason: 'PodCompleted' },
            { type: 'ContainersReady', status: 'False', lastTransitionTime: at, reason: 'PodCompleted' },
            { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
          ],
          containerStatuses: [
            {
              name: role,
              ready: false,
              restartCount: 0,
              started: false,
              image: cluster.spec?.imageName ?? 'ghcr.io/cloudnative-pg/postgresql:16.4',
              state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: at, finishedAt: at } },
            },
          ],
        },
  };
}

export interface CnpgTiming {
  replaceDelayMs: number;
  /** Time the operator takes from deciding on a new primary to reporting it promoted. */
  switchDelayMs: number;
  /** Time on targetPrimary "pending" before the election (the real operator waits for the WAL receivers to stop). */
  electDelayMs: number;
}

/** What the operator keeps to itself: switches it has scheduled, by cluster, and their timers. */
export interface CnpgOperatorState {
  timers: Set<NodeJS.Timeout>;
  switching: Map<string, string>;
  /** When each cluster's primary was first seen gone: failover waits spec.failoverDelay from then. */
  lostAt: Map<string, number>;
  /** When each cluster's targetPrimary became "pending". */
  pendingSince: Map<string, number>;
  /** Instances (cluster uid/name) whose data a Job made already: a recreated pod reuses its volume, no new Job. */
  jobsMade: Set<string>;
  /** Instances (cluster uid/name) fenced now: the runtime was told, and is told again only when the fence changes. */
  fenced: Set<string>;
}

/** The instances `cnpg.io/fencedInstances` fences: a JSON list of names, `["*"]` for all; anything else fences none. */
export function fencedInstances(cluster: KubeObject, names: string[]): Set<string> {
  const raw = cluster.metadata.annotations?.['cnpg.io/fencedInstances'];
  if (!raw) return new Set();
  try {
    const list = JSON.parse(raw) as unknown;
    if (!Array.isArray(list)) return new Set();
    return new Set(list.includes('*') ? names : names.filter((n) => list.includes(n)));
  } catch {
    return new Set();
  }
}

export function reconcileCnpgCluster(
  store: Store,
  creations: Creations,
  op: CnpgOperatorState,
  timing: CnpgTiming,
  cluster: KubeObject,
  requeue: () => void,
  real?: { runtime: CnpgRuntime; errors: Error[] },
): void {
  const ns = cluster.metadata.namespace;
  const name = cluster.metadata.name!;
  const instances: number = cluster.spec?.instances ?? 1;
  const names = Array.from({ length: instances }, (_, i) => `${name}-${i + 1}`);
  const pods = new Map(
    store
      .list('pods', ns, (p) => p.metadata.labels?.[CNPG_CLUSTER_LABEL] === name && isCnpgInstancePod(p))
      .map((p) => [p.metadata.name!, p]),
  );
  const status = { ...(cluster.status ?? {}) };
  status.currentPrimary ??= names[0];
  status.targetPrimary ??= status.currentPrimary;
  const alive = (n: string) => pods.has(n) && podIsActive(pods.get(n)!);

  const key = `${ns}/${name}`;
  const missing = missingSecretRefs(store, cluster);
  if (missing.length > 0) {
    // No instance is made without its object-store credentials: the recovery Job could not read them.
    const phase = { phase: 'Unable to create required cluster objects', phaseReason: missing.join('; ') };
    if (cluster.status?.phase !== phase.phase || cluster.status?.phaseReason !== phase.phaseReason)
      store.updateAsServer('clusters', { ...cluster, status: { ...(cluster.status ?? {}), ...phase, instances, readyInstances: 0 } });
    return;
  }
  // Failover: the current primary's pod is gone or terminating, no switch is under way yet, and it has been
  // gone for spec.failoverDelay seconds (the operator's default 0: at once).
  const primaryLost = !alive(status.currentPrimary) && status.targetPrimary === status.currentPrimary;
  const delayMs = (cluster.spec?.failoverDelay ?? 0) * 1000;
  if (!primaryLost) op.lostAt.delete(key);
  if (!primaryLost && status.targetPrimary === status.currentPrimary) delete status.currentPrimaryFailingSinceTimestamp;
  else if (!op.lostAt.has(key)) {
    op.lostAt.set(key, Date.now());
    if (delayMs > 0) {
      const t = setTimeout(() => {
        op.timers.delete(t);
        requeue();
      }, delayMs);
      op.timers.add(t);
    }
  }
  const waitMs = primaryLost ? op.lostAt.get(key)! + delayMs - Date.now() : 0;
  if (primaryLost && delayMs > 0) status.currentPrimaryFailingSinceTimestamp ??= new Date(op.lostAt.get(key)!).toISOString();
  // Only with an instance to elect (replicas.go returns early unless the most advanced instance reports a status):
  // a Cluster still bootstrapping, whose primary pod is not there yet, does not fail over.
  const electable = names.some((n) => n !== status.currentPrimary && alive(n) && podIsReady(pods.get(n)!));
  if (primaryLost && waitMs <= 0 && electable) {
    // Step one: "pending" (the old primary must stop, the WAL receivers with it); the election comes after.
    op.lostAt.delete(key);
    op.pendingSince.set(key, Date.now());
    status.targetPrimary = CNPG_PENDING;
    status.targetPrimaryTimestamp = now();
    status.phase = 'Failing over';
    status.phaseReason = `Initiating a failover from ${status.currentPrimary}`;
    const t = setTimeout(() => {
      op.timers.delete(t);
      requeue();
    }, timing.electDelayMs);
    op.timers.add(t);
  } else if (status.targetPrimary === CNPG_PENDING && real?.runtime.lingering?.(status.currentPrimary)) {
    // "Wait until all the WAL receivers are down" (replicas.go, ErrWalReceiversRunning): the old primary still
    // runs behind its deleted pod and the replicas still stream from it; the operator looks again shortly.
    const t = setTimeout(() => {
      op.timers.delete(t);
      requeue();
    }, 50);
    op.timers.add(t);
  } else if (status.targetPrimary === CNPG_PENDING && Date.now() - (op.pendingSince.get(key) ?? 0) >= timing.electDelayMs) {
    // Step two: the election, among the Ready instances other than the failed primary (with a runtime, the
    // one with the most WAL is picked below before promoting). None Ready: it stays pending, as the real one does.
    const candidate = names.find((n) => n !== status.currentPrimary && alive(n) && podIsReady(pods.get(n)!));
    if (candidate) {
      op.pendingSince.delete(key);
      status.targetPrimary = candidate;
      status.targetPrimaryTimestamp = now();
      status.phaseReason = `Failing over from ${status.currentPrimary} to ${candidate}`;
    }
  }
  // A switch (asked for through status.targetPrimary, or chosen above) completes after the operator's delay,
  // and with a runtime only once the real standby was promoted.
  if (
    status.targetPrimary !== status.currentPrimary &&
    status.targetPrimary !== CNPG_PENDING &&
    op.switching.get(key) !== status.targetPrimary
  ) {
    op.switching.set(key, status.targetPrimary);
    const t = setTimeout(() => {
      op.timers.delete(t);
      const c = store.get('clusters', ns, name);
      if (!c) {
        op.switching.delete(key);
        return;
      }
      const asked: string | undefined = c.status?.targetPrimary;
      const pod = asked && store.get('pods', ns, asked);
      if (!asked || !pod || !podIsActive(pod)) {
        op.switching.delete(key);
        // The chosen one died meanwhile: start over.
        store.updateAsServer('clusters', { ...c, status: { ...c.status, targetPrimary: c.status.currentPrimary } });
        requeue();
        return;
      }
      let target = asked;
      const done = () => {
        op.switching.delete(key);
        const now2 = store.get('clusters', ns, name);
        if (!now2 || now2.status?.targetPrimary !== target) return requeue();
        store.updateAsServer('clusters', {
          ...now2,
          status: {
            ...now2.status,
            currentPrimary: target,
            currentPrimaryTimestamp: now(),
            currentPrimaryFailingSinceTimestamp: undefined,
            phase: 'Cluster in healthy state',
            phaseReason: undefined,
          },
        });
        requeue();
      };
      if (!real) return done();
      const failover = c.status.phase === 'Failing over';
      // A failover promotes the replica that received the most WAL (a switchover, the one asked for): with
      // quorum replication only that one is sure to hold every acknowledged commit.
      const pick =
        failover && real.runtime.mostAdvanced
          ? real.runtime
              .mostAdvanced(
                names.filter((n) => n !== c.status.currentPrimary && store.get('pods', ns, n) && podIsReady(store.get('pods', ns, n)!)),
              )
              .then((best) => best ?? target)
          : Promise.resolve(target);
      pick
        .then((chosen) => {
          if (chosen !== target) {
            op.switching.set(key, chosen);
            const c2 = store.get('clusters', ns, name)!;
            store.updateAsServer('clusters', {
              ...c2,
              status: { ...c2.status, targetPrimary: chosen, phaseReason: `Failing over from ${c2.status.currentPrimary} to ${chosen}` },
            });
            target = chosen;
          }
          return real.runtime.promote(c, target, c.status.currentPrimary);
        })
        .then(done, (e: unknown) => {
          op.switching.delete(key);
          real.errors.push(new Error(`promoting ${target} of cluster ${name}: ${(e as Error).message}`));
        });
    }, timing.switchDelayMs);
    op.timers.add(t);
  }

  // Pods: one per instance, labelled with the role the status gives it; missing ones come back as replicas.
  for (const n of names) {
    const p = pods.get(n);
    if (!p) {
      if (creations.count(`${cluster.metadata.uid}/${n}`) === 0) {
        creations.schedule(`${cluster.metadata.uid}/${n}`, timing.replaceDelayMs, () => {
          const c = store.get('clusters', ns, name);
          if (!c || store.get('pods', ns, n)) return;
          const pod = instancePod(c, n, c.status?.currentPrimary === n ? 'primary' : 'replica');
          applyDefaults('pods', pod);
          const made = `${c.metadata.uid}/${n}`;
          if (!op.jobsMade.has(made)) {
            // A new volume: the initdb (first instance) or join (a replica's base backup) Job ran first; its pod stays, Completed.
            op.jobsMade.add(made);
            // A recovery bootstrap's first instance is made by the `full-recovery` Job (restore from the object store).
            const role = n !== names[0] ? 'join' : c.spec?.bootstrap?.recovery ? 'full-recovery' : 'initdb';
            // With a runtime the full-recovery Job really restores: Running until the runtime says it ended.
            const job = jobPod(c, n, role, role === 'full-recovery' && real !== undefined);
            applyDefaults('pods', job);
            store.create('pods', job);
          }
          store.create('pods', pod);
        });
      }
      continue;
    }
    const role = status.currentPrimary === n ? 'primary' : 'replica';
    if (p.metadata.labels?.[CNPG_ROLE_LABEL] !== role && podIsActive(p)) {
      store.updateAsServer('pods', { ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, [CNPG_ROLE_LABEL]: role, role } } });
    }
  }
  // Fencing: a fenced instance's postmaster is stopped and its pod kept, not Ready; no failover follows from it.
  if (real?.runtime.fence) {
    const fenced = fencedInstances(cluster, names);
    for (const n of names) {
      const p = pods.get(n);
      const k = `${cluster.metadata.uid}/${n}`;
      if (!p || !alive(n) || fenced.has(n) === op.fenced.has(k)) continue;
      if (fenced.has(n)) op.fenced.add(k);
      else op.fenced.delete(k);
      real.runtime.fence(p, fenced.has(n)).catch((e: Error) => real.errors.push(new Error(`fencing ${n}: ${e.message}`)));
    }
  }
  const ready = names.filter((n) => alive(n) && podIsReady(pods.get(n)!)).length;
  status.instances = instances;
  status.readyInstances = ready;
  status.instanceNames = names.filter((n) => pods.has(n));
  if (status.targetPrimary === status.currentPrimary) {
    status.phase =
      ready === instances
        ? 'Cluster in healthy state'
        : alive(status.currentPrimary)
          ? 'Waiting for the instances to become active'
          : (status.phase ?? 'Setting up primary');
  }
  for (const k of Object.keys(status)) if (status[k] === undefined) delete status[k];
  if (canonical(cluster.status) === canonical(status)) return;
  store.updateAsServer('clusters', { ...cluster, status });
}

/** A Job's pod that ran until now: Succeeded (or Failed) with its container's start and end, as the kubelet reports it. */
export function finishJobPod(store: Store, namespace: string, instance: string, role: string, ok: boolean): void {
  const at = now();
  for (const p of store.list(
    'pods',
    namespace,
    (x) => x.metadata.labels?.['job-name'] === `${instance}-${role}` && x.status?.phase === 'Running',
  )) {
    const started = p.status.containerStatuses?.[0]?.state?.running?.startedAt ?? p.status.startTime;
    store.updateAsServer('pods', {
      ...p,
      status: {
        ...p.status,
        phase: ok ? 'Succeeded' : 'Failed',
        conditions: (p.status.conditions ?? []).map((c: { type: string }) =>
          c.type === 'Ready' || c.type === 'ContainersReady'
            ? { ...c, status: 'False', reason: 'PodCompleted', lastTransitionTime: at }
            : c,
        ),
        containerStatuses: (p.status.containerStatuses ?? []).map((c: object) => ({
          ...c,
          ready: false,
          started: false,
          state: { terminated: { exitCode: ok ? 0 : 1, reason: ok ? 'Completed' : 'Error', startedAt: started, finishedAt: at } },
        })),
      },
    });
  }
}

/** The Secret keys a recovery bootstrap's object store names that are not in the store: the operator cannot go on without them. */
export function missingSecretRefs(store: Store, cluster: KubeObject): string[] {
  const source = cluster.spec?.bootstrap?.recovery?.source;
  if (!source) return [];
  const ext = (cluster.spec?.externalClusters ?? []).find((e: { name?: string }) => e.name === source);
  const az = ext?.barmanObjectStore?.azureCredentials ?? {};
  const out: string[] = [];
  for (const [field, ref] of Object.entries(az) as [string, { name: string; key: string }][]) {
    if (!ref || typeof ref !== 'object') continue;
    const secret = store.get('secrets', cluster.metadata.namespace, ref.name);
    if (!secret) out.push(`azureCredentials.${field}: secret "${ref.name}" not found`);
    else if (!(secret.data as Record<string, string> | undefined)?.[ref.key])
      out.push(`azureCredentials.${field}: key "${ref.key}" not found in secret "${ref.name}"`);
  }
  return out;
}
