/**
 * CloudNativePG: the operator owns failover, so the provider asks it and watches it. `promote` asks for a
 * switchover the way `kubectl cnpg promote CLUSTER POD` does (a merge patch of the Cluster's
 * `status.targetPrimary`); `delete-pod` deletes the primary's pod, as a node failure would, and lets the
 * operator elect. Either way the new primary is the one the Cluster's `status.currentPrimary` names once it
 * equals `targetPrimary` and that pod is Ready, seen through a watch on the Cluster. Writes reach the new
 * primary through the `<cluster>-rw` Service, which the operator points at whatever pod is primary.
 */
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { createCaller } from '../../kubernetes/call.ts';
import { KubeError } from '../../kubernetes/errors.ts';
import { startInformer } from '../../kubernetes/informer.ts';
import { checkNamespace } from '../../kubernetes/replicas.ts';
import { podView, type PodLike } from '../../kubernetes/views.ts';
import { FailoverTimeoutError, type FailoverProvider, type FailoverResult, type PgNode, type Topology } from './types.ts';

const GROUP = 'postgresql.cnpg.io';
const VERSION = 'v1';
const PLURAL = 'clusters';
const CLUSTER_LABEL = 'cnpg.io/cluster';

interface ClusterLike {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { instances?: number; minSyncReplicas?: number; maxSyncReplicas?: number; failoverDelay?: number; switchoverDelay?: number; primaryUpdateStrategy?: string; primaryUpdateMethod?: string };
  status?: { currentPrimary?: string; targetPrimary?: string; phase?: string; readyInstances?: number; instances?: number };
}

export interface CnpgOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The target's namespace allowlist: the Cluster's namespace must be in it (and never kube-system). */
  allowedNamespaces: string[];
  cluster: string;
  /** `promote`: switchover through the Cluster status; `delete-pod`: delete the primary pod and let the operator fail over. */
  mode: 'promote' | 'delete-pod';
  /** PostgreSQL port of the `-rw` Service. Default 5432. */
  port?: number;
  /** Hook for proving the new primary takes a write (a ledger write through the -rw Service); default: the operator's word. */
  writable?: (node: PgNode, signal: AbortSignal) => Promise<void>;
  requestTimeoutMs?: number;
}

export function createCnpgProvider(o: CnpgOptions): FailoverProvider & { readonly mode: CnpgOptions['mode'] } {
  checkNamespace(o.namespace, o.allowedNamespaces);
  const { namespace, cluster, kubeConfig: kc } = o;
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const { call } = createCaller(kc, namespace, o.requestTimeoutMs);
  const port = o.port ?? 5432;
  const ids = { group: GROUP, version: VERSION, namespace, plural: PLURAL };

  const readCluster = (signal?: AbortSignal): Promise<ClusterLike> =>
    call({ verb: 'get', resource: PLURAL, group: GROUP, name: cluster }, (opt) => custom.getNamespacedCustomObject({ ...ids, name: cluster }, opt), signal) as Promise<ClusterLike>;

  const instancePods = async (signal?: AbortSignal) => {
    const l = await call({ verb: 'list', resource: 'pods', group: '' }, (opt) => core.listNamespacedPod({ namespace, labelSelector: `${CLUSTER_LABEL}=${cluster}` }, opt), signal);
    return l.items.map((p) => podView(p as PodLike));
  };

  const node = (name: string, role: PgNode['role']): PgNode => ({ name, host: `${cluster}-${role === 'primary' ? 'rw' : 'r'}.${namespace}.svc`, port, role });

  async function topology(signal?: AbortSignal): Promise<Topology> {
    const [c, pods] = await Promise.all([readCluster(signal), instancePods(signal)]);
    const primaryName = c.status?.currentPrimary;
    const sync = (c.spec?.minSyncReplicas ?? 0) > 0 ? 'quorum' : 'async';
    const primaryPod = pods.find((p) => p.name === primaryName && p.ready);
    return {
      primary: primaryPod ? node(primaryPod.name, 'primary') : null,
      // Lag lives inside PostgreSQL (pg_stat_replication), not in the API: unknown here, said as null.
      standbys: pods
        .filter((p) => p.name !== primaryName)
        .map((p) => ({ ...node(p.name, 'standby'), replication: { streaming: p.ready, replayLagMs: null, lagBytes: null, mode: sync } })),
    };
  }

  /** Watch the Cluster until the operator reports a primary other than `old` in place, with its pod Ready. */
  function waitNewPrimary(old: string, o2: { timeoutMs: number; signal: AbortSignal }): Promise<{ name: string; at: string }> {
    const deadline = AbortSignal.timeout(o2.timeoutMs);
    const stop = new AbortController();
    return new Promise((resolve, reject) => {
      let last: ClusterLike | undefined;
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        stop.abort();
        o2.signal.removeEventListener('abort', onAbort);
        deadline.removeEventListener('abort', onDeadline);
        fn();
      };
      const onAbort = () => finish(() => reject(o2.signal.reason));
      const onDeadline = () =>
        finish(() =>
          reject(
            new FailoverTimeoutError(
              `timed out after ${Math.round(o2.timeoutMs / 1000)}s waiting for CloudNativePG cluster "${cluster}" in namespace "${namespace}" to promote a new primary (phase ${JSON.stringify(last?.status?.phase ?? 'unknown')}, currentPrimary ${last?.status?.currentPrimary ?? '?'}, targetPrimary ${last?.status?.targetPrimary ?? '?'})`,
              'cloudnative-pg',
              o2.timeoutMs,
            ),
          ),
        );
      o2.signal.addEventListener('abort', onAbort, { once: true });
      deadline.addEventListener('abort', onDeadline, { once: true });
      const check = async () => {
        const s = last?.status;
        if (!s?.currentPrimary || s.currentPrimary === old || s.currentPrimary !== s.targetPrimary) return;
        const name = s.currentPrimary;
        const pod = (await instancePods(stop.signal).catch(() => [])).find((p) => p.name === name);
        if (pod?.ready) finish(() => resolve({ name, at: new Date().toISOString() }));
      };
      const informer = startInformer<ClusterLike>({
        kubeConfig: kc,
        path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
        query: { fieldSelector: `metadata.name=${cluster}` },
        list: async (signal) => {
          const l = (await call({ verb: 'list', resource: PLURAL, group: GROUP }, (opt) => custom.listNamespacedCustomObject({ ...ids, fieldSelector: `metadata.name=${cluster}` }, opt), signal)) as {
            items: ClusterLike[];
            metadata?: { resourceVersion?: string };
          };
          return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
        },
        fromWatch: (raw) => raw as ClusterLike,
        key: (c) => c.metadata?.name ?? '',
        resourceVersionOf: (c) => c.metadata?.resourceVersion,
        signal: stop.signal,
        onChange: () => {
          last = informer.items.get(cluster);
          void check();
        },
        onFatal: (e) => finish(() => reject(e)),
      });
      if (o2.signal.aborted) onAbort();
      else if (deadline.aborted) onDeadline();
    });
  }

  return {
    kind: 'cloudnative-pg',
    mode: o.mode,

    async settings() {
      const c = await readCluster();
      return {
        mode: o.mode,
        cluster,
        namespace,
        instances: c.spec?.instances ?? null,
        // Operator defaults when the Cluster does not set them (CloudNativePG 1.2x).
        failoverDelay: c.spec?.failoverDelay ?? 0,
        switchoverDelay: c.spec?.switchoverDelay ?? 3600,
        minSyncReplicas: c.spec?.minSyncReplicas ?? 0,
        maxSyncReplicas: c.spec?.maxSyncReplicas ?? 0,
        primaryUpdateStrategy: c.spec?.primaryUpdateStrategy ?? 'unsupervised',
      };
    },

    topology,

    async failover({ candidate, timeoutMs, signal }): Promise<FailoverResult> {
      const startedAt = new Date().toISOString();
      const before = await readCluster(signal);
      const old = before.status?.currentPrimary;
      if (!old) throw new KubeError(`CloudNativePG cluster "${cluster}" in namespace "${namespace}" reports no current primary`, { reason: 'Unknown', verb: 'get', resource: PLURAL, namespace });
      let how: string;
      if (o.mode === 'promote') {
        const standbys = (await topology(signal)).standbys.filter((s) => s.replication.streaming);
        const target = candidate ?? standbys[0]?.name;
        if (!target || !standbys.some((s) => s.name === target)) {
          throw new KubeError(`no Ready standby ${candidate ? `named "${candidate}" ` : ''}to promote in CloudNativePG cluster "${cluster}" (standbys: ${standbys.map((s) => s.name).join(', ') || 'none ready'})`, {
            reason: 'Invalid',
            verb: 'patch',
            resource: `${PLURAL}/status`,
            namespace,
            untouched: `cluster "${cluster}" was not changed`,
          });
        }
        // As `kubectl cnpg promote`: the operator reacts to targetPrimary in the status subresource.
        const body = { status: { targetPrimary: target, targetPrimaryTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), phase: 'Switchover in progress', phaseReason: `Switching over to ${target}` } };
        await call(
          { verb: 'patch', resource: `${PLURAL}/status`, group: GROUP, name: cluster },
          (opt) => custom.patchNamespacedCustomObjectStatus({ ...ids, name: cluster, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch, opt)),
          signal,
        );
        how = `asked the operator to promote ${target} (status.targetPrimary, as kubectl cnpg promote)`;
      } else {
        try {
          await call({ verb: 'delete', resource: 'pods', group: '', name: old }, (opt) => core.deleteNamespacedPod({ name: old, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0 } }, opt), signal);
        } catch (e) {
          // Already gone is what this step wants: the operator fails over either way.
          if (!(e instanceof KubeError && e.status === 404)) throw e;
        }
        how = `deleted the primary pod ${old} (grace 0); the operator elects`;
      }
      const elected = await waitNewPrimary(old, { timeoutMs, signal });
      const newPrimary = node(elected.name, 'primary');
      let writableAt = elected.at;
      let proof = 'the operator reports it primary and its pod Ready';
      if (o.writable) {
        await o.writable(newPrimary, signal);
        writableAt = new Date().toISOString();
        proof = 'a write through the -rw Service succeeded';
      }
      return { newPrimary, startedAt, writableAt, detail: `${how}; ${elected.name} is primary (was ${old}): ${proof}` };
    },

    async rejoin(old, { timeoutMs, signal }) {
      // The operator rejoins a former primary itself (pg_rewind in the instance manager); the drill waits for it.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [c, pods] = await Promise.all([readCluster(signal), instancePods(signal)]);
        const pod = pods.find((p) => p.name === old.name);
        if (pod?.ready && c.status?.currentPrimary !== old.name) return `${old.name} is back as a Ready replica of ${c.status?.currentPrimary} (rejoined by the operator)`;
        if (Date.now() > deadline) {
          throw new KubeError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${old.name} to rejoin CloudNativePG cluster "${cluster}" as a replica (${pod ? (pod.ready ? 'Ready' : 'not Ready') : 'no pod'})`, {
            reason: 'Timeout',
            verb: 'get',
            resource: 'pods',
            namespace,
            exitCode: 1,
          });
        }
        await new Promise((r) => setTimeout(r, 250));
        if (signal.aborted) throw signal.reason;
      }
    },
  };
}
