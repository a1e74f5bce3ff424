/**
 * HorizontalPodAutoscalers (autoscaling/v2) read for the replica-floor policy, and the check itself: a
 * Deployment that scales below the floor, above the ceiling, or on other utilisation targets than the
 * organisation's is a finding before any drill, because a pod kill on two replicas is an outage, not a drill.
 */
import type { ReplicaPolicy } from '../../config/types.ts';
import { defaultPolicy } from '../../config/defaults.ts';
import { AppsV1Api, AutoscalingV2Api, type KubeConfig, type V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { createCaller } from './call.ts';
import type { AutoscalerView, KubeAutoscalers } from './types.ts';

function utilisation(h: V2HorizontalPodAutoscaler, resource: string): number | null {
  const m = (h.spec?.metrics ?? []).find((x) => x.type === 'Resource' && x.resource?.name === resource);
  return m?.resource?.target?.averageUtilization ?? null;
}

export function autoscalerView(h: V2HorizontalPodAutoscaler): AutoscalerView {
  const ref = h.spec?.scaleTargetRef;
  return {
    name: h.metadata?.name ?? '',
    target: { kind: ref?.kind ?? '', name: ref?.name ?? '' },
    // An HPA without minReplicas scales down to 1: the API default.
    minReplicas: h.spec?.minReplicas ?? 1,
    maxReplicas: h.spec?.maxReplicas ?? 0,
    cpuPercent: utilisation(h, 'cpu'),
    memoryPercent: utilisation(h, 'memory'),
    currentReplicas: h.status?.currentReplicas ?? null,
  };
}

export function createKubeAutoscalers(kc: KubeConfig, namespace: string, requestTimeoutMs?: number): KubeAutoscalers {
  const autoscaling = kc.makeApiClient(AutoscalingV2Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const { call } = createCaller(kc, namespace, requestTimeoutMs);
  return {
    namespace,
    async forDeployment(name, signal) {
      const l = await call(
        { verb: 'list', resource: 'horizontalpodautoscalers', group: 'autoscaling' },
        (o) => autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace }, o),
        signal,
      );
      return l.items.map(autoscalerView).filter((h) => h.target.kind === 'Deployment' && h.target.name === name);
    },
    async deploymentReplicas(name, signal) {
      const d = await call({ verb: 'get', resource: 'deployments', group: 'apps', name }, (o) => apps.readNamespacedDeployment({ name, namespace }, o), signal);
      return { desired: d.spec?.replicas ?? 1, ready: d.status?.readyReplicas ?? 0 };
    },
  };
}

export type { ReplicaPolicy };

/** The organisation's replica policy (a drill's `policy.replicas` overrides it). */
export const REPLICA_POLICY_DEFAULTS: ReplicaPolicy = Object.freeze(defaultPolicy().replicas);

/**
 * Pure: the Deployment and its HPAs against the policy. Every breach is named, so the probe's detail is the
 * list of what to fix. No HPA is a breach of its own: nothing keeps the floor when load or a node moves.
 */
export function checkReplicaFloor(
  deployment: { name: string; desired: number; ready: number },
  hpas: AutoscalerView[],
  policy: ReplicaPolicy = REPLICA_POLICY_DEFAULTS,
): { ok: boolean; breaches: string[]; detail: string } {
  const breaches: string[] = [];
  if (deployment.desired < policy.minReplicas) breaches.push(`deployment/${deployment.name} runs ${deployment.desired} replicas, below the floor of ${policy.minReplicas}`);
  if (deployment.ready < policy.minReplicas) breaches.push(`deployment/${deployment.name} has ${deployment.ready} ready replicas, below the floor of ${policy.minReplicas}`);
  if (hpas.length === 0) breaches.push(`no HorizontalPodAutoscaler targets deployment/${deployment.name}`);
  if (hpas.length > 1) breaches.push(`${hpas.length} HorizontalPodAutoscalers (${hpas.map((h) => h.name).join(', ')}) target deployment/${deployment.name}: they fight over it`);
  for (const h of hpas) {
    const at = `hpa/${h.name}`;
    if (h.minReplicas < policy.minReplicas) breaches.push(`${at} minReplicas ${h.minReplicas} < ${policy.minReplicas}`);
    if (h.maxReplicas > policy.maxReplicas) breaches.push(`${at} maxReplicas ${h.maxReplicas} > ${policy.maxReplicas}`);
    if (h.maxReplicas < h.minReplicas) breaches.push(`${at} maxReplicas ${h.maxReplicas} < its minReplicas ${h.minReplicas}`);
    if (h.cpuPercent === null) breaches.push(`${at} does not scale on CPU (policy: ${policy.cpuPercent}%)`);
    else if (h.cpuPercent !== policy.cpuPercent) breaches.push(`${at} CPU target ${h.cpuPercent}% ≠ ${policy.cpuPercent}%`);
    if (h.memoryPercent === null) breaches.push(`${at} does not scale on memory (policy: ${policy.memoryPercent}%)`);
    else if (h.memoryPercent !== policy.memoryPercent) breaches.push(`${at} memory target ${h.memoryPercent}% ≠ ${policy.memoryPercent}%`);
  }
  const hpaText = hpas.map((h) => `hpa/${h.name} ${h.minReplicas}-${h.maxReplicas}, CPU ${h.cpuPercent ?? '-'}%, memory ${h.memoryPercent ?? '-'}%`).join('; ');
  const seen = `deployment/${deployment.name} ${deployment.ready}/${deployment.desired} ready${hpaText ? `; ${hpaText}` : ''}`;
  return { ok: breaches.length === 0, breaches, detail: breaches.length ? `${seen}; ${breaches.join('; ')}` : `${seen}; within policy (min ${policy.minReplicas}, max ${policy.maxReplicas}, CPU ${policy.cpuPercent}%, memory ${policy.memoryPercent}%)` };
}
