/**
 * Every kind of target a drill can name. The engine, plan and recover reach targets only through here:
 * adding a kind is one module and one line below.
 */
import type { Target } from '../config/types.ts';
import type { Capability } from '../scenario/define.ts';
import { blobTarget } from './blob.ts';
import { httpTarget } from './http.ts';
import { kubernetesTarget } from './kubernetes.ts';
import { labTarget } from './lab/index.ts';
import type { OpenTarget, PeekedTarget, ReopenedTarget, TargetKind } from './types.ts';

export type { OpenTarget, PeekedTarget, ReopenedTarget, TargetKind } from './types.ts';

const KINDS: { [K in Target['kind']]: TargetKind<K> } = {
  lab: labTarget,
  kubernetes: kubernetesTarget,
  blob: blobTarget,
  http: httpTarget,
};

function kindOf<T extends Target>(target: T): TargetKind<T['kind']> {
  return KINDS[target.kind as T['kind']] as TargetKind<T['kind']>;
}

/** What a target kind provides: validation uses it before anything runs. */
export function capabilitiesOf(target: Target): Capability[] {
  return kindOf(target).capabilities(target as never);
}

/**
 * Makes the target usable: brings the lab up (and remembers to take it down only if this run started it),
 * or checks that the target answers at all. An unreachable target is invalid input: nothing was touched.
 */
export function openTarget(target: Target, say: (line: string) => void): Promise<OpenTarget> {
  return kindOf(target).open(target as never, say);
}

/**
 * Read-only view for `drill plan`: adapters only if the target is already there. Plan never starts the lab,
 * because a plan that changes the machine is not a plan.
 */
export function peekTarget(target: Target): Promise<PeekedTarget> {
  return kindOf(target).peek(target as never);
}

/** Adapters again for `drill recover`, from the target details a run recorded; a kind it does not know is treated as http. */
export function reopenTarget(details: Record<string, unknown>, say: (line: string) => void = () => {}): Promise<ReopenedTarget> {
  const kind = (KINDS as Record<string, TargetKind>)[String(details.kind)] ?? httpTarget;
  return kind.reopen(details, say);
}
