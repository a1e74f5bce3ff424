import { parseDuration } from '../../config/duration.ts';
import { convergeRollback } from '../converge.ts';
import type { RunState } from './state.ts';

const DEFAULT_ROLLBACK_TIMEOUT_MS = 5 * 60_000;

/**
 * Rollback, newest first, each under its own time limit and not under the run's signal: they run after
 * an abort too. Each converges on the condition it restores (lib/engine/converge.ts, shared with `drill
 * recover`). A rollback that fails is recorded and the next one still runs.
 */
export async function rollback(s: RunState): Promise<void> {
  const { scenario, clock, facts } = s;
  s.tell({ type: 'phase', name: 'rollback' });
  for (const i of [...s.started].reverse()) {
    const a = scenario.actions[i]!;
    const fact = facts.actions[i]!;
    if ('none' in a.rollback) {
      fact.rollback.status = 'none';
      s.record({ type: 'rollback.none', action: i, name: a.name, why: a.rollback.none });
      continue;
    }
    const limitMs = a.rollback.timeout ? parseDuration(a.rollback.timeout) : DEFAULT_ROLLBACK_TIMEOUT_MS;
    const signal = AbortSignal.timeout(limitMs);
    fact.rollback.startedAt = clock.iso(clock.now());
    s.record({ type: 'rollback.start', action: i, name: a.name, timeoutMs: limitMs, restores: fact.rollback.restores });
    const out = await convergeRollback(
      a.rollback,
      { ...s.ctx, signal },
      { selected: s.selections.get(i), result: s.results.get(a.name) },
      { timeoutMs: limitMs },
    );
    fact.rollback.status = out.status;
    if (out.status === 'done') {
      fact.rollback.detail = out.detail;
      fact.rollback.alreadyHeld = out.alreadyHeld;
      s.record({ type: 'rollback.done', action: i, name: a.name, detail: out.detail, ...(out.alreadyHeld ? { alreadyHeld: true } : {}) });
    } else {
      fact.rollback.error = out.detail;
      s.record({ type: 'rollback.failed', action: i, name: a.name, error: out.detail });
    }
    fact.rollback.endedAt = clock.iso(clock.now());
  }
  if (s.started.length > 0 && facts.actions.every((a) => a.rollback.status !== 'failed')) s.timeline.mark('rolled-back');
}
