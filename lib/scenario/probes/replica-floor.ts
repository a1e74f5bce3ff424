/**
 * The replica floor as a probe a scenario can put in its steady state: a Deployment below the organisation's
 * floor, or an HPA that would let it fall there, is not in a state to drill on (nothing is injected, exit 3).
 * A Deployment that scales below the floor, above the ceiling, or on other utilisation targets than the
 * organisation's is a finding before any drill, because a pod kill on two replicas is an outage, not a drill.
 */
import type { ReplicaPolicy } from '../../config/types.ts';
import { defaultPolicy } from '../../config/defaults.ts';
import type { AutoscalerView } from '../../adapters/kubernetes/types.ts';
import { probe, type Probe } from '../define.ts';

/** The policy is the drill's `policy.replicas` (the organisation's 3-20 replicas, CPU 70%, memory 80% unless overridden). */
export function replicaFloorProbe<P>(
  deployment: (params: P) => string,
  options: { namespace?: (params: P) => string | undefined } = {},
): Probe<P> {
  return probe<P>('replica floor: Deployment and HPA within policy', async (ctx) => {
    const kube = ctx.adapters.kube;
    if (!kube) return { ok: false, detail: 'the target is not a Kubernetes cluster: no HPA to check' };
    const name = deployment(ctx.params);
    const hpas = kube.autoscalers(options.namespace?.(ctx.params));
    const [replicas, found] = await Promise.all([hpas.deploymentReplicas(name, ctx.signal), hpas.forDeployment(name, ctx.signal)]);
    const r = checkReplicaFloor({ name, ...replicas }, found, ctx.drill.policy.replicas);
    return { ok: r.ok, detail: r.detail };
  });
}

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
  if (deployment.desired < policy.minReplicas)
    breaches.push(`deployment/${deployment.name} runs ${deployment.desired} replicas, below the floor of ${policy.minReplicas}`);
  if (deployment.ready < policy.minReplicas)
    breaches.push(`deployment/${deployment.name} has ${deployment.ready} ready replicas, below the floor of ${policy.minReplicas}`);
  if (hpas.length === 0) breaches.push(`no HorizontalPodAutoscaler targets deployment/${deployment.name}`);
  if (hpas.length > 1)
    breaches.push(
      `${hpas.length} HorizontalPodAutoscalers (${hpas.map((h) => h.name).join(', ')}) target deployment/${deployment.name}: they fight over it`,
    );
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
  const hpaText = hpas
    .map((h) => `hpa/${h.name} ${h.minReplicas}-${h.maxReplicas}, CPU ${h.cpuPercent ?? '-'}%, memory ${h.memoryPercent ?? '-'}%`)
    .join('; ');
  const seen = `deployment/${deployment.name} ${deployment.ready}/${deployment.desired} ready${hpaText ? `; ${hpaText}` : ''}`;
  return {
    ok: breaches.length === 0,
    breaches,
    detail: breaches.length
      ? `${seen}; ${breaches.join('; ')}`
      : `${seen}; within policy (min ${policy.minReplicas}, max ${policy.maxReplicas}, CPU ${policy.cpuPercent}%, memory ${policy.memoryPercent}%)`,
  };
}
