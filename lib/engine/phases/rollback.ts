import { parseDuration } from '../../config/duration.ts';
import { DEFAULT_ROLLBACK_TIMEOUT_MS } from '../../config/defaults.ts';
import { errText, type RunState } from './state.ts';

/**
 * Rollback, newest first, each under its own time limit and not under the run's signal: they run after
 * an abort too. A rollback that fails is recorded and the next one still runs.
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
    s.record({ type: 'rollback.start', action: i, name: a.name, timeoutMs: limitMs });
    try {
      const detail = await a.rollback.run({ ...s.ctx, signal }, { selected: s.selections.get(i), result: s.results.get(a.name) });
      fact.rollback.status = 'done';
      fact.rollback.detail = detail ?? undefined;
      s.record({ type: 'rollback.done', action: i, name: a.name, detail: detail ?? null });
    } catch (e) {
      fact.rollback.status = 'failed';
      fact.rollback.error = signal.aborted ? `did not finish within ${limitMs / 1000}s` : errText(e);
      s.record({ type: 'rollback.failed', action: i, name: a.name, error: fact.rollback.error });
    }
    fact.rollback.endedAt = clock.iso(clock.now());
  }
  if (s.started.length > 0 && facts.actions.every((a) => a.rollback.status !== 'failed')) s.timeline.mark('rolled-back');
}
