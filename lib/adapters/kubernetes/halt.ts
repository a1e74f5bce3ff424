/**
 * The halt switch on a Kubernetes target: a ConfigMap `drill-halt` in the target's namespace. Read only
 * (one GET); its absence means "not halted", any other failure is the caller's to judge (a switch that
 * cannot be read must not be taken for one that is off).
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { createCaller } from './call.ts';
import { KubeError } from './errors.ts';

export const HALT_CONFIGMAP = 'drill-halt';

export interface HaltConfigMap {
  /** `namespace/drill-halt`, for messages. */
  where: string;
  /** data.reason, else every data key joined: what the person who set it wrote. */
  reason: string;
  /** data.by, else the field manager that created it (`kubectl-create`), else unknown. */
  by: string;
  setAt: string | null;
}

/** Null when there is no such ConfigMap; a KubeError (403 names the Role rule needed) when it cannot be read. */
export async function readHaltConfigMap(kc: KubeConfig, namespace: string, signal?: AbortSignal): Promise<HaltConfigMap | null> {
  const core = kc.makeApiClient(CoreV1Api);
  const { call } = createCaller(kc, namespace, 5_000);
  try {
    const cm = await call(
      { verb: 'get', resource: 'configmaps', group: '' },
      (o) => core.readNamespacedConfigMap({ name: HALT_CONFIGMAP, namespace }, o),
      signal,
    );
    const data = cm.data ?? {};
    const reason =
      data.reason ??
      (Object.entries(data)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ') ||
        '(no reason given in its data)');
    const manager = cm.metadata?.managedFields?.[0]?.manager;
    return {
      where: `${namespace}/${HALT_CONFIGMAP}`,
      reason,
      by: data.by ?? cm.metadata?.annotations?.['drill/halted-by'] ?? (manager ? `field manager ${manager}` : 'unknown'),
      setAt: cm.metadata?.creationTimestamp ? new Date(cm.metadata.creationTimestamp).toISOString() : null,
    };
  } catch (e) {
    if (e instanceof KubeError && e.status === 404) return null;
    throw e;
  }
}
