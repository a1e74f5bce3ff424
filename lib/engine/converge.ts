/**
 * The one way a rollback runs, in a run and in `drill recover`: check its condition; already true, done
 * ("already held"); else converge and check again; still not true, failed with what is broken and what a
 * person should do (exit 5). Nothing is marked done without its condition checked.
 */
import { byHandOf, type HoldResult, type Journaled, type Rollback, type ScenarioContext } from '../scenario/define.ts';
import type { Capability } from '../scenario/define.ts';

export interface ConvergeOutcome {
  status: 'done' | 'failed';
  /** The condition was true before anything was done. */
  alreadyHeld: boolean;
  /** The condition, in the SRE's words. */
  restores: string;
  /** Done: what was found and done. Failed: what is broken and what a person should do. */
  detail: string;
}

/** How long the check after a converge that ran out of time may take: the run's own signal is spent by then. */
const CHECK_AFTER_TIMEOUT_MS = 30_000;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function check<P, T, R, C extends Capability>(
  rb: Rollback<P, T, R, C>,
  ctx: ScenarioContext<P, C>,
  journaled: Journaled<T, R>,
): Promise<HoldResult> {
  try {
    return await rb.holds(ctx, journaled);
  } catch (e) {
    // A check that cannot answer is not a condition that holds.
    return { ok: false, detail: `could not check: ${message(e)}` };
  }
}

export async function convergeRollback<P, T, R, C extends Capability>(
  rb: Rollback<P, T, R, C>,
  ctx: ScenarioContext<P, C>,
  journaled: Journaled<T, R>,
  options: { timeoutMs?: number } = {},
): Promise<ConvergeOutcome> {
  const restores = typeof rb.restores === 'function' ? rb.restores(ctx.params) : rb.restores;
  const byHand = byHandOf(rb, ctx.params);
  const before = await check(rb, ctx, journaled);
  if (before.ok === true) return { status: 'done', alreadyHeld: true, restores, detail: `already held: ${before.detail}` };
  let did: string;
  try {
    did = (await rb.converge(ctx, journaled)) || 'converged';
  } catch (e) {
    const why = ctx.signal.aborted && options.timeoutMs ? `did not finish within ${options.timeoutMs / 1000}s` : message(e);
    return {
      status: 'failed',
      alreadyHeld: false,
      restores,
      detail: `not restored: ${restores}. Found: ${before.detail}; converging failed: ${why}. By hand: ${byHand}`,
    };
  }
  const after = await check(rb, ctx.signal.aborted ? { ...ctx, signal: AbortSignal.timeout(CHECK_AFTER_TIMEOUT_MS) } : ctx, journaled);
  if (after.ok === false) {
    return {
      status: 'failed',
      alreadyHeld: false,
      restores,
      detail: `not restored: ${restores}. After converging (${did}): ${after.detail}. By hand: ${byHand}`,
    };
  }
  return { status: 'done', alreadyHeld: false, restores, detail: after.ok === null ? did : `${did}; ${after.detail}` };
}
