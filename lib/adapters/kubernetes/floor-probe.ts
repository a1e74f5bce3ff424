/**
 * The replica floor as a probe a scenario can put in its steady state: a Deployment below the organisation's
 * floor, or an HPA that would let it fall there, is not in a state to drill on (nothing is injected, exit 3).
 */
import { probe, type Probe } from '../../scenario/define.ts';
import { checkReplicaFloor } from './hpa.ts';

/** The policy is the drill's `policy.replicas` (the organisation's 3-20 replicas, CPU 70%, memory 80% unless overridden). */
export function replicaFloorProbe<P>(deployment: (params: P) => string, options: { namespace?: (params: P) => string | undefined } = {}): Probe<P> {
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
