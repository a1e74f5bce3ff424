/**
 * HorizontalPodAutoscalers (autoscaling/v2) read for the replica-floor policy. The check against the
 * policy is the probe's (lib/scenario/probes/replica-floor.ts): this module only reads what is there.
 */
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
      const d = await call(
        { verb: 'get', resource: 'deployments', group: 'apps', name },
        (o) => apps.readNamespacedDeployment({ name, namespace }, o),
        signal,
      );
      return { desired: d.spec?.replicas ?? 1, ready: d.status?.readyReplicas ?? 0 };
    },
  };
}
