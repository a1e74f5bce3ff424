/**
 * A Kubernetes target opened for a drill: the credentials (kubeconfig context or the pod's service account),
 * one check that the API server answers and lets the drill list pods in its namespace, and the adapters the
 * scenarios get, all behind the same namespace allowlist and blast radius.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../../errors.ts';
import { createCaller } from './call.ts';
import { kubeConfigFromFile } from './config.ts';
import { createKubeDeployments } from './deployments.ts';
import { createKubeAutoscalers } from './hpa.ts';
import { checkNamespace, createKubeReplicas, type KubeReplicaSetAdapter } from './replicas.ts';
import type { KubeTargetAdapters } from './types.ts';

export interface KubeTargetConfig {
  kubeconfig?: string;
  context?: string;
  inCluster: boolean;
  namespace: string;
  namespaces: string[];
  blastRadius: number;
}

export interface OpenedKube {
  replicas: KubeReplicaSetAdapter;
  kube: KubeTargetAdapters;
  kubeConfig: KubeConfig;
  /** For the record: where the drill acts, with no credentials. */
  details: Record<string, unknown>;
}

/** $KUBECONFIG (its first file when it lists several), else ~/.kube/config: where kubectl looks. */
export function defaultKubeconfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const first = (env.KUBECONFIG ?? '').split(':').find((p) => p.trim() !== '');
  return first ?? join(env.HOME ?? homedir(), '.kube', 'config');
}

/** `~/.kube/config` as a shell would read it: drill files are written the way people write paths. */
export function expandHome(path: string, env: NodeJS.ProcessEnv = process.env): string {
  return path === '~' || path.startsWith('~/') ? join(env.HOME ?? homedir(), path.slice(1)) : path;
}

function loadConfig(t: KubeTargetConfig): { kc: KubeConfig; source: string } {
  if (t.inCluster) {
    const kc = new KubeConfig();
    kc.loadFromCluster();
    if (!kc.getCurrentCluster()?.server || kc.getCurrentCluster()?.server === 'https://undefined:undefined') {
      throw new UserError(
        'target.inCluster is set but this process does not run in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)',
        {
          untouched: 'nothing: no call was made to any cluster',
          next: 'run the drill as a Job in the cluster (see the README), or set target.kubeconfig/context instead of inCluster',
        },
      );
    }
    return { kc, source: 'in-cluster service account' };
  }
  const path = expandHome(t.kubeconfig ?? defaultKubeconfigPath());
  return { kc: kubeConfigFromFile(path, t.context), source: `kubeconfig ${path}` };
}

/**
 * For the confirmation before a run: which cluster, context and namespaces, as the kubeconfig names them
 * (a URL says where the load goes, not what gets broken). Reads the kubeconfig, calls nothing.
 */
export function describeKubeTarget(t: KubeTargetConfig): string {
  const { kc } = loadConfig(t);
  const who = t.inCluster ? 'the in-cluster service account' : `context ${kc.getCurrentContext()}`;
  const others = t.namespaces.filter((n) => n !== t.namespace);
  return `Kubernetes ${who} (${kc.getCurrentCluster()?.server ?? 'no server'}), namespace ${t.namespace}${others.length ? ` (may also touch ${others.join(', ')})` : ''}, blast radius ${t.blastRadius} pod${t.blastRadius === 1 ? '' : 's'}`;
}

/** Makes the adapters without calling the cluster; guardrails on the configuration are checked here. */
export function kubeAdapters(t: KubeTargetConfig, requestTimeoutMs?: number): OpenedKube {
  checkNamespace(t.namespace, t.namespaces);
  const { kc, source } = loadConfig(t);
  const replicas = createKubeReplicas({
    kubeConfig: kc,
    namespace: t.namespace,
    allowedNamespaces: t.namespaces,
    blastRadius: t.blastRadius,
    requestTimeoutMs,
  });
  const inAllowed = (ns: string | undefined): string => {
    const n = ns ?? t.namespace;
    checkNamespace(n, t.namespaces);
    return n;
  };
  const context = kc.getCurrentContext();
  const kube: KubeTargetAdapters = {
    where: replicas.where,
    namespace: t.namespace,
    allowedNamespaces: [...t.namespaces],
    blastRadius: t.blastRadius,
    deployments: (ns) => createKubeDeployments(kc, inAllowed(ns), requestTimeoutMs),
    autoscalers: (ns) => createKubeAutoscalers(kc, inAllowed(ns), requestTimeoutMs),
    checkNamespace: (ns) => checkNamespace(ns, t.namespaces),
    cli: t.inCluster ? {} : { kubeconfig: expandHome(t.kubeconfig ?? defaultKubeconfigPath()), ...(context ? { context } : {}) },
  };
  const details = {
    kind: 'kubernetes',
    credentials: source,
    // What `drill recover` needs to reopen the target from the journal; paths and names, no credentials.
    inCluster: t.inCluster,
    ...(t.inCluster ? {} : { kubeconfig: expandHome(t.kubeconfig ?? defaultKubeconfigPath()) }),
    ...(t.inCluster ? {} : { context }),
    server: kc.getCurrentCluster()?.server,
    namespace: t.namespace,
    namespaces: [...t.namespaces],
    blastRadius: t.blastRadius,
  };
  return { replicas, kube, kubeConfig: kc, details };
}

/** One read in the drill's namespace: the server answers, the credentials work and may list pods there. */
export async function checkKubeAccess(opened: OpenedKube, namespace: string, signal?: AbortSignal): Promise<void> {
  const core = opened.kubeConfig.makeApiClient(CoreV1Api);
  const { call } = createCaller(opened.kubeConfig, namespace, 10_000);
  await call({ verb: 'list', resource: 'pods', group: '' }, (o) => core.listNamespacedPod({ namespace, limit: 1 }, o), signal);
}

/** Reopen a target from what a run journaled (`details` above): for `drill recover` after a crash. */
export function kubeAdaptersFromDetails(d: Record<string, unknown>): OpenedKube {
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  return kubeAdapters({
    inCluster: d.inCluster === true,
    ...(typeof d.kubeconfig === 'string' ? { kubeconfig: d.kubeconfig } : {}),
    ...(typeof d.context === 'string' && d.context ? { context: d.context } : {}),
    namespace: String(d.namespace),
    namespaces: list(d.namespaces),
    blastRadius: Number(d.blastRadius),
  });
}
