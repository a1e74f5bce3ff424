/**
 * The Deployment controller in miniature: one ReplicaSet per pod template (found by comparing templates
 * without the hash label, which is how a rollback re-adopts an old ReplicaSet and bumps its revision),
 * rolling updates bounded by maxSurge/maxUnavailable, status and conditions that `kubectl rollout status` reads.
 *
 * The Progressing condition follows kube-controller-manager's syncRolloutStatus
 * (kubernetes/kubernetes pkg/controller/deployment/progress.go, with DeploymentComplete, DeploymentProgressing and
 * DeploymentTimedOut from pkg/controller/deployment/util/deployment_util.go): complete → True/NewReplicaSetAvailable;
 * any progress (more updated, ready or available replicas, fewer old ones) → True/ReplicaSetUpdated with a fresh
 * lastUpdateTime; no progress for spec.progressDeadlineSeconds after lastUpdateTime → False/ProgressDeadlineExceeded,
 * `ReplicaSet "<rs>" has timed out progressing.` (which `kubectl rollout status` turns into an error). As the real
 * controller's requeueStuckDeployment does, the Deployment is looked at again when its deadline falls due.
 */
import { canonical, controllerRef, ownedBy, templateHash } from './pod-controllers.ts';
import type { Store } from './store.ts';
import type { Condition, KubeObject } from './types.ts';

export const REVISION = 'deployment.kubernetes.io/revision';
const HASH_LABEL = 'pod-template-hash';

export function revisionOf(o: KubeObject): number {
  return Number(o.metadata.annotations?.[REVISION] ?? 0) || 0;
}

function withoutHash(template: any): unknown {
  const t = structuredClone(template ?? {});
  if (t.metadata?.labels) delete t.metadata.labels[HASH_LABEL];
  return t;
}

export function equalIgnoreHash(a: unknown, b: unknown): boolean {
  return canonical(withoutHash(a)) === canonical(withoutHash(b));
}

/** maxSurge / maxUnavailable: an int, or a percentage of `total` rounded up (surge) or down (unavailable). */
function intOrPercent(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(String(v ?? '25%'));
  const pct = m ? Number(m[1]) : 25;
  return roundUp ? Math.ceil((pct * total) / 100) : Math.floor((pct * total) / 100);
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function setReplicas(store: Store, rs: KubeObject, replicas: number): KubeObject {
  if (rs.spec.replicas === replicas) return rs;
  return store.updateAsServer('replicasets', { ...rs, spec: { ...rs.spec, replicas } });
}

function createReplicaSet(store: Store, d: KubeObject, revision: number, replicas: number): KubeObject {
  const hash = templateHash(withoutHash(d.spec.template));
  const template = structuredClone(d.spec.template);
  template.metadata ??= {};
  template.metadata.labels = { ...template.metadata.labels, [HASH_LABEL]: hash };
  return store.create('replicasets', {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: template.metadata.labels,
      annotations: {
        [REVISION]: String(revision),
        'deployment.kubernetes.io/desired-replicas': String(d.spec.replicas),
        ...(d.metadata.annotations?.['kubernetes.io/change-cause']
          ? { 'kubernetes.io/change-cause': d.metadata.annotations['kubernetes.io/change-cause'] }
          : {}),
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: d.metadata.name!,
          uid: d.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      minReadySeconds: d.spec.minReadySeconds ?? 0,
      selector: { ...d.spec.selector, matchLabels: { ...d.spec.selector?.matchLabels, [HASH_LABEL]: hash } },
      template,
    },
  });
}

/** DeploymentProgressing (deployment_util.go): the new status shows more updated, ready or available replicas, or fewer old ones. */
function progressed(
  old: any,
  next: { replicas: number; updatedReplicas: number; readyReplicas: number; availableReplicas: number },
): boolean {
  const o = old ?? {};
  const oldOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newOld = next.replicas - next.updatedReplicas;
  return (
    next.updatedReplicas > (o.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    next.readyReplicas > (o.readyReplicas ?? 0) ||
    next.availableReplicas > (o.availableReplicas ?? 0)
  );
}

/** Deadline of a Progressing condition, in ms since the epoch, or undefined when it cannot time out (DeploymentTimedOut). */
export function progressDeadlineAt(d: KubeObject, c: Condition | undefined): number | undefined {
  const seconds = d.spec.progressDeadlineSeconds;
  // HasProgressDeadline: unset or math.MaxInt32 means no deadline.
  if (typeof seconds !== 'number' || seconds === 2147483647 || !c || c.status !== 'True') return undefined;
  if (c.reason === 'NewReplicaSetAvailable' || c.reason === 'DeploymentPaused') return undefined;
  return Date.parse(c.lastUpdateTime!) + seconds * 1000;
}

function condition(prev: Condition[] | undefined, type: string, status: Condition['status'], reason: string, message: string): Condition {
  const old = prev?.find((c) => c.type === type);
  const at = now();
  const same = old && old.status === status && old.reason === reason && old.message === message;
  return {
    type,
    status,
    lastUpdateTime: same ? old.lastUpdateTime! : at,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime! : at,
    reason,
    message,
  };
}

/** Scale the new ReplicaSet up and the old ones down within the surge and unavailability budget. */
function rollingScale(store: Store, d: KubeObject, newRS: KubeObject, olds: KubeObject[]): KubeObject {
  const desired: number = d.spec.replicas;
  const ru = d.spec.strategy?.rollingUpdate ?? {};
  const surge = intOrPercent(ru.maxSurge, desired, true);
  let unavailable = intOrPercent(ru.maxUnavailable, desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  const oldSpec = olds.reduce((n, rs) => n + (rs.spec.replicas ?? 0), 0);
  const current: number = newRS.spec.replicas ?? 0;
  let target = current;
  if (current < desired) target = current + Math.max(0, Math.min(desired + surge - oldSpec - current, desired - current));
  else if (current > desired) target = desired;
  const updated = setReplicas(store, newRS, target);
  // As kube-controller-manager: old pods may go only as far as the new ones are available.
  const newUnavailable = target - (newRS.status?.availableReplicas ?? 0);
  let budget = oldSpec + target - (desired - unavailable) - newUnavailable;
  for (const old of [...olds].sort((a, b) => revisionOf(a) - revisionOf(b))) {
    if (budget <= 0) break;
    const take = Math.min(old.spec.replicas ?? 0, budget);
    if (take > 0) setReplicas(store, old, (old.spec.replicas ?? 0) - take);
    budget -= take;
  }
  return updated;
}

function recreateScale(store: Store, d: KubeObject, newRS: KubeObject, olds: KubeObject[]): KubeObject {
  if (olds.some((rs) => (rs.spec.replicas ?? 0) > 0)) {
    for (const old of olds) setReplicas(store, old, 0);
    return newRS;
  }
  if (olds.some((rs) => (rs.status?.replicas ?? 0) > 0)) return newRS;
  return setReplicas(store, newRS, d.spec.replicas);
}

/** `requeueAfter(ms)`: look at this Deployment again later (its progress deadline falls due then). */
export function reconcileDeployment(store: Store, input: KubeObject, requeueAfter: (ms: number) => void = () => undefined): void {
  let d = input;
  if (d.metadata.deletionTimestamp) return;
  const owned = ownedBy(store, 'replicasets', d);
  const maxRevision = Math.max(0, ...owned.map(revisionOf));
  let newRS = owned.find((rs) => equalIgnoreHash(rs.spec.template, d.spec.template));
  let created = false;
  if (!d.spec.paused) {
    if (!newRS) {
      // Created empty; the scaling step below sizes it within the strategy's budget.
      newRS = createReplicaSet(store, d, maxRevision + 1, 0);
      created = true;
    } else if (revisionOf(newRS) < maxRevision) {
      // Rolling back to an old template re-uses its ReplicaSet and makes it the newest revision.
      newRS = store.updateAsServer('replicasets', {
        ...newRS,
        metadata: { ...newRS.metadata, annotations: { ...newRS.metadata.annotations, [REVISION]: String(maxRevision + 1) } },
      });
    }
    // getNewReplicaSet keeps the new ReplicaSet's minReadySeconds in step with the Deployment's.
    if ((newRS.spec.minReadySeconds ?? 0) !== (d.spec.minReadySeconds ?? 0)) {
      newRS = store.updateAsServer('replicasets', { ...newRS, spec: { ...newRS.spec, minReadySeconds: d.spec.minReadySeconds ?? 0 } });
    }
  }
  if (newRS && d.metadata.annotations?.[REVISION] !== String(revisionOf(newRS))) {
    d = store.updateAsServer('deployments', {
      ...d,
      metadata: { ...d.metadata, annotations: { ...d.metadata.annotations, [REVISION]: String(revisionOf(newRS)) } },
    });
  }
  const olds = ownedBy(store, 'replicasets', d).filter((rs) => rs.metadata.uid !== newRS?.metadata.uid);
  if (newRS && !d.spec.paused) {
    newRS = d.spec.strategy?.type === 'Recreate' ? recreateScale(store, d, newRS, olds) : rollingScale(store, d, newRS, olds);
  }
  writeStatus(store, d, newRS, created, requeueAfter);
  cleanupHistory(store, d, newRS);
}

function writeStatus(
  store: Store,
  d: KubeObject,
  newRS: KubeObject | undefined,
  created: boolean,
  requeueAfter: (ms: number) => void,
): void {
  const all = ownedBy(store, 'replicasets', d);
  const fresh = newRS && all.find((rs) => rs.metadata.uid === newRS.metadata.uid);
  const sum = (f: (rs: KubeObject) => number) => all.reduce((n, rs) => n + f(rs), 0);
  const desired: number = d.spec.replicas;
  const replicas = sum((rs) => rs.status?.replicas ?? 0);
  const updatedReplicas = fresh?.status?.replicas ?? 0;
  const readyReplicas = sum((rs) => rs.status?.readyReplicas ?? 0);
  const availableReplicas = sum((rs) => rs.status?.availableReplicas ?? 0);
  const unavailable = intOrPercent(d.spec.strategy?.rollingUpdate?.maxUnavailable, desired, false);
  const complete = updatedReplicas === desired && replicas === desired && availableReplicas === desired;
  const prev: Condition[] | undefined = d.status?.conditions;
  const rsName = fresh?.metadata.name ?? '';
  const available =
    availableReplicas >= desired - unavailable
      ? condition(prev, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
      : condition(prev, 'Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.');
  const prevProgressing = prev?.find((c) => c.type === 'Progressing');
  const counts = { replicas, updatedReplicas, readyReplicas, availableReplicas };
  const deadline = progressDeadlineAt(d, prevProgressing);
  let progressing: Condition;
  if (d.spec.paused) progressing = condition(prev, 'Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused');
  else if (created) progressing = condition(prev, 'Progressing', 'True', 'NewReplicaSetCreated', `Created new replica set "${rsName}"`);
  else if (complete)
    progressing = condition(prev, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`);
  else if (progressed(d.status, counts)) {
    // Progress refreshes lastUpdateTime even with the same reason: that is what the deadline is measured from.
    const at = now();
    progressing = {
      type: 'Progressing',
      status: 'True',
      lastUpdateTime: at,
      lastTransitionTime: prevProgressing?.status === 'True' ? prevProgressing.lastTransitionTime! : at,
      reason: 'ReplicaSetUpdated',
      message: `ReplicaSet "${rsName}" is progressing.`,
    };
  } else if (prevProgressing?.reason === 'ProgressDeadlineExceeded' || (deadline !== undefined && deadline < Date.now()))
    progressing = condition(prev, 'Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rsName}" has timed out progressing.`);
  else
    progressing = prevProgressing ?? condition(prev, 'Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`);
  // requeueStuckDeployment: come back when the deadline of the condition now written falls due.
  const due = progressDeadlineAt(d, progressing);
  if (due !== undefined) requeueAfter(Math.max(0, due - Date.now()) + 20);
  const status = {
    observedGeneration: d.metadata.generation,
    replicas,
    updatedReplicas,
    readyReplicas,
    availableReplicas,
    ...(Math.max(0, sum((rs) => rs.spec.replicas ?? 0) - availableReplicas) > 0
      ? { unavailableReplicas: Math.max(0, sum((rs) => rs.spec.replicas ?? 0) - availableReplicas) }
      : {}),
    conditions: [available, progressing],
  };
  const current = store.get('deployments', d.metadata.namespace, d.metadata.name!);
  if (!current || canonical(current.status) === canonical(status)) return;
  store.updateAsServer('deployments', { ...current, status });
}

/** Keep at most revisionHistoryLimit scaled-down old ReplicaSets, as rollout history does. */
function cleanupHistory(store: Store, d: KubeObject, newRS: KubeObject | undefined): void {
  const limit: number = d.spec.revisionHistoryLimit ?? 10;
  const idle = ownedBy(store, 'replicasets', d)
    .filter((rs) => rs.metadata.uid !== newRS?.metadata.uid && (rs.spec.replicas ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0)
    .sort((a, b) => revisionOf(a) - revisionOf(b));
  for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) store.remove('replicasets', rs.metadata.namespace, rs.metadata.name!);
}

/** The Deployment a ReplicaSet belongs to, for requeueing the owner when the ReplicaSet changes. */
export function deploymentOf(rs: KubeObject): string | undefined {
  const ref = controllerRef(rs);
  return ref?.kind === 'Deployment' ? ref.name : undefined;
}
