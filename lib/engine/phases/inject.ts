import { RunAbort } from '../context.ts';
import { errText, type RunState } from './state.ts';

/**
 * Inject: each action's intent (what it selected, what its rollback needs) is journaled before it runs,
 * so a crash in the middle still leaves `drill recover` enough to undo it.
 */
export async function inject(s: RunState): Promise<void> {
  const { scenario, clock, ctx } = s;
  s.tell({ type: 'phase', name: 'inject' });
  for (const [i, a] of scenario.actions.entries()) {
    const fact = s.facts.actions[i]!;
    const selected = await a.select(ctx);
    fact.targets = a.describeTargets(selected);
    s.record({
      type: 'action.intent',
      action: i,
      name: a.name,
      scenario: scenario.name,
      selected,
      targets: fact.targets,
      rollback: fact.rollback.description,
      ...(fact.rollback.restores ? { restores: fact.rollback.restores } : {}),
    });
    s.started.push(i);
    s.selections.set(i, selected);
    if (i === 0) s.timeline.mark('fault-injected');
    fact.startedAt = clock.iso(clock.now());
    try {
      const result = await a.run(ctx, selected);
      s.results.set(a.name, result);
      fact.status = 'done';
      fact.endedAt = clock.iso(clock.now());
      s.record({ type: 'action.done', action: i, name: a.name, result: result ?? null });
    } catch (e) {
      fact.status = 'failed';
      fact.error = errText(e);
      fact.endedAt = clock.iso(clock.now());
      s.record({ type: 'action.failed', action: i, name: a.name, error: fact.error });
      if (s.run.signal.aborted) throw s.run.signal.reason;
      throw new RunAbort('action-failed', `action "${a.name}" failed: ${fact.error}`);
    }
  }
}
