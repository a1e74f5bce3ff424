/**
 * The replica floor as a probe a scenario can put in its steady state: a Deployment below the organisation's
 * floor, or an HPA that would let it fall there, is not in a state to drill on (nothing is injected, exit 3).
 */
import { probe, type Probe } from '../../scenario/define.ts';
import { checkReplicaFloor, REPLICA_POLICY_DEFAULTS, type ReplicaPolicy } from './hpa.ts';

export function replicaFloorProbe<P>(deployment: (params: P) => string, options: { namespace?: (params: P) => string | undefined; policy?: (params: P) => Partial<ReplicaPolicy> } = {}): Probe<P> {
  return probe<P>('replica floor: Deployment and HPA within policy', async (ctx) => {
    const kube = ctx.adapters.kube;
    if (!kube) return { ok: false, detail: 'the target is not a Kubernetes cluster: no HPA to check' };
    const name = deployment(ctx.params);
    const hpas = kube.autoscalers(options.namespace?.(ctx.params));
    const [replicas, found] = await Promise.all([hpas.deploymentReplicas(name, ctx.signal), hpas.forDeployment(name, ctx.signal)]);
    const policy = { ...REPLICA_POLICY_DEFAULTS, ...options.policy?.(ctx.params) };
    const r = checkReplicaFloor({ name, ...replicas }, found, policy);
    return { ok: r.ok, detail: r.detail };
  });
}
