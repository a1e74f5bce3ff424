/**
 * A Kubernetes-API-compatible HTTP server for tests: the real @kubernetes/client-node and real kubectl talk
 * to it over loopback. It keeps objects, serves discovery, list/watch/CRUD with the real wire format, runs
 * controllers and a kubelet in miniature, enforces RBAC when given tokens, and takes faults on request.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { finishJobPod } from './cnpg.ts';
import { Controllers } from './controllers.ts';
import { applyDefaults, validate } from './defaults.ts';
import { resourceOfKind } from './discovery.ts';
import { createFaultHooks } from './faults.ts';
import { handle } from './http.ts';
import { labelPredicate } from './selectors.ts';
import { Store } from './store.ts';
import type { KubeApiOptions, KubeObject, RequestRecord } from './types.ts';

export type { CnpgRuntime, CnpgRuntimeHost, KubeApiOptions, KubeObject, RbacRule, RbacUser, RequestRecord } from './types.ts';
export * from './fixtures.ts';

export interface KubeApiState {
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(resource: string, namespace?: string, labelSelector?: string): KubeObject[];
  /** Create an object as an admin would (`kubectl create`), creating its namespace if missing. */
  create(o: KubeObject): KubeObject;
  resourceVersion(): number;
  /** Drop the watch history (etcd compaction): a watch resuming from before now gets 410 Expired. */
  compact(): void;
  /** Watch streams open now, of one resource or all. */
  openWatches(resource?: string): number;
  /** Every request served, in order of completion (a watch completes when its stream ends). */
  readonly requests: RequestRecord[];
  /** Controller failures; empty unless the server has a bug. */
  readonly controllerErrors: Error[];
  /** Resolve when `check` holds, re-checked on every store change; reject naming `what` after timeoutMs. */
  waitFor(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

export interface KubeApiFaults {
  /** The next watch (of `resource`, or any) that resumes from a resourceVersion gets an ERROR event with a 410 Expired Status. */
  expireNextWatch(resource?: string): void;
  /** End every open watch stream, as a load balancer or an API server restart does. */
  dropWatches(): void;
  /** Hold every response for `ms` before handling it; 0 stops. */
  delay(ms: number): void;
  /** Run `fn` (awaited) when the next `method` request whose path ends with `pathEnd` arrives, before it is served (faults.ts). */
  beforeNext(method: string, pathEnd: string, fn: () => unknown): void;
  /** Hooks given to beforeNext that have not fired yet. */
  pendingHooks(): number;
  /** Stop listening and cut open connections: clients get ECONNREFUSED until `reachable()`. */
  unreachable(): Promise<void>;
  reachable(): Promise<void>;
}

export interface KubeApi {
  url: string;
  port: number;
  state: KubeApiState;
  faults: KubeApiFaults;
  stop(): Promise<void>;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Seeded pods "had been running before the test": each gets its own start time, a minute apart, in an order that
 * is neither their names' nor their creation's (by uid, which is random), so `mode: oldest` has one right answer
 * that a selection by name, by creation or at random would miss. Pods of CloudNativePG clusters are left alone.
 */
function stampSeedStartTimes(store: Store): void {
  const pods = store
    .list('pods')
    .filter((p) => ['ReplicaSet', 'StatefulSet'].includes(p.metadata.ownerReferences?.find((r) => r.controller)?.kind ?? ''))
    .sort((a, b) => a.metadata.uid!.localeCompare(b.metadata.uid!));
  const base = Math.floor(Date.now() / 1000) * 1000;
  pods.forEach((p, i) => {
    const at = new Date(base - (pods.length - i) * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const containerStatuses = (p.status?.containerStatuses ?? []).map((c: { state?: { running?: object } }) =>
      c.state?.running ? { ...c, state: { running: { startedAt: at } } } : c,
    );
    store.updateAsServer('pods', { ...p, status: { ...p.status, startTime: at, containerStatuses } });
  });
}

export async function startKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const store = new Store(options.eventWindow ?? 1000);
  const timing = {
    replaceDelayMs: options.replaceDelayMs ?? 100,
    readyDelayMs: options.readyDelayMs ?? 100,
    shutdownMs: options.shutdownMs ?? 100,
    cnpgElectDelayMs: options.cnpgElectDelayMs ?? 0,
  };
  // Seeded workloads come up at once, as if they had been running before the test: the configured delays
  // are for what happens during the test (a replacement that takes 60 s must not make the seed take 60 s).
  const controllers = new Controllers(store, { ...timing, replaceDelayMs: 0, readyDelayMs: 0 }, options.cnpgRuntime);
  options.cnpgRuntime?.attach({
    get: (resource, namespace, name) => store.get(resource, namespace, name),
    subscribe: (listener) => store.subscribe(() => listener()),
    setPodReady: (namespace, name, ready) => controllers.setPodReady(namespace, name, ready),
    finishJob: (namespace, instance, role, ok) => finishJobPod(store, namespace, instance, role, ok),
    errors: controllers.errors,
  });
  const requests: RequestRecord[] = [];
  const streams = new Map<ServerResponse, string>();
  let delayMs = 0;
  const hooks = createFaultHooks();
  let expireNext: { resource?: string } | undefined;
  let port = 0;

  const server = createServer((req, res) => {
    void handle(req, res, {
      store,
      tokens: options.tokens,
      serverAddress: () => `127.0.0.1:${port}`,
      requests,
      delayMs: () => delayMs,
      before: hooks.before,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000,
      streams,
      takeExpiry: (resource) => {
        if (!expireNext || (expireNext.resource !== undefined && expireNext.resource !== resource)) return false;
        expireNext = undefined;
        return true;
      },
    });
  });
  port = await listen(server, 0);

  const create = (input: KubeObject): KubeObject => {
    const t = resourceOfKind(input.apiVersion, input.kind);
    if (!t) throw new Error(`kube-api: cannot create ${input.apiVersion} ${input.kind}: not a served resource`);
    const o = structuredClone(input);
    const ns = o.metadata.namespace;
    if (t.namespaced && ns && !store.get('namespaces', undefined, ns))
      create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    delete o.status;
    applyDefaults(t.resource, o);
    validate(t, o);
    return store.create(t.resource, o);
  };

  const waitFor = (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      if (check()) return resolve();
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`kube-api: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const unsubscribe = store.subscribe(() => {
        if (!check()) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });

  const state: KubeApiState = {
    get: (resource, namespace, name) => store.get(resource, namespace, name),
    list: (resource, namespace, labelSelector) => {
      const match = labelPredicate(labelSelector);
      return store.list(resource, namespace, (o) => match(o.metadata.labels));
    },
    create,
    resourceVersion: () => store.currentRv(),
    openWatches: (resource) => [...streams.values()].filter((r) => resource === undefined || r === resource).length,
    compact: () => store.compact(),
    requests,
    controllerErrors: controllers.errors,
    waitFor,
  };

  const faults: KubeApiFaults = {
    expireNextWatch: (resource) => {
      expireNext = { resource };
    },
    dropWatches: () => {
      for (const s of [...streams.keys()]) {
        streams.delete(s);
        s.end();
      }
    },
    delay: (ms) => {
      delayMs = ms;
    },
    beforeNext: hooks.beforeNext,
    pendingHooks: hooks.pending,
    unreachable: () => close(server),
    reachable: async () => {
      if (!server.listening) await listen(server, port);
    },
  };

  const api: KubeApi = {
    url: `http://127.0.0.1:${port}`,
    port,
    state,
    faults,
    async stop() {
      controllers.stop();
      for (const s of [...streams.keys()]) s.destroy();
      await close(server);
    },
  };

  try {
    for (const o of options.objects ?? []) create(o);
    if (options.waitForSeed !== false) {
      const ready = () =>
        store
          .list('deployments')
          .every(
            (d) =>
              d.status?.observedGeneration === d.metadata.generation &&
              (d.status?.readyReplicas ?? 0) === d.spec.replicas &&
              (d.status?.replicas ?? 0) === d.spec.replicas,
          ) && store.list('statefulsets').every((s) => (s.status?.readyReplicas ?? 0) === s.spec.replicas);
      await waitFor(ready, 'seeded Deployments and StatefulSets to be ready');
      stampSeedStartTimes(store);
    }
    controllers.setTiming(timing);
  } catch (e) {
    await api.stop();
    throw e;
  }
  return api;
}
