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
 */
import { applyDefaults } from './defaults.ts';
import { podIsActive, podIsReady } from './kubelet.ts';
import { canonical, type Creations } from './pod-controllers.ts';
import type { Store } from './store.ts';
import type { CnpgRuntime, KubeObject } from './types.ts';

export const CNPG_CLUSTER_LABEL = 'cnpg.io/cluster';
export const CNPG_ROLE_LABEL = 'cnpg.io/instanceRole';

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
      labels: { [CNPG_CLUSTER_LABEL]: c, 'cnpg.io/instanceName': name, [CNPG_ROLE_LABEL]: role, role, 'cnpg.io/podRole': 'instance' },
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

export interface CnpgTiming {
  replaceDelayMs: number;
  /** Time the operator takes from deciding on a new primary to reporting it promoted. */
  switchDelayMs: number;
}

/** What the operator keeps to itself: switches it has scheduled, by cluster, and their timers. */
export interface CnpgOperatorState {
  timers: Set<NodeJS.Timeout>;
  switching: Map<string, string>;
  /** When each cluster's primary was first seen gone: failover waits spec.failoverDelay from then. */
  lostAt: Map<string, number>;
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
  const pods = new Map(store.list('pods', ns, (p) => p.metadata.labels?.[CNPG_CLUSTER_LABEL] === name).map((p) => [p.metadata.name!, p]));
  const status = { ...(cluster.status ?? {}) };
  status.currentPrimary ??= names[0];
  status.targetPrimary ??= status.currentPrimary;
  const alive = (n: string) => pods.has(n) && podIsActive(pods.get(n)!);

  const key = `${ns}/${name}`;
  // Failover: the current primary's pod is gone or terminating, no switch is under way yet, and it has been
  // gone for spec.failoverDelay seconds (the operator's default 0: at once).
  const primaryLost = !alive(status.currentPrimary) && status.targetPrimary === status.currentPrimary;
  const delayMs = (cluster.spec?.failoverDelay ?? 0) * 1000;
  if (!primaryLost) op.lostAt.delete(key);
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
  if (primaryLost && waitMs <= 0) {
    const candidate = names.find((n) => n !== status.currentPrimary && alive(n) && podIsReady(pods.get(n)!));
    if (candidate) {
      op.lostAt.delete(key);
      status.targetPrimary = candidate;
      status.phase = 'Failing over';
      status.phaseReason = `Failing over from ${status.currentPrimary} to ${candidate}`;
    }
  }
  // A switch (asked for through status.targetPrimary, or chosen above) completes after the operator's delay,
  // and with a runtime only once the real standby was promoted.
  if (status.targetPrimary !== status.currentPrimary && op.switching.get(key) !== status.targetPrimary) {
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
