/**
 * ReplicaSetAdapter over Kubernetes pods: a replica is a pod, its owner the Deployment (through its
 * ReplicaSet) or StatefulSet that replaces it. Guardrails come first: a namespace outside the allowlist (and
 * kube-system always) is refused before any call, and no more than `blastRadius` pods are deleted while the
 * workload is not whole.
 */
import {
  AppsV1Api,
  CoreV1Api,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { UserError } from '../../errors.ts';
import type { KillOptions, Replica, ReplicaSetAdapter, WorkloadStatus } from '../types.ts';
import { explain, KubeError, KubeGuardrailError, type KubeCall } from './errors.ts';
import { settleWatch } from './settle.ts';
import { startInformer, type Informer } from './informer.ts';
import { selectorMatches } from './selector.ts';
import {
  ownerName,
  podView,
  RESOURCE_OF,
  workloadView,
  type PodLike,
  type PodView,
  type WorkloadKind,
  type WorkloadLike,
  type WorkloadView,
} from './views.ts';

export interface KubeReplicasOptions {
  kubeConfig: KubeConfig;
  /** The namespace this adapter acts in. */
  namespace: string;
  /** Namespaces a drill may touch; `namespace` must be one of them. kube-system is refused even if listed. */
  allowedNamespaces: string[];
  /** The most pods deleted while the workload is not whole (see `kill`). */
  blastRadius: number;
  /** Longest wait for one API request. Default 15 s. */
  requestTimeoutMs?: number;
}

export interface KubeReplicaSetAdapter extends ReplicaSetAdapter {
  readonly namespace: string;
  readonly blastRadius: number;
  /** Kill pods as one action: the whole set is checked against the blast radius before the first delete. */
  killAll(replicas: Replica[], options: KillOptions): Promise<void>;
  /** Stops the watches status() keeps open. */
  close(): void;
}

/** Per-request options: an abort signal (the caller's, or the request timeout) on the underlying fetch. */
/** A status watch nobody asked about for this long is closed. */
const WATCH_IDLE_MS = 10_000;

function withSignal(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

export function checkNamespace(namespace: string, allowed: string[]): void {
  if (namespace === 'kube-system') {
    throw new KubeGuardrailError(
      'namespace "kube-system" is never a drill target: it runs the cluster itself',
      'point the target at the namespace of the workload under test',
    );
  }
  if (!allowed.includes(namespace)) {
    throw new KubeGuardrailError(
      `namespace "${namespace}" is not in the target's allowed namespaces (${allowed.length > 0 ? allowed.join(', ') : 'none listed'})`,
      'add it to target.namespaces in the drill file if the drill is meant to act there',
    );
  }
}

export function createKubeReplicas(options: KubeReplicasOptions): KubeReplicaSetAdapter {
  const { kubeConfig: kc, namespace, allowedNamespaces, blastRadius } = options;
  checkNamespace(namespace, allowedNamespaces);
  if (!Number.isInteger(blastRadius) || blastRadius < 1) {
    throw new KubeGuardrailError(
      `blast radius must be a whole number of pods, at least 1 (got ${blastRadius})`,
      'set target.blastRadius in the drill file',
    );
  }
  const server = kc.getCurrentCluster()?.server ?? '(no cluster in kubeconfig)';
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const where = `kube:${kc.getCurrentContext() || server}/${namespace}`;

  /** uid of each pod as last listed, so a delete names exactly the pod that was selected. */
  const seenUid = new Map<string, string>();
  /** Pods this adapter deleted, by name, with the uid they had: a StatefulSet replacement has the name, not the uid. */
  const killed = new Map<string, string>();
  /** Deletions since the workload was last seen whole; the blast radius caps this. */
  let downNow = 0;
  /**
   * When this harness first saw each pod (by uid), and first saw it Ready, in its own millisecond clock. The
   * API's own timestamps (creationTimestamp, startTime, the Ready condition's lastTransitionTime) have whole-second
   * resolution, too coarse for a replacement that is up 800 ms after the kill; the watch events are not.
   */
  const sightings = new Map<string, { seenAt: string; readyAt?: string }>();
  function sighted(p: PodView): PodView {
    const key = p.uid || p.name;
    const s = sightings.get(key) ?? { seenAt: new Date().toISOString() };
    sightings.set(key, s);
    if (p.ready && !s.readyAt) s.readyAt = new Date().toISOString();
    return p;
  }
  function toReplica(p: PodView, owner: string): Replica {
    const s = sightings.get(p.uid || p.name);
    return {
      name: p.name,
      labels: p.labels,
      ready: p.ready,
      startedAt: p.startedAt,
      owner,
      ...(s ? { seenAt: s.seenAt } : {}),
      ...(s?.readyAt ? { readyAt: s.readyAt } : {}),
    };
  }

  async function call<T>(
    c: Omit<KubeCall, 'server' | 'namespace'>,
    fn: (o: ConfigurationOptions) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    try {
      return await fn(withSignal(signal ? AbortSignal.any([signal, timeout]) : timeout));
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw explain(e, { ...c, namespace, server }, requestTimeoutMs);
    }
  }

  async function listPods(selector: string, signal?: AbortSignal): Promise<{ pods: PodView[]; resourceVersion: string }> {
    const l = await call(
      { verb: 'list', resource: 'pods', group: '' },
      (o) => core.listNamespacedPod({ namespace, labelSelector: selector }, o),
      signal,
    );
    const pods = l.items.map((i) => sighted(podView(i)));
    for (const p of pods) seenUid.set(p.name, p.uid);
    return { pods, resourceVersion: l.metadata?.resourceVersion ?? '' };
  }

  async function readWorkload(kind: WorkloadKind, name: string, signal?: AbortSignal): Promise<WorkloadLike> {
    const c = { verb: 'get', resource: RESOURCE_OF[kind], group: 'apps', name };
    switch (kind) {
      case 'Deployment':
        return call(c, (o) => apps.readNamespacedDeployment({ name, namespace }, o), signal);
      case 'StatefulSet':
        return call(c, (o) => apps.readNamespacedStatefulSet({ name, namespace }, o), signal);
      case 'ReplicaSet':
        return call(c, (o) => apps.readNamespacedReplicaSet({ name, namespace }, o), signal);
    }
  }

  /** Pod -> ReplicaSet -> Deployment, or Pod -> StatefulSet; undefined for a pod no controller owns. */
  async function ownerOf(
    p: PodView,
    rsCache: Map<string, Promise<{ kind: string; name: string }>>,
    signal?: AbortSignal,
  ): Promise<{ kind: string; name: string } | undefined> {
    const ref = p.controller;
    if (!ref) return undefined;
    if (ref.kind !== 'ReplicaSet') return ref;
    let owner = rsCache.get(ref.name);
    if (!owner) {
      owner = readWorkload('ReplicaSet', ref.name, signal).then((rs) => {
        const up = rs.metadata?.ownerReferences?.find((r) => r.controller);
        return up?.kind === 'Deployment' ? { kind: 'Deployment', name: up.name } : ref;
      });
      rsCache.set(ref.name, owner);
    }
    return owner;
  }

  async function replicasOf(
    pods: PodView[],
    signal?: AbortSignal,
  ): Promise<{ replicas: Replica[]; owners: Map<string, { kind: string; name: string }> }> {
    const rsCache = new Map<string, Promise<{ kind: string; name: string }>>();
    const owners = new Map<string, { kind: string; name: string }>();
    const replicas: Replica[] = [];
    for (const p of pods) {
      const o = (await ownerOf(p, rsCache, signal)) ?? { kind: 'Pod', name: p.name };
      owners.set(ownerName(o), o);
      replicas.push(toReplica(p, ownerName(o)));
    }
    return { replicas, owners };
  }

  /** The one workload behind a selector, found through its pods or, when it has none, through its pod template. */
  async function resolve(
    selector: string,
    signal?: AbortSignal,
  ): Promise<{ workload: WorkloadView; pods: PodView[]; replicas: Replica[] }> {
    const { pods } = await listPods(selector, signal);
    const { replicas, owners } = await replicasOf(pods, signal);
    let candidates = [...owners.values()];
    if (candidates.length === 0) {
      const byTemplate = (items: WorkloadLike[], kind: WorkloadKind) =>
        items
          .filter((w) => selectorMatches(selector, w.spec?.template?.metadata?.labels))
          .map((w) => ({ kind, name: w.metadata?.name ?? '' }));
      const deps = await call(
        { verb: 'list', resource: 'deployments', group: 'apps' },
        (o) => apps.listNamespacedDeployment({ namespace }, o),
        signal,
      );
      const sts = await call(
        { verb: 'list', resource: 'statefulsets', group: 'apps' },
        (o) => apps.listNamespacedStatefulSet({ namespace }, o),
        signal,
      );
      candidates = [...byTemplate(deps.items, 'Deployment'), ...byTemplate(sts.items, 'StatefulSet')];
    }
    if (candidates.length === 0) {
      throw new UserError(`selector "${selector}" matches no pods and no Deployment or StatefulSet template in namespace "${namespace}"`, {
        untouched: 'nothing was deleted',
        next: `check the selector against \`kubectl get pods -n ${namespace} --show-labels\` and fix scenarios[].params.selector`,
      });
    }
    if (candidates.length > 1) {
      throw new UserError(
        `selector "${selector}" matches pods of ${candidates.length} workloads in namespace "${namespace}": ${candidates.map(ownerName).join(', ')}`,
        {
          untouched: 'nothing was deleted',
          next: 'narrow the selector so that it matches the pods of one Deployment or StatefulSet',
        },
      );
    }
    const only = candidates[0]!;
    if (only.kind === 'Pod') {
      throw new UserError(`pod "${only.name}" matched by "${selector}" has no controller: nothing would replace it`, {
        untouched: 'nothing was deleted',
        next: 'pod kill needs pods of a Deployment or StatefulSet; fix the selector',
      });
    }
    if (!(only.kind in RESOURCE_OF)) {
      throw new UserError(
        `pods matched by "${selector}" belong to ${ownerName(only)}; pod kill supports Deployments, StatefulSets and ReplicaSets`,
        {
          untouched: 'nothing was deleted',
          next: 'choose a selector for a Deployment or StatefulSet',
        },
      );
    }
    const kind = only.kind as WorkloadKind;
    const workload = workloadView(kind, await readWorkload(kind, only.name, signal));
    return { workload, pods, replicas };
  }

  /** Ready as both the controller reports it and the pods show it: right after a delete the status lags. */
  function readyOf(w: WorkloadView, workloadPods: PodView[]): number {
    return Math.min(w.readyReplicas, workloadPods.filter((p) => p.ready).length);
  }

  /** A killed pod that is still there and ready: the same uid, or (killed elsewhere) the same name. */
  function stillUp(gone: Set<string>, pods: PodView[]): PodView[] {
    return pods.filter((p) => p.ready && gone.has(p.name) && (!killed.has(p.name) || killed.get(p.name) === p.uid));
  }

  function noteWhole(w: WorkloadView, workloadPods: PodView[]): void {
    if (readyOf(w, workloadPods) >= w.desired && stillUp(new Set(killed.keys()), workloadPods).length === 0) downNow = 0;
  }

  async function deleteOne(r: Replica, o: KillOptions): Promise<void> {
    if (r.owner.startsWith('pod/')) {
      throw new UserError(`pod "${r.name}" has no controller: deleting it would not be a drill, nothing would replace it`, {
        untouched: `pod "${r.name}" was not deleted`,
      });
    }
    const grace = Math.ceil(Math.max(0, o.gracePeriodMs) / 1000);
    const uid = seenUid.get(r.name);
    const body = { gracePeriodSeconds: grace, propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) };
    // The budget is taken before the request goes out, so kills started together cannot all pass the check.
    downNow += 1;
    try {
      const pod = await call({ verb: 'delete', resource: 'pods', group: '', name: r.name }, (opts) =>
        core.deleteNamespacedPod({ name: r.name, namespace, gracePeriodSeconds: grace, body }, opts),
      );
      killed.set(r.name, pod.metadata?.uid ?? uid ?? '');
    } catch (e) {
      // Already gone is the state a kill wants. A uid precondition failing means the pod of that name is a
      // replacement (StatefulSet): the selected pod is gone too, and the replacement must not be killed.
      if (e instanceof KubeError && (e.status === 404 || (e.status === 409 && uid))) return;
      downNow -= 1;
      throw e;
    }
  }

  function checkBudget(n: number): void {
    if (downNow + n > blastRadius) {
      throw new KubeGuardrailError(
        `refusing to delete ${n} pod${n === 1 ? '' : 's'} in namespace "${namespace}": the blast radius is ${blastRadius} and ${downNow} ${downNow === 1 ? 'was' : 'were'} already deleted since the workload was last whole`,
        'lower the count of pods to kill, or raise target.blastRadius in the drill file if the larger outage is intended',
      );
    }
  }

  async function watchUntilReady(
    selector: string,
    o: { timeoutMs: number; signal: AbortSignal; gone?: string[] },
  ): Promise<WorkloadStatus> {
    const started = performance.now();
    const deadline = AbortSignal.timeout(o.timeoutMs);
    const first = await resolve(selector, AbortSignal.any([o.signal, deadline])).catch((e: unknown) => {
      if (deadline.aborted && !o.signal.aborted) throw timeoutError(o.timeoutMs, `resolving the workload of "${selector}"`, undefined);
      throw e;
    });
    const w0 = first.workload;
    const gone = new Set(o.gone ?? []);
    let lastTransient: unknown;
    let current = (): { w: WorkloadView | undefined; pods: PodView[] } => ({ w: undefined, pods: [] });
    const timedOut = () => {
      const { w, pods: ps } = current();
      const seen = w ? `${readyOf(w, ps)}/${w.desired} ready` : `${ownerName(w0)} not found`;
      const up = stillUp(gone, ps).map((p) => p.name);
      // A killed pod stuck Terminating (a finalizer nobody removes, a node that does not answer) holds a StatefulSet's
      // replacement back: name it, and what holds it, so the timeout says where to look.
      const stuck = ps
        .filter((p) => p.terminating && gone.has(p.name) && (!killed.has(p.name) || killed.get(p.name) === p.uid))
        .map((p) => `${p.name}${p.terminating!.finalizers.length ? ` (finalizers: ${p.terminating!.finalizers.join(', ')})` : ''}`);
      const detail = `${seen}${up.length ? `; killed pods still ready: ${up.join(', ')}` : ''}${stuck.length ? `; killed pods still terminating: ${stuck.join(', ')}` : ''}`;
      return timeoutError(o.timeoutMs, `${ownerName(w0)} in namespace "${namespace}" to be ready (${detail})`, lastTransient);
    };
    // One budget for the whole wait: what resolving the workload took is not given again to the watch.
    const left = Math.max(0, Math.round(o.timeoutMs - (performance.now() - started)));
    return settleWatch<WorkloadStatus>({ timeoutMs: left, signal: o.signal, timedOut }, ({ stop, done, fail }) => {
      const evaluate = () => {
        const { w, pods: ps } = current();
        if (!workloads.synced || !pods.synced || !w) return;
        if (w.observedGeneration < w.generation) return;
        if (readyOf(w, ps) < w.desired || stillUp(gone, ps).length > 0) return;
        noteWhole(w, ps);
        const replicas = ps.filter((p) => selectorMatches(selector, p.labels)).map((p) => toReplica(p, ownerName(w)));
        done({ owner: ownerName(w), desired: w.desired, ready: readyOf(w, ps), replicas });
      };
      const { workloads, pods } = watchWorkload(w0, {
        signal: stop,
        onChange: evaluate,
        onFatal: fail,
        onTransient: (e) => (lastTransient = e),
      });
      current = () => ({ w: [...workloads.items.values()][0], pods: [...pods.items.values()] });
    });
  }

  /**
   * A workload and its pods as two informers (list, then watch from there; re-list after a 410). `onFatal`
   * gets a KubeError naming the refused watch.
   */
  function watchWorkload(
    w0: WorkloadView,
    o: { signal: AbortSignal; onChange(): void; onFatal(e: KubeError): void; onTransient?(e: unknown): void },
  ): { workloads: Informer<WorkloadView>; pods: Informer<PodView> } {
    const resource = RESOURCE_OF[w0.kind];
    const fatal = (verb: string, res: string, group: string) => (e: unknown) =>
      o.onFatal(explain(e, { verb, resource: res, group, namespace, server }, requestTimeoutMs));
    const workloads = startInformer<WorkloadView>({
      kubeConfig: kc,
      path: `/apis/apps/v1/namespaces/${namespace}/${resource}`,
      query: { fieldSelector: `metadata.name=${w0.name}` },
      list: async (signal) => {
        const c = { verb: 'list', resource, group: 'apps' };
        const q = { namespace, fieldSelector: `metadata.name=${w0.name}` };
        const l: { items: WorkloadLike[]; metadata?: { resourceVersion?: string } } =
          w0.kind === 'Deployment'
            ? await call(c, (opt) => apps.listNamespacedDeployment(q, opt), signal)
            : w0.kind === 'StatefulSet'
              ? await call(c, (opt) => apps.listNamespacedStatefulSet(q, opt), signal)
              : await call(c, (opt) => apps.listNamespacedReplicaSet(q, opt), signal);
        return { items: l.items.map((i) => workloadView(w0.kind, i)), resourceVersion: l.metadata?.resourceVersion ?? '' };
      },
      fromWatch: (raw) => workloadView(w0.kind, raw as WorkloadLike),
      key: (v) => v.name,
      resourceVersionOf: (v) => v.resourceVersion,
      signal: o.signal,
      onChange: o.onChange,
      onFatal: fatal('watch', resource, 'apps'),
      onTransient: o.onTransient,
    });
    const pods = startInformer<PodView>({
      kubeConfig: kc,
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { labelSelector: w0.selector },
      list: async (signal) => {
        const l = await listPods(w0.selector, signal);
        return { items: l.pods, resourceVersion: l.resourceVersion };
      },
      fromWatch: (raw) => sighted(podView(raw as PodLike)),
      key: (p) => p.name,
      resourceVersionOf: (p) => p.resourceVersion,
      signal: o.signal,
      onChange: o.onChange,
      onFatal: fatal('watch', 'pods', ''),
      onTransient: o.onTransient,
    });
    return { workloads, pods };
  }

  /**
   * status() during a drill is asked every 100 ms: after the first answer from plain reads, the workload is
   * watched and later answers come from the watch cache, so a recovery check costs one open stream, not three
   * requests per poll. A watch idle for WATCH_IDLE_MS, or refused, is dropped (the next call reads again).
   */
  const statusWatches = new Map<
    string,
    {
      w0: WorkloadView;
      workloads: Informer<WorkloadView>;
      pods: Informer<PodView>;
      stop: AbortController;
      idle: NodeJS.Timeout;
      failed: boolean;
    }
  >();

  function keepWatching(selector: string, w0: WorkloadView): void {
    const existing = statusWatches.get(selector);
    if (existing) {
      existing.idle.refresh();
      return;
    }
    const stop = new AbortController();
    const entry = {
      w0,
      stop,
      failed: false,
      idle: setTimeout(() => dropWatch(selector), WATCH_IDLE_MS),
      ...watchWorkload(w0, {
        signal: stop.signal,
        onChange: () => undefined,
        onFatal: () => {
          entry.failed = true;
          dropWatch(selector);
        },
      }),
    };
    entry.idle.unref();
    statusWatches.set(selector, entry);
  }

  function dropWatch(selector: string): void {
    const e = statusWatches.get(selector);
    if (!e) return;
    statusWatches.delete(selector);
    clearTimeout(e.idle);
    e.stop.abort();
  }

  function cachedStatus(selector: string): WorkloadStatus | undefined {
    const e = statusWatches.get(selector);
    if (!e || e.failed || !e.workloads.synced || !e.pods.synced) return undefined;
    const w = e.workloads.items.get(e.w0.name);
    if (!w) return undefined;
    e.idle.refresh();
    const ps = [...e.pods.items.values()];
    noteWhole(w, ps);
    const replicas = ps.filter((p) => selectorMatches(selector, p.labels)).map((p) => toReplica(p, ownerName(w)));
    return { owner: ownerName(w), desired: w.desired, ready: readyOf(w, ps), replicas };
  }

  function timeoutError(ms: number, waitingFor: string, lastTransient: unknown): KubeError {
    const why = lastTransient
      ? `; last error: ${explain(lastTransient, { verb: 'watch', resource: 'pods', group: '', namespace, server }, requestTimeoutMs).message}`
      : '';
    // Not ready in time is the system under test failing to recover, not a mistake in the drill (exit 1, not 2).
    return new KubeError(`timed out after ${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s waiting for ${waitingFor}${why}`, {
      reason: 'Timeout',
      verb: 'watch',
      resource: 'pods',
      namespace,
      exitCode: 1,
    });
  }

  return {
    where,
    namespace,
    blastRadius,

    async list(selector) {
      const { pods } = await listPods(selector);
      return (await replicasOf(pods)).replicas;
    },

    async kill(replica, o) {
      checkBudget(1);
      await deleteOne(replica, o);
    },

    async killAll(replicas, o) {
      checkBudget(replicas.length);
      for (const r of replicas) await deleteOne(r, o);
    },

    async status(selector) {
      const cached = cachedStatus(selector);
      if (cached) return cached;
      const { workload, pods, replicas } = await resolve(selector);
      const workloadPods = workload.selector === selector ? pods : (await listPods(workload.selector)).pods;
      noteWhole(workload, workloadPods);
      keepWatching(selector, workload);
      return { owner: ownerName(workload), desired: workload.desired, ready: readyOf(workload, workloadPods), replicas };
    },

    close() {
      for (const selector of [...statusWatches.keys()]) dropWatch(selector);
    },

    waitReady(selector, o) {
      return watchUntilReady(selector, o);
    },

    ensureDesired(selector, o) {
      // The controller starts what is missing; the rollback waits for it, and for every pod this adapter killed to be gone.
      return watchUntilReady(selector, { ...o, gone: [...killed.keys()] });
    },
  };
}
