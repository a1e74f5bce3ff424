/**
 * kube-controller-manager in miniature: a work queue fed by store events (like informers), reconcilers for
 * Deployments, ReplicaSets, StatefulSets and HPAs, the garbage collector (ownerReferences) and the namespace
 * controller, and the kubelet. Reconciles run on a later tick, never inside the write that triggered them.
 */
import { reconcileDeployment, deploymentOf } from './deployment.ts';
import { deletePod, Kubelet } from './kubelet.ts';
import { controllerRef, Creations, reconcileReplicaSet, reconcileStatefulSet, canonical } from './pod-controllers.ts';
import { RESOURCES, resourceOfKind } from './discovery.ts';
import { reconcileCnpgCluster, type CnpgOperatorState } from './cnpg.ts';
import type { Store, StoreEvent } from './store.ts';
import type { CnpgRuntime, Condition, KubeObject } from './types.ts';

export interface ControllerOptions {
  replaceDelayMs: number;
  readyDelayMs: number;
  shutdownMs: number;
  /** CloudNativePG: time spent on `targetPrimary: "pending"` before the election (cnpg.ts). */
  cnpgElectDelayMs?: number;
}

interface Key {
  resource: string;
  namespace?: string;
  name: string;
}

/** Utilisation the HPA reports per resource metric: plausible numbers, the HPA never acts on them here. */
const REPORTED_UTILISATION: Record<string, { averageUtilization: number; averageValue: string }> = {
  cpu: { averageUtilization: 35, averageValue: '35m' },
  memory: { averageUtilization: 42, averageValue: '54Mi' },
};

export class Controllers {
  private readonly queue = new Map<string, Key>();
  private readonly garbage: KubeObject[] = [];
  private flushScheduled = false;
  private stopped = false;
  private readonly creations = new Creations();
  /** Delayed requeues (progress deadlines, minReadySeconds), one per key: the earliest due wins. */
  private readonly later = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private readonly cnpg: CnpgOperatorState = {
    timers: new Set(),
    switching: new Map(),
    lostAt: new Map(),
    pendingSince: new Map(),
    jobsMade: new Set(),
    fenced: new Set(),
  };
  private readonly kubelet: Kubelet;
  private readonly unsubscribe: () => void;
  /** Reconcile failures; a test asserting on the server's behaviour can check that there were none. */
  readonly errors: Error[] = [];

  private readonly opts: ControllerOptions;

  constructor(
    private readonly store: Store,
    opts: ControllerOptions,
    private readonly runtime?: CnpgRuntime,
  ) {
    this.opts = { ...opts };
    this.kubelet = new Kubelet(store, this.opts, runtime ? { cnpg: runtime, errors: this.errors } : undefined);
    this.unsubscribe = store.subscribe((e) => this.onEvent(e));
  }

  /** The kubelet's readiness report for a running pod (the CloudNativePG runtime marks a rejoining replica not Ready). */
  setPodReady(namespace: string, name: string, ready: boolean): void {
    this.kubelet.setReady(namespace, name, ready);
  }

  /** Change the delays for what happens from now on (the kubelet and the ReplicaSet controller read them when they act). */
  setTiming(t: ControllerOptions): void {
    Object.assign(this.opts, t);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.kubelet.stop();
    this.creations.stop();
    for (const l of this.later.values()) clearTimeout(l.timer);
    this.later.clear();
    for (const t of this.cnpg.timers) clearTimeout(t);
  }

  private onEvent(e: StoreEvent): void {
    const o = e.object;
    const ns = o.metadata.namespace;
    const name = o.metadata.name!;
    if (e.type === 'DELETED') this.garbage.push(o);
    switch (e.resource) {
      case 'pods': {
        this.kubelet.onPod(e.type, o);
        const ref = controllerRef(o);
        if (ref?.kind === 'ReplicaSet') this.enqueue({ resource: 'replicasets', namespace: ns, name: ref.name });
        if (ref?.kind === 'StatefulSet') this.enqueue({ resource: 'statefulsets', namespace: ns, name: ref.name });
        if (ref?.kind === 'Cluster') this.enqueue({ resource: 'clusters', namespace: ns, name: ref.name });
        break;
      }
      case 'replicasets': {
        if (e.type !== 'DELETED') this.enqueue({ resource: 'replicasets', namespace: ns, name });
        const d = deploymentOf(o);
        if (d) this.enqueue({ resource: 'deployments', namespace: ns, name: d });
        break;
      }
      case 'deployments':
      case 'statefulsets':
        if (e.type !== 'DELETED') this.enqueue({ resource: e.resource, namespace: ns, name });
        for (const hpa of this.store.list('horizontalpodautoscalers', ns, (h) => h.spec?.scaleTargetRef?.name === name)) {
          this.enqueue({ resource: 'horizontalpodautoscalers', namespace: ns, name: hpa.metadata.name! });
        }
        break;
      case 'horizontalpodautoscalers':
      case 'clusters':
        if (e.type !== 'DELETED') this.enqueue({ resource: e.resource, namespace: ns, name });
        break;
      case 'namespaces':
        if (o.metadata.deletionTimestamp && e.type !== 'DELETED') this.enqueue({ resource: 'namespaces', name });
        break;
    }
    this.scheduleFlush();
  }

  enqueue(k: Key): void {
    this.queue.set(`${k.resource}/${k.namespace ?? ''}/${k.name}`, k);
    this.scheduleFlush();
  }

  /** Reconcile `k` again after `ms` (the real controllers' queue.AddAfter). */
  enqueueAfter(k: Key, ms: number): void {
    const id = `${k.resource}/${k.namespace ?? ''}/${k.name}`;
    const due = Date.now() + ms;
    const existing = this.later.get(id);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.later.delete(id);
      this.enqueue(k);
    }, ms);
    timer.unref();
    this.later.set(id, { timer, due });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    for (const o of this.garbage.splice(0)) this.guard(() => this.collect(o));
    const keys = [...this.queue.values()];
    this.queue.clear();
    for (const k of keys) this.guard(() => this.reconcile(k));
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.errors.push(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private reconcile(k: Key): void {
    const o = this.store.get(k.resource, k.namespace, k.name);
    if (!o) return;
    const requeue = () => this.enqueue(k);
    const requeueAfter = (ms: number) => this.enqueueAfter(k, ms);
    switch (k.resource) {
      case 'deployments':
        reconcileDeployment(this.store, o, requeueAfter);
        return;
      case 'replicasets':
        reconcileReplicaSet(this.store, this.creations, this.opts.replaceDelayMs, o, requeue, requeueAfter);
        return;
      case 'statefulsets':
        reconcileStatefulSet(this.store, this.creations, this.opts.replaceDelayMs, o, requeue);
        return;
      case 'horizontalpodautoscalers':
        this.reconcileHpa(o);
        return;
      case 'clusters':
        reconcileCnpgCluster(
          this.store,
          this.creations,
          this.cnpg,
          {
            replaceDelayMs: this.opts.replaceDelayMs,
            switchDelayMs: this.opts.readyDelayMs,
            electDelayMs: this.opts.cnpgElectDelayMs ?? 0,
          },
          o,
          requeue,
          this.runtime && { runtime: this.runtime, errors: this.errors },
        );
        return;
      case 'namespaces':
        this.finalizeNamespace(o);
        return;
    }
  }

  /** Background cascading deletion: dependents of a deleted owner go too (pods gracefully). */
  private collect(owner: KubeObject): void {
    const uid = owner.metadata.uid;
    for (const t of RESOURCES.filter((r) => r.namespaced)) {
      for (const dep of this.store.list(t.resource, owner.metadata.namespace, (o) =>
        (o.metadata.ownerReferences ?? []).some((r) => r.uid === uid),
      )) {
        if (t.resource === 'pods') deletePod(this.store, dep, undefined);
        else this.store.remove(t.resource, dep.metadata.namespace, dep.metadata.name!);
      }
    }
  }

  /** A terminating namespace empties itself, then disappears. */
  private finalizeNamespace(ns: KubeObject): void {
    const name = ns.metadata.name!;
    for (const t of RESOURCES.filter((r) => r.namespaced)) {
      for (const o of this.store.list(t.resource, name)) {
        if (t.resource === 'pods') deletePod(this.store, o, 0);
        else this.store.remove(t.resource, name, o.metadata.name!);
      }
    }
    this.store.remove('namespaces', undefined, name);
  }

  /** HPAs are stored and report plausible status; they never scale anything (drills check policy, not autoscaling). */
  private reconcileHpa(hpa: KubeObject): void {
    const ref = hpa.spec?.scaleTargetRef ?? {};
    const t = resourceOfKind(ref.apiVersion, ref.kind);
    const target = t ? this.store.get(t.resource, hpa.metadata.namespace, ref.name) : undefined;
    const min: number = hpa.spec.minReplicas ?? 1;
    const max: number = hpa.spec.maxReplicas;
    const current: number = target?.status?.replicas ?? 0;
    const wanted: number = target?.spec?.replicas ?? 0;
    const desired = Math.min(max, Math.max(min, wanted));
    const prev: Condition[] = hpa.status?.conditions ?? [];
    const cond = (type: string, status: Condition['status'], reason: string, message: string): Condition => {
      const old = prev.find((c) => c.type === type);
      return {
        type,
        status,
        lastTransitionTime: old?.status === status ? old.lastTransitionTime! : new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        reason,
        message,
      };
    };
    const status = {
      observedGeneration: hpa.metadata.generation,
      currentReplicas: current,
      desiredReplicas: target ? desired : 0,
      currentMetrics: target
        ? (hpa.spec.metrics ?? [])
            .filter((m: { type: string }) => m.type === 'Resource')
            .map((m: { resource: { name: string } }) => ({
              type: 'Resource',
              resource: { name: m.resource.name, current: REPORTED_UTILISATION[m.resource.name] ?? { averageUtilization: 50 } },
            }))
        : [],
      conditions: target
        ? [
            cond('AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size'),
            cond(
              'ScalingActive',
              'True',
              'ValidMetricFound',
              'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)',
            ),
            desired === wanted
              ? cond('ScalingLimited', 'False', 'DesiredWithinRange', 'the desired count is within the acceptable range')
              : cond(
                  'ScalingLimited',
                  'True',
                  desired > wanted ? 'TooFewReplicas' : 'TooManyReplicas',
                  `the desired replica count is ${desired > wanted ? 'less' : 'more'} than the ${desired > wanted ? 'minimum' : 'maximum'} replica count`,
                ),
          ]
        : [
            cond(
              'AbleToScale',
              'False',
              'FailedGetScale',
              `the HPA controller was unable to get the target's current scale: ${ref.kind?.toLowerCase()}s "${ref.name}" not found`,
            ),
          ],
    };
    if (canonical(hpa.status) === canonical(status)) return;
    this.store.updateAsServer('horizontalpodautoscalers', { ...hpa, status });
  }
}
