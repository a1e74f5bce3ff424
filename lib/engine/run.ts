import { UserError } from '../errors.ts';
import { RunAbort } from './context.ts';
import type { RunFacts } from './facts.ts';
import { openRun, errText, type RunState, type ScenarioRunInput } from './phases/state.ts';
import { baseline } from './phases/baseline.ts';
import { steadyState } from './phases/steady-state.ts';
import { inject } from './phases/inject.ts';
import { observe } from './phases/observe.ts';
import { verify } from './phases/verify.ts';
import { rollback } from './phases/rollback.ts';
import { cooldown } from './phases/cooldown.ts';
import { measureDataClasses } from './phases/data-classes.ts';

export type { RunHooks, ScenarioRunInput } from './phases/state.ts';

/**
 * One scenario, start to finish: baseline load and steady state, inject (each action journaled before
 * it runs), observe until recovered, verify, roll back, cool down, then read the other data classes back
 * (once the load stopped, so their ledgers are final). Returns the facts; it never throws for a failure of
 * the system under test, only records it.
 */
export async function runScenario(input: ScenarioRunInput): Promise<RunFacts> {
  const s = openRun(input);
  const { drill, entry, scenario, facts, clock } = s;
  s.record({
    type: 'run.start',
    id: facts.id,
    drill,
    scenario: scenario.name,
    entry: { name: entry.name, params: entry.params, timeoutMs: entry.timeoutMs, tier: entry.tier, dataClass: entry.dataClass },
    target: input.targetDetails,
    epochMs: clock.epochMs,
  });
  try {
    await baseline(s);
    await steadyState(s);
    await inject(s);
    await observe(s);
    await verify(s);
  } catch (e) {
    stoppedEarly(s, e);
  }
  await rollback(s);
  await cooldown(s);
  try {
    await measureDataClasses(s);
  } catch (e) {
    stoppedEarly(s, e);
  }
  s.release();
  facts.marks = s.timeline.all();
  facts.endedAt = clock.iso(clock.now());
  s.record({ type: 'run.end', aborted: facts.abort?.kind ?? null, harnessError: facts.harnessError?.message ?? null });
  s.journal.close();
  return facts;
}

/** An abort (signal, stop condition, steady state, failed action) is a result; anything else is the harness's own failure. */
function stoppedEarly(s: RunState, thrown: unknown): void {
  const { facts } = s;
  // A pause cut short by the run's abort rejects with node's AbortError; the reason the run stopped is the signal's.
  const e = thrown instanceof Error && thrown.name === 'AbortError' && s.run.signal.aborted ? s.run.signal.reason : thrown;
  if (e instanceof RunAbort) {
    facts.abort = e;
    s.record({ type: 'run.abort', kind: e.kind, reason: e.message });
  } else if (e instanceof UserError) {
    // An impossible selection found at run time: nothing was touched yet (select is read-only).
    facts.abort = new RunAbort('action-failed', e.message);
    s.record({ type: 'run.abort', kind: 'action-failed', reason: e.message });
  } else {
    facts.harnessError = { message: errText(e), stack: e instanceof Error ? e.stack : undefined };
    s.record({ type: 'harness.error', ...facts.harnessError });
  }
}
