import type { Target } from '../config/types.ts';
import type { Adapters, Capability } from '../scenario/define.ts';

export interface OpenTarget {
  adapters: Adapters;
  /** Null when the target has no service to load (blob). */
  serviceUrl: string | null;
  /** For the record: where the drill acted, with no secrets. */
  details: Record<string, unknown>;
  /** Stops what opening started (the lab, when this run brought it up); leaves alone what was already there. */
  close(): Promise<void>;
  /**
   * Resolve every action's selection before the first run starts: on a real cluster a selector that matches
   * nothing, or more pods than the blast radius, is invalid input (exit 2), found before any load is sent.
   */
  checkSelections?: boolean;
}

/** What `drill plan` sees of a target: adapters only if it is already there. */
export interface PeekedTarget {
  adapters: Adapters | null;
  note: string;
  serviceUrl: string | null;
}

/**
 * What `drill recover` gets back from a run's recorded target details: adapters, or why there are none (then
 * no rollback of the run can be checked, and none is marked done).
 */
export interface ReopenedTarget {
  adapters: Adapters | null;
  why?: string;
}

/** One kind of target: what it provides, and how to open it for a run, peek at it for a plan, and reopen it for recover. */
export interface TargetKind<K extends Target['kind'] = Target['kind']> {
  kind: K;
  capabilities(target: Extract<Target, { kind: K }>): Capability[];
  open(target: Extract<Target, { kind: K }>, say: (line: string) => void): Promise<OpenTarget>;
  peek(target: Extract<Target, { kind: K }>): Promise<PeekedTarget>;
  /** `details` is what `open` recorded for the run; `say` tells the person what reopening does (the lab coming up). */
  reopen(details: Record<string, unknown>, say: (line: string) => void): Promise<ReopenedTarget>;
}
