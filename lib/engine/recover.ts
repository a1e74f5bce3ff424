import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioEntry } from '../config/types.ts';
import { createClock } from '../measure/clock.ts';
import { restoresOf, type ScenarioDefinition } from '../scenario/define.ts';
import { parseDuration } from '../config/duration.ts';
import { convergeRollback } from './converge.ts';
import { reopenTarget } from '../targets/index.ts';
import { Journal, pendingRollbacks, readJournal } from './journal.ts';
import { eventLogger } from './context.ts';
import { scenarioContext } from '../scenario/context.ts';
import { Timeline } from '../measure/timeline.ts';
import type { ActionDone, JournaledEvent, JournalLine, RecoverResult, RunEvent, RunStarted } from './events.ts';

export type { RecoverResult } from './events.ts';

/** As in a run (phases/rollback.ts): a rollback with no time limit of its own gets this one. */
const DEFAULT_ROLLBACK_TIMEOUT_MS = 5 * 60_000;

/** Run folders whose journal shows an action begun and its rollback not finished. */
export function unfinishedRuns(resultsDir: string): string[] {
  const runs = join(resultsDir, 'runs');
  if (!existsSync(runs)) return [];
  return readdirSync(runs)
    .sort()
    .filter((id) => {
      const path = join(runs, id, 'events.jsonl');
      return existsSync(path) && pendingRollbacks(readJournal(path)).length > 0;
    });
}

/**
 * Finishes, from the journal alone, the rollbacks of a run that crashed or was killed: each checks its condition
 * on the target as it is now and converges from there (lib/engine/converge.ts, as in a run), given what was
 * journaled before the action ran (and its result if it got one). A rollback whose condition cannot be checked
 * (the target cannot be reopened) is failed, never done; its run stays pending for the next `drill recover`.
 */
export async function recoverRun(
  resultsDir: string,
  id: string,
  catalog: Map<string, ScenarioDefinition>,
  tell: (e: RunEvent) => void,
): Promise<RecoverResult[]> {
  const path = join(resultsDir, 'runs', id, 'events.jsonl');
  const events = readJournal(path);
  const start = events.find((e): e is RunStarted & JournalLine => e.type === 'run.start');
  const pending = pendingRollbacks(events);
  if (!start || pending.length === 0) return [];
  const drill = start.drill;
  const entry: ScenarioEntry = { ...start.entry, scenario: start.scenario, line: 0 };
  const scenario = catalog.get(entry.scenario);
  const journal = new Journal(path);
  const clock = createClock();
  const write = (e: JournaledEvent) => journal.append(e, clock.iso(clock.now()), clock.now(), true);
  const out: RecoverResult[] = [];
  try {
    if (!scenario) throw new Error(`scenario ${entry.scenario} of run ${id} is no longer in scenarios/`);
    const { adapters, why } = await reopenTarget(start.target, (line) => tell({ type: 'target.note', line }));
    for (const intent of pending) {
      const index = intent.action;
      const action = scenario.actions[index];
      const name = intent.name;
      if (!action || action.name !== name) {
        write({ type: 'rollback.failed', action: index, name, error: 'the scenario changed since the run: action not found' });
        out.push({
          run: id,
          action: name,
          status: 'failed',
          detail: `scenario ${scenario.name} no longer has action "${name}" at position ${index + 1}`,
        });
        continue;
      }
      if ('none' in action.rollback) {
        write({ type: 'rollback.none', action: index, name, why: action.rollback.none });
        out.push({ run: id, action: name, status: 'nothing-left', detail: action.rollback.none });
        continue;
      }
      const restores = restoresOf(action, entry.params) ?? undefined;
      if (!adapters) {
        const error = `cannot check that it holds (${restores}): ${why ?? 'the target cannot be reopened'}. Bring the target back, then run \`drill recover ${id}\` again`;
        write({ type: 'rollback.failed', action: index, name, error });
        out.push({ run: id, action: name, status: 'failed', detail: error });
        continue;
      }
      const done = events.find((e): e is ActionDone & JournalLine => e.type === 'action.done' && e.action === index);
      const limitMs = action.rollback.timeout ? parseDuration(action.rollback.timeout) : DEFAULT_ROLLBACK_TIMEOUT_MS;
      const ctx = scenarioContext({
        params: entry.params,
        drill,
        entry,
        adapters,
        signal: AbortSignal.timeout(limitMs),
        // Shown, not journaled: the rollback's own events are the record of what recovery did.
        log: eventLogger(tell),
        timeline: new Timeline(clock),
        clock,
        results: new Map(done ? [[name, done.result]] : []),
      });
      write({ type: 'rollback.start', action: index, name, ...(restores ? { restores } : {}) });
      const r = await convergeRollback(action.rollback, ctx, { selected: intent.selected, result: done?.result }, { timeoutMs: limitMs });
      if (r.status === 'done') {
        write({ type: 'rollback.done', action: index, name, detail: r.detail, ...(r.alreadyHeld ? { alreadyHeld: true } : {}) });
        out.push({ run: id, action: name, status: 'done', detail: r.detail, ...(r.alreadyHeld ? { alreadyHeld: true } : {}) });
      } else {
        write({ type: 'rollback.failed', action: index, name, error: r.detail });
        out.push({ run: id, action: name, status: 'failed', detail: r.detail });
      }
    }
  } catch (e) {
    out.push({ run: id, action: '(all)', status: 'failed', detail: e instanceof Error ? e.message : String(e) });
  } finally {
    write({ type: 'run.recovered', results: out });
    journal.close();
  }
  return out;
}
