/**
 * The kubelet in miniature: a new pod runs and turns Ready after `readyDelayMs`; a pod being deleted
 * gracefully stays (Terminating, with deletionTimestamp) until its container has exited, which takes
 * `shutdownMs` or the grace period, whichever is shorter.
 *
 * An image from the registry host `unpullable.example` never starts: the pod stays Pending with its container
 * waiting in ImagePullBackOff, as a typo'd tag or a registry the node cannot reach leaves it on a cluster.
 *
 * Finalizers (https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/): a pod that still has
 * finalizers when its containers have exited is not removed. The kubelet reports it stopped (Ready False, containers
 * terminated) and asks for the final grace-0 delete, which only sets deletionGracePeriodSeconds to 0; the object goes
 * when an update removes the last finalizer (the registry's deleteForEmptyFinalizers in
 * staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go, which for pods requires grace 0:
 * pkg/registry/core/pod/strategy.go). Until then it holds its name, so a StatefulSet's replacement waits.
 */
import type { Store } from './store.ts';
import type { CnpgRuntime, Condition, KubeObject } from './types.ts';

export const NODE_NAME = 'drill-node-1';
const HOST_IP = '10.0.0.10';

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The registry host whose images the fake kubelet can never pull. */
export const UNPULLABLE_REGISTRY = 'unpullable.example/';

function unpullable(pod: KubeObject): string | undefined {
  return (pod.spec?.containers ?? []).map((c: { image?: string }) => c.image ?? '').find((i: string) => i.startsWith(UNPULLABLE_REGISTRY));
}

function hasFinalizers(o: KubeObject): boolean {
  return (o.metadata.finalizers ?? []).length > 0;
}

function isTerminal(pod: KubeObject): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export function podIsReady(pod: KubeObject): boolean {
  return (pod.status?.conditions ?? []).some((c: Condition) => c.type === 'Ready' && c.status === 'True');
}

/** Not being deleted and not finished: what controllers count toward their replicas. */
export function podIsActive(pod: KubeObject): boolean {
  return !pod.metadata.deletionTimestamp && !isTerminal(pod);
}

function conditions(ready: boolean, at: string): Condition[] {
  const r: Condition['status'] = ready ? 'True' : 'False';
  const notReady = ready ? {} : { reason: 'ContainersNotReady', message: 'containers with unready status: [app]' };
  return [
    { type: 'PodReadyToStartContainers', status: r, lastProbeTime: null, lastTransitionTime: at },
    { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: at },
    { type: 'Ready', status: r, lastProbeTime: null, lastTransitionTime: at, ...notReady },
    { type: 'ContainersReady', status: r, lastProbeTime: null, lastTransitionTime: at, ...notReady },
    { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: at },
  ];
}

function containerStatuses(pod: KubeObject, running: boolean, at: string): unknown[] {
  return (pod.spec?.containers ?? []).map((c: { name: string; image: string }, i: number) => ({
    name: c.name,
    image: c.image,
    imageID: `${c.image}@sha256:${'0'.repeat(63)}${i}`,
    ...(running ? { containerID: `containerd://${pod.metadata.uid!.replace(/-/g, '')}${i}` } : {}),
    ready: running,
    started: running,
    restartCount: 0,
    state: running ? { running: { startedAt: at } } : { waiting: { reason: 'ContainerCreating' } },
    lastState: {},
  }));
}

/**
 * Delete a pod the way the API server does: grace 0 (or a pod no kubelet runs yet) removes it at once;
 * otherwise it is marked with deletionTimestamp and the kubelet removes it when the container has exited.
 * A second delete may shorten the grace period, never lengthen it.
 */
export function deletePod(store: Store, pod: KubeObject, graceSeconds: number | undefined): KubeObject {
  const grace = graceSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  const m = pod.metadata;
  if (grace <= 0 || !pod.spec?.nodeName || isTerminal(pod)) return removeOrKeep(store, pod);
  if (m.deletionTimestamp && (m.deletionGracePeriodSeconds ?? 0) <= grace) return pod;
  const next = structuredClone(pod);
  next.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  next.metadata.deletionGracePeriodSeconds = grace;
  return store.updateAsServer('pods', next);
}

/**
 * Remove a pod at once, unless finalizers keep it: then it stays with deletionTimestamp and grace 0 (already
 * Terminating keeps its timestamp) until an update removes the last finalizer.
 */
export function removeOrKeep(store: Store, pod: KubeObject): KubeObject {
  const m = pod.metadata;
  if (!hasFinalizers(pod)) return store.remove('pods', m.namespace, m.name!);
  const next = structuredClone(pod);
  next.metadata.deletionTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  next.metadata.deletionGracePeriodSeconds = 0;
  return store.updateAsServer('pods', next);
}

export class Kubelet {
  private readonly starting = new Map<string, NodeJS.Timeout>();
  private readonly stopping = new Map<string, { timer: NodeJS.Timeout; grace: number }>();
  private nextIp = 2;
  /** Pods whose containers have exited but whose object finalizers keep. */
  private readonly exited = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly opts: { readyDelayMs: number; shutdownMs: number },
    private readonly runtime?: { cnpg: CnpgRuntime; errors: Error[] },
  ) {}

  /** Pods whose container is a real process (a CloudNativePG instance with a runtime behind it). */
  private real(pod: KubeObject): CnpgRuntime | undefined {
    // The instance manager runs in instance pods only; a Job's pod (initdb, join) carries cnpg.io/cluster too.
    return pod.metadata.labels?.['cnpg.io/podRole'] === 'instance' ? this.runtime?.cnpg : undefined;
  }

  /** Reacts to every pod event: schedules start-up for new pods and removal for terminating ones. */
  onPod(type: string, pod: KubeObject): void {
    const uid = pod.metadata.uid!;
    if (type === 'DELETED') {
      this.cancel(uid);
      // Grace 0 (or the end of a graceful stop): the container's processes die with the pod.
      this.real(pod)?.stop(pod, false);
      return;
    }
    if (pod.metadata.deletionTimestamp) {
      // Held by finalizers after its containers stopped: nothing left for the kubelet to do.
      if (this.exited.has(uid)) return;
      this.real(pod)?.stop(pod, true);
      this.scheduleRemoval(pod);
      return;
    }
    if (type === 'ADDED' && !pod.status?.startTime) this.bind(pod);
  }

  /** A running pod's readiness as its probe now reports it. */
  setReady(namespace: string, name: string, ready: boolean): void {
    const p = this.store.get('pods', namespace, name);
    if (!p || p.metadata.deletionTimestamp || p.status?.phase !== 'Running') return;
    const at = now();
    this.store.updateAsServer('pods', {
      ...p,
      status: {
        ...p.status,
        conditions: conditions(ready, at),
        containerStatuses: containerStatuses(p, true, at).map((c) => ({ ...(c as object), ready })),
      },
    });
  }

  private bind(pod: KubeObject): void {
    const at = now();
    const p = structuredClone(pod);
    p.spec.nodeName = NODE_NAME;
    p.status = {
      phase: 'Pending',
      conditions: conditions(false, at),
      hostIP: HOST_IP,
      hostIPs: [{ ip: HOST_IP }],
      startTime: at,
      containerStatuses: containerStatuses(p, false, at),
      qosClass: 'BestEffort',
    };
    const image = unpullable(p);
    if (image) {
      // kubelet's image manager: ErrImagePull, then ImagePullBackOff with this message, and never Ready.
      p.status.containerStatuses = (p.status.containerStatuses as { state: unknown }[]).map((c) => ({
        ...c,
        state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } },
      }));
      this.store.updateAsServer('pods', p);
      return;
    }
    this.store.updateAsServer('pods', p);
    const uid = pod.metadata.uid!;
    const real = this.real(pod);
    if (real) {
      // Ready when the process says so (PostgreSQL up; a replica streaming), not after a fixed delay.
      real.start(pod).then(
        () => this.run(pod.metadata.namespace!, pod.metadata.name!, uid),
        (e: unknown) => this.runtime!.errors.push(new Error(`pod ${pod.metadata.name}: ${(e as Error).message}`)),
      );
      return;
    }
    this.starting.set(
      uid,
      setTimeout(() => {
        this.starting.delete(uid);
        this.run(pod.metadata.namespace!, pod.metadata.name!, uid);
      }, this.opts.readyDelayMs),
    );
  }

  private run(namespace: string, name: string, uid: string): void {
    const p = this.store.get('pods', namespace, name);
    if (!p || p.metadata.uid !== uid || p.metadata.deletionTimestamp) return;
    const at = now();
    const ip = `10.244.0.${this.nextIp++ % 250}`;
    p.status = {
      ...p.status,
      phase: 'Running',
      conditions: conditions(true, at),
      podIP: ip,
      podIPs: [{ ip }],
      containerStatuses: containerStatuses(p, true, at),
    };
    this.store.updateAsServer('pods', p);
  }

  private scheduleRemoval(pod: KubeObject): void {
    const uid = pod.metadata.uid!;
    const grace = pod.metadata.deletionGracePeriodSeconds ?? 0;
    const existing = this.stopping.get(uid);
    if (existing && existing.grace <= grace) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(
      () => {
        this.stopping.delete(uid);
        const p = this.store.get('pods', pod.metadata.namespace, pod.metadata.name!);
        if (!p || p.metadata.uid !== uid) return;
        if (hasFinalizers(p)) {
          // The containers have stopped: not Ready any more (EndpointSlices drop it), then the final delete.
          this.exited.add(uid);
          const at = now();
          p.status = {
            ...p.status,
            phase: 'Succeeded',
            conditions: conditions(false, at),
            containerStatuses: containerStatuses(p, false, at).map((c) => ({
              ...(c as object),
              state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: p.status?.startTime, finishedAt: at } },
            })),
          };
          this.store.updateAsServer('pods', p);
        }
        removeOrKeep(this.store, this.store.get('pods', pod.metadata.namespace, pod.metadata.name!)!);
      },
      Math.min(grace * 1000, this.opts.shutdownMs),
    );
    this.stopping.set(uid, { timer, grace });
  }

  private cancel(uid: string): void {
    this.exited.delete(uid);
    const s = this.starting.get(uid);
    if (s) clearTimeout(s);
    this.starting.delete(uid);
    const t = this.stopping.get(uid);
    if (t) clearTimeout(t.timer);
    this.stopping.delete(uid);
  }

  stop(): void {
    for (const t of this.starting.values()) clearTimeout(t);
    for (const t of this.stopping.values()) clearTimeout(t.timer);
    this.starting.clear();
    this.stopping.clear();
  }
}
