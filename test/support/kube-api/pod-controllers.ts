/**
 * The controllers that own pods: ReplicaSet (random-suffix names, any pod may go) and StatefulSet
 * (ordinal names: a replacement has the same name as the pod it replaces, a new uid). A missing pod is
 * created `replaceDelayMs` after the controller notices it is missing.
 */
import { createHash, randomInt } from 'node:crypto';
import { deletePod, podIsActive, podIsReady } from './kubelet.ts';
import type { Store } from './store.ts';
import type { KubeObject, OwnerReference } from './types.ts';
import { defaultPodSpec } from './defaults.ts';

/** The alphabet the API server uses for generated name suffixes and hashes: no vowels, no look-alikes. */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHANUMS[randomInt(ALPHANUMS.length)];
  return s;
}

/** JSON with sorted keys, so a template patched back to an earlier form hashes and compares the same. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A short hash of a pod template, spelled like the `pod-template-hash` label values of a real cluster. */
export function templateHash(template: unknown): string {
  const digest = createHash('sha256').update(canonical(template)).digest();
  let s = '';
  for (let i = 0; i < 10; i++) s += ALPHANUMS[digest[i]! % ALPHANUMS.length];
  return s;
}

export function controllerRef(o: KubeObject): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller);
}

export function ownedBy(store: Store, resource: string, owner: KubeObject): KubeObject[] {
  return store.list(resource, owner.metadata.namespace, (o) => controllerRef(o)?.uid === owner.metadata.uid);
}

function ownerReference(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion!,
    kind: owner.kind!,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function podFromTemplate(owner: KubeObject, name: string, extraLabels: Record<string, string> = {}): KubeObject {
  const t = structuredClone(owner.spec.template ?? {});
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: `${owner.metadata.name}-`,
      namespace: owner.metadata.namespace,
      labels: { ...t.metadata?.labels, ...extraLabels },
      ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
      // GetPodFromTemplate (kubernetes/kubernetes pkg/controller/controller_utils.go) copies the template's finalizers too.
      ...(t.metadata?.finalizers?.length ? { finalizers: [...t.metadata.finalizers] } : {}),
      ownerReferences: [ownerReference(owner)],
    },
    spec: defaultPodSpec(t.spec),
  };
}

function writeStatus(store: Store, resource: string, o: KubeObject, status: Record<string, unknown>): void {
  if (canonical({ ...o.status, ...status }) === canonical(o.status)) return;
  store.updateAsServer(resource, { ...o, status: { ...o.status, ...status } });
}

/** Pending pod creations per owner uid: the "expectations" that stop a controller creating twice. */
export class Creations {
  private readonly pending = new Map<string, Set<NodeJS.Timeout>>();

  count(uid: string): number {
    return this.pending.get(uid)?.size ?? 0;
  }

  schedule(uid: string, ms: number, create: () => void): void {
    let set = this.pending.get(uid);
    if (!set) {
      set = new Set();
      this.pending.set(uid, set);
    }
    const timer: NodeJS.Timeout = setTimeout(() => {
      set.delete(timer);
      create();
    }, ms);
    set.add(timer);
  }

  /** Cancel up to n pending creations; returns how many were cancelled. */
  cancel(uid: string, n = Infinity): number {
    const set = this.pending.get(uid);
    let done = 0;
    for (const t of [...(set ?? [])]) {
      if (done >= n) break;
      clearTimeout(t);
      set!.delete(t);
      done++;
    }
    return done;
  }

  stop(): void {
    for (const set of this.pending.values()) for (const t of set) clearTimeout(t);
    this.pending.clear();
  }
}

/**
 * IsPodAvailable (kubernetes/kubernetes pkg/api/v1/pod/util.go): Ready, and Ready for at least minReadySeconds
 * (measured from the Ready condition's lastTransitionTime). Returns when a ready pod will become available.
 */
export function availableAt(pod: KubeObject, minReadySeconds: number): number | undefined {
  if (!podIsReady(pod)) return undefined;
  if (!minReadySeconds) return 0;
  const c = (pod.status?.conditions ?? []).find((x: { type: string }) => x.type === 'Ready');
  return Date.parse(c?.lastTransitionTime ?? '') + minReadySeconds * 1000;
}

export function reconcileReplicaSet(
  store: Store,
  creations: Creations,
  replaceDelayMs: number,
  rs: KubeObject,
  requeue: () => void,
  requeueAfter: (ms: number) => void = () => undefined,
): void {
  const uid = rs.metadata.uid!;
  const pods = ownedBy(store, 'pods', rs);
  const active = pods.filter(podIsActive);
  const desired: number = rs.metadata.deletionTimestamp ? 0 : (rs.spec.replicas ?? 1);
  const missing = desired - active.length - creations.count(uid);
  for (let i = 0; i < missing; i++) {
    creations.schedule(uid, replaceDelayMs, () => {
      const current = store.get('replicasets', rs.metadata.namespace, rs.metadata.name!);
      if (!current || current.metadata.uid !== uid) return;
      store.create('pods', podFromTemplate(current, `${current.metadata.name}-${randomSuffix()}`));
      requeue();
    });
  }
  let excess = active.length + creations.count(uid) - desired;
  if (excess > 0) excess -= creations.cancel(uid, excess);
  if (excess > 0) {
    // The API server's preference: pods not yet ready go first, then the youngest.
    const victims = [...active].sort(
      (a, b) => Number(podIsReady(a)) - Number(podIsReady(b)) || b.metadata.creationTimestamp!.localeCompare(a.metadata.creationTimestamp!),
    );
    for (const p of victims.slice(0, excess)) deletePod(store, p, undefined);
  }
  const now = ownedBy(store, 'pods', rs).filter(podIsActive);
  const ready = now.filter(podIsReady).length;
  // Available lags Ready by minReadySeconds; as the ReplicaSet controller does, look again when the next pod gets there.
  const at = Date.now();
  const times = now.map((p) => availableAt(p, rs.spec.minReadySeconds ?? 0)).filter((t): t is number => t !== undefined);
  const available = times.filter((t) => t < at).length;
  const next = times.filter((t) => t >= at).sort((a, b) => a - b)[0];
  if (next !== undefined) requeueAfter(next - at + 20);
  writeStatus(store, 'replicasets', rs, {
    replicas: now.length,
    fullyLabeledReplicas: now.length,
    readyReplicas: ready,
    availableReplicas: available,
    observedGeneration: rs.metadata.generation,
  });
}

export function reconcileStatefulSet(
  store: Store,
  creations: Creations,
  replaceDelayMs: number,
  sts: KubeObject,
  requeue: () => void,
): void {
  const uid = sts.metadata.uid!;
  const name = sts.metadata.name!;
  const desired: number = sts.spec.replicas ?? 1;
  const revision = `${name}-${templateHash(sts.spec.template)}`;
  const pods = ownedBy(store, 'pods', sts);
  const byName = new Map(pods.map((p) => [p.metadata.name!, p]));
  // A terminating pod still holds its name: its replacement waits until it is gone, as on a cluster.
  if (creations.count(uid) === 0) {
    for (let i = 0; i < desired; i++) {
      const podName = `${name}-${i}`;
      if (byName.has(podName)) continue;
      creations.schedule(uid, replaceDelayMs, () => {
        const current = store.get('statefulsets', sts.metadata.namespace, name);
        if (!current || current.metadata.uid !== uid || store.get('pods', sts.metadata.namespace, podName)) return requeue();
        const labels = {
          'statefulset.kubernetes.io/pod-name': podName,
          'apps.kubernetes.io/pod-index': String(i),
          'controller-revision-hash': revision,
        };
        const pod = podFromTemplate(current, podName, labels);
        delete pod.metadata.generateName;
        pod.spec.hostname = podName;
        store.create('pods', pod);
        requeue();
      });
    }
  }
  for (const p of pods) {
    const ordinal = Number(p.metadata.name!.slice(name.length + 1));
    if (ordinal >= desired && podIsActive(p)) deletePod(store, p, undefined);
  }
  // Rolling update: one outdated pod at a time, highest ordinal first, only while every pod is ready.
  const active = ownedBy(store, 'pods', sts).filter(podIsActive);
  const outdated = active.filter((p) => p.metadata.labels?.['controller-revision-hash'] !== revision);
  if (outdated.length > 0 && active.length === desired && active.every(podIsReady)) {
    const last = outdated.sort((a, b) => b.metadata.name!.localeCompare(a.metadata.name!, undefined, { numeric: true }))[0]!;
    deletePod(store, last, undefined);
  }
  const now = ownedBy(store, 'pods', sts).filter(podIsActive);
  const ready = now.filter(podIsReady).length;
  const updated = now.filter((p) => p.metadata.labels?.['controller-revision-hash'] === revision).length;
  // Mid-update, "current" pods are the ones still on the old revision; once all are updated the new one is current.
  const complete = updated === now.length;
  writeStatus(store, 'statefulsets', sts, {
    replicas: now.length,
    readyReplicas: ready,
    availableReplicas: ready,
    currentReplicas: complete ? updated : now.length - updated,
    updatedReplicas: updated,
    currentRevision: complete ? revision : (sts.status?.currentRevision ?? revision),
    updateRevision: revision,
    observedGeneration: sts.metadata.generation,
    collisionCount: 0,
  });
}
