/**
 * CloudNativePG: the operator owns failover, so the provider asks it and watches it. `promote` asks for a
 * switchover the way `kubectl cnpg promote CLUSTER POD` does (a merge patch of the Cluster's
 * `status.targetPrimary`); `delete-pod` deletes the primary's pod, as a node failure would, and lets the
 * operator elect. Either way the new primary is the one the Cluster's `status.currentPrimary` names once it
 * equals `targetPrimary` and that pod is Ready, seen through a watch on the Cluster. Writes reach the new
 * primary through the `<cluster>-rw` Service, which the operator points at whatever pod is primary.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { createCaller } from '../../kubernetes/call.ts';
import { KubeError } from '../../kubernetes/errors.ts';
import { settleWatch } from '../../kubernetes/settle.ts';
import { startInformer } from '../../kubernetes/informer.ts';
import { checkNamespace } from '../../kubernetes/replicas.ts';
import { podView, type PodLike } from '../../kubernetes/views.ts';
import {
  FailoverTimeoutError,
  orList,
  type FailoverProvider,
  type FailoverResult,
  type PgNode,
  type ReplicationState,
  type Topology,
} from './types.ts';

const GROUP = 'postgresql.cnpg.io';
const VERSION = 'v1';
const PLURAL = 'clusters';
const CLUSTER_LABEL = 'cnpg.io/cluster';
/**
 * The Cluster's instance pods, and only those: CloudNativePG also labels its Jobs' pods (initdb, join,
 * full recovery: `cnpg.io/jobRole`) and poolers' pods with `cnpg.io/cluster`; instance pods carry
 * `cnpg.io/podRole=instance` (https://cloudnative-pg.io/documentation/current/labels_annotations/).
 */
export function cnpgInstanceSelector(cluster: string): string {
  return `${CLUSTER_LABEL}=${cluster},cnpg.io/podRole=instance`;
}
/**
 * `status.targetPrimary` while the operator fails over and has not elected yet (apiv1.PendingFailoverMarker:
 * https://cloudnative-pg.io/documentation/current/failover/, "it will mark the TargetPrimary as pending"). Never a pod name.
 */
export const CNPG_PENDING_TARGET = 'pending';

/** What a Cluster's spec says about synchronous replication, in both of CloudNativePG's spellings. */
export interface CnpgSyncSpec {
  minSyncReplicas?: number;
  maxSyncReplicas?: number;
  postgresql?: { synchronous?: { method?: string; number?: number; dataDurability?: string } };
}

export interface CnpgSync {
  /** `quorum` (ANY n), `sync` (FIRST n, by priority) or `async`. */
  mode: 'quorum' | 'sync' | 'async';
  /** Replicas a commit waits for; 0 when async. */
  number: number;
  /** `required`: commits wait while too few replicas run; `preferred` (1.25+): they stop waiting, so RPO 0 holds only while replicas run. */
  dataDurability: 'required' | 'preferred' | null;
  /** Which field said so. */
  source: string;
}

/**
 * Synchronous replication as the Cluster declares it: `.spec.postgresql.synchronous` (CloudNativePG 1.24+, method
 * `any` or `first`, `number`, `dataDurability`) wins; else the legacy `minSyncReplicas` (quorum, ANY n).
 */
export function cnpgSyncOf(spec: CnpgSyncSpec | undefined): CnpgSync {
  const s = spec?.postgresql?.synchronous;
  if (s && (s.number ?? 0) > 0) {
    return {
      mode: s.method === 'first' ? 'sync' : 'quorum',
      number: s.number!,
      dataDurability: s.dataDurability === 'preferred' ? 'preferred' : 'required',
      source: `.spec.postgresql.synchronous (method ${s.method ?? 'any'}, number ${s.number})`,
    };
  }
  const min = spec?.minSyncReplicas ?? 0;
  if (min > 0)
    return {
      mode: 'quorum',
      number: min,
      dataDurability: 'required',
      source: `.spec.minSyncReplicas ${min}, .spec.maxSyncReplicas ${spec?.maxSyncReplicas ?? min}`,
    };
  return {
    mode: 'async',
    number: 0,
    dataDurability: null,
    source: s ? '.spec.postgresql.synchronous with number 0' : 'neither .spec.postgresql.synchronous nor .spec.minSyncReplicas is set',
  };
}

interface ClusterLike {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: CnpgSyncSpec & {
    instances?: number;
    failoverDelay?: number;
    switchoverDelay?: number;
    primaryUpdateStrategy?: string;
    primaryUpdateMethod?: string;
  };
  status?: { currentPrimary?: string; targetPrimary?: string; phase?: string; readyInstances?: number; instances?: number };
}

/** The PostgreSQL side of the topology, read through the `-rw` Service (pg_stat_replication on the primary), by instance name. */
export type ReplicationReader = (signal?: AbortSignal) => Promise<Map<string, ReplicationState>>;

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
  /**
   * The `-rw` Service as the drill reaches it (a LoadBalancer, a port-forward, the in-cluster DNS name): the
   * primary's address in the topology. Default `<cluster>-rw.<namespace>.svc` on `port`.
   */
  endpoint?: { host: string; port: number };
  /**
   * Replication as PostgreSQL reports it (streaming, lag), read through the `-rw` Service. Without it the
   * topology knows only what the API says (a Ready pod), and lag is unknown (null).
   */
  replication?: ReplicationReader;
  /** Hook for proving the new primary takes a write (a ledger write through the -rw Service); default: the operator's word. */
  writable?: (node: PgNode, signal: AbortSignal) => Promise<void>;
  requestTimeoutMs?: number;
}

export interface CnpgProvider extends FailoverProvider {
  readonly mode: CnpgOptions['mode'];
  /**
   * The drill killed this primary itself (its pod deleted as its host died): the next failover acts on that
   * death and does not delete or demote whatever the Cluster names primary by the time it runs (the operator
   * may have elected already).
   */
  primaryLost(name: string): void;
}

export function createCnpgProvider(o: CnpgOptions): CnpgProvider {
  checkNamespace(o.namespace, o.allowedNamespaces);
  const { namespace, cluster, kubeConfig: kc } = o;
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const { call } = createCaller(kc, namespace, o.requestTimeoutMs);
  const port = o.port ?? 5432;
  const ids = { group: GROUP, version: VERSION, namespace, plural: PLURAL };

  const readCluster = (signal?: AbortSignal): Promise<ClusterLike> =>
    call(
      { verb: 'get', resource: PLURAL, group: GROUP, name: cluster },
      (opt) => custom.getNamespacedCustomObject({ ...ids, name: cluster }, opt),
      signal,
    ) as Promise<ClusterLike>;

  const instancePods = async (signal?: AbortSignal) => {
    const l = await call(
      { verb: 'list', resource: 'pods', group: '' },
      (opt) => core.listNamespacedPod({ namespace, labelSelector: cnpgInstanceSelector(cluster) }, opt),
      signal,
    );
    return l.items.map((p) => podView(p as PodLike));
  };

  const rw = o.endpoint ?? { host: `${cluster}-rw.${namespace}.svc`, port };
  const node = (name: string, role: PgNode['role']): PgNode =>
    role === 'primary' ? { name, host: rw.host, port: rw.port, role } : { name, host: `${cluster}-r.${namespace}.svc`, port, role };
  /** Set by primaryLost(): the primary the drill killed, which the next failover replaces. */
  let lost: string | undefined;
  /** Replication as last read, by instance: after the primary died nothing can be read, so promote picks from this. */
  let lastSeen = new Map<string, ReplicationState>();

  async function topology(signal?: AbortSignal): Promise<Topology> {
    const [c, pods, fromPg] = await Promise.all([
      readCluster(signal),
      instancePods(signal),
      // A primary that does not answer is a fact of the topology (no streaming standby), not a failure to read it.
      o.replication ? o.replication(signal).catch(() => new Map<string, ReplicationState>()) : Promise.resolve(undefined),
    ]);
    const primaryName = c.status?.currentPrimary;
    const sync = cnpgSyncOf(c.spec).mode;
    const primaryPod = pods.find((p) => p.name === primaryName && p.ready);
    if (fromPg && fromPg.size > 0) lastSeen = fromPg;
    return {
      primary: primaryPod ? node(primaryPod.name, 'primary') : null,
      standbys: pods
        .filter((p) => p.name !== primaryName)
        .map((p) => {
          // Without PostgreSQL's view, lag lives only inside it (pg_stat_replication), not in the API: unknown, said as null.
          const seen = fromPg?.get(p.name);
          const replication: ReplicationState = fromPg
            ? seen && p.ready && primaryPod
              ? seen
              : { streaming: false, replayLagMs: null, lagBytes: null, mode: seen?.mode ?? 'unknown' }
            : { streaming: p.ready, replayLagMs: null, lagBytes: null, mode: sync };
          return { ...node(p.name, p.ready ? 'standby' : 'unknown'), replication };
        }),
    };
  }

  /** The Ready standby that was least behind when last seen (the operator's own choice too): promote loses the least. */
  function mostAdvanced(standbys: Topology['standbys']): string | undefined {
    const behind = (n: string) => lastSeen.get(n)?.lagBytes ?? Number.MAX_SAFE_INTEGER;
    return [...standbys].sort((a, b) => behind(a.name) - behind(b.name) || a.name.localeCompare(b.name))[0]?.name;
  }

  /** Watch the Cluster until the operator reports a primary other than `old` in place, with its pod Ready. */
  function waitNewPrimary(old: string, o2: { timeoutMs: number; signal: AbortSignal }): Promise<{ name: string; at: string }> {
    let last: ClusterLike | undefined;
    const timedOut = () =>
      new FailoverTimeoutError(
        `timed out after ${Math.round(o2.timeoutMs / 1000)}s waiting for CloudNativePG cluster "${cluster}" in namespace "${namespace}" to promote a new primary (phase ${JSON.stringify(last?.status?.phase ?? 'unknown')}, currentPrimary ${last?.status?.currentPrimary ?? '?'}, targetPrimary ${last?.status?.targetPrimary ?? '?'})`,
        'cloudnative-pg',
        o2.timeoutMs,
      );
    return settleWatch<{ name: string; at: string }>({ ...o2, timedOut }, ({ stop, done, fail }) => {
      const check = async () => {
        const s = last?.status;
        if (!s?.currentPrimary || s.currentPrimary === old || s.currentPrimary !== s.targetPrimary) return;
        const name = s.currentPrimary;
        const pod = (await instancePods(stop).catch(() => [])).find((p) => p.name === name);
        if (pod?.ready) done({ name, at: new Date().toISOString() });
      };
      const informer = startInformer<ClusterLike>({
        kubeConfig: kc,
        path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
        query: { fieldSelector: `metadata.name=${cluster}` },
        list: async (signal) => {
          const l = (await call(
            { verb: 'list', resource: PLURAL, group: GROUP },
            (opt) => custom.listNamespacedCustomObject({ ...ids, fieldSelector: `metadata.name=${cluster}` }, opt),
            signal,
          )) as {
            items: ClusterLike[];
            metadata?: { resourceVersion?: string };
          };
          return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
        },
        fromWatch: (raw) => raw as ClusterLike,
        key: (c) => c.metadata?.name ?? '',
        resourceVersionOf: (c) => c.metadata?.resourceVersion,
        signal: stop,
        onChange: () => {
          last = informer.items.get(cluster);
          void check();
        },
        onFatal: fail,
      });
    });
  }

  /**
   * As `kubectl cnpg promote`, unless the operator is already electing (its failoverDelay passed): a second
   * target would race its own switch. The patch carries the resourceVersion read, so it fails (409) rather than
   * overwrite a change made meanwhile; then the Cluster is read again and the choice made again.
   */
  async function askPromotion(
    old: string,
    killed: boolean,
    candidate: string | undefined,
    first: ClusterLike,
    signal: AbortSignal,
  ): Promise<string> {
    let c = first;
    for (let attempt = 1; ; attempt++) {
      const target0 = c.status?.targetPrimary;
      // "pending": the operator has begun a failover and will elect itself; a second target would race it.
      if (target0 === CNPG_PENDING_TARGET)
        return `the operator was already failing over from ${old} (status.targetPrimary "pending": it elects the new primary itself) when the drill came to ask (failoverDelay ${c.spec?.failoverDelay ?? 0}s), so nothing was patched`;
      const electing = target0 && target0 !== old ? target0 : undefined;
      if (electing)
        return `the operator was already promoting ${electing} when the drill came to ask (failoverDelay ${c.spec?.failoverDelay ?? 0}s), so nothing was patched`;
      const standbys = (await topology(signal)).standbys.filter(
        (s) => s.role === 'standby' && s.name !== old && (s.replication.streaming || killed),
      );
      const target = candidate ?? mostAdvanced(standbys);
      if (!target || !standbys.some((s) => s.name === target)) {
        throw new KubeError(
          `no Ready standby ${candidate ? `named "${candidate}" ` : ''}to promote in CloudNativePG cluster "${cluster}" (standbys: ${standbys.map((s) => s.name).join(', ') || 'none ready'})`,
          {
            reason: 'Invalid',
            verb: 'patch',
            resource: `${PLURAL}/status`,
            namespace,
            untouched: `cluster "${cluster}" was not changed`,
          },
        );
      }
      // The operator reacts to targetPrimary in the status subresource.
      const body = {
        metadata: { resourceVersion: c.metadata?.resourceVersion },
        status: {
          targetPrimary: target,
          targetPrimaryTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          phase: 'Switchover in progress',
          phaseReason: `Switching over to ${target}`,
        },
      };
      try {
        await call(
          { verb: 'patch', resource: `${PLURAL}/status`, group: GROUP, name: cluster },
          (opt) =>
            custom.patchNamespacedCustomObjectStatus(
              { ...ids, name: cluster, body },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch, opt),
            ),
          signal,
        );
        return `asked the operator to promote ${target} (status.targetPrimary, as kubectl cnpg promote)`;
      } catch (e) {
        if (!(e instanceof KubeError && e.status === 409) || attempt >= 5) throw e;
        c = await readCluster(signal);
      }
    }
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
        synchronous: cnpgSyncOf(c.spec),
        primaryUpdateStrategy: c.spec?.primaryUpdateStrategy ?? 'unsupervised',
      };
    },

    topology,

    failoverPlan(candidates: string[]) {
      return o.mode === 'promote'
        ? `cloudnative-pg: ask the operator to promote ${orList(candidates, 'a replica')} (status.targetPrimary, as kubectl cnpg promote)`
        : `cloudnative-pg: the operator elects ${orList(candidates, 'a replica')} after the primary pod is gone`;
    },

    primaryLost(name: string) {
      lost = name;
    },

    async failover({ candidate, timeoutMs, signal }): Promise<FailoverResult> {
      const startedAt = new Date().toISOString();
      const deadline = performance.now() + timeoutMs;
      const before = await readCluster(signal);
      const old = lost ?? before.status?.currentPrimary;
      lost = undefined;
      if (!old)
        throw new KubeError(`CloudNativePG cluster "${cluster}" in namespace "${namespace}" reports no current primary`, {
          reason: 'Unknown',
          verb: 'get',
          resource: PLURAL,
          namespace,
        });
      const killed = old !== before.status?.currentPrimary || !(await instancePods(signal)).some((p) => p.name === old && p.ready);
      let how: string;
      if (o.mode === 'promote') {
        how = await askPromotion(old, killed, candidate, before, signal);
      } else if (killed) {
        how = `the primary pod ${old} was deleted by the drill's kill; the operator elects`;
      } else {
        try {
          await call(
            { verb: 'delete', resource: 'pods', group: '', name: old },
            (opt) => core.deleteNamespacedPod({ name: old, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0 } }, opt),
            signal,
          );
        } catch (e) {
          // Already gone is what this step wants: the operator fails over either way.
          if (!(e instanceof KubeError && e.status === 404)) throw e;
        }
        how = `deleted the primary pod ${old} (grace 0); the operator elects`;
      }
      const elected = await waitNewPrimary(old, { timeoutMs: Math.max(1, Math.ceil(deadline - performance.now())), signal });
      const newPrimary = node(elected.name, 'primary');
      let writableAt = elected.at;
      let proof = 'the operator reports it primary and its pod Ready';
      if (o.writable) {
        // What is left of the failover's time limit; the hook sees one signal, the caller's abort is told apart here.
        try {
          await o.writable(
            newPrimary,
            AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, Math.ceil(deadline - performance.now())))]),
          );
        } catch (e) {
          if (signal.aborted) throw signal.reason;
          throw e;
        }
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
        if (pod?.ready && c.status?.currentPrimary !== old.name)
          return `${old.name} is back as a Ready replica of ${c.status?.currentPrimary} (rejoined by the operator)`;
        // No failover happened (the operator's delay had not passed): the operator restarted it as the primary.
        if (pod?.ready && c.status?.currentPrimary === old.name && c.status?.targetPrimary === old.name && lost === undefined)
          return `${old.name} is the primary again: no failover happened, the operator restarted it`;
        if (Date.now() > deadline) {
          throw new KubeError(
            `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${old.name} to rejoin CloudNativePG cluster "${cluster}" as a replica (${pod ? (pod.ready ? 'Ready' : 'not Ready') : 'no pod'})`,
            {
              reason: 'Timeout',
              verb: 'get',
              resource: 'pods',
              namespace,
              exitCode: 1,
            },
          );
        }
        await sleep(250);
        if (signal.aborted) throw signal.reason;
      }
    },
  };
}
