import type { Drill, ScenarioEntry } from '../config/types.ts';
import { DEFAULT_ROLLBACK_TIMEOUT_MS } from '../config/defaults.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';
import type { ScenarioDefinition } from '../scenario/define.ts';

export interface PlannedDuration {
  /** The longest the drill should take when nothing hangs: what a maintenance window must hold. */
  ms: number;
  text: string;
  /** How it was added up, in words, for the plan and the notice. */
  how: string;
  entries: { name: string; ms: number; parts: string }[];
}

/**
 * The worst case the harness itself bounds, per scenario entry: the baseline load, the longest wait for
 * recovery (the entry's timeout plus the recovery window), every rollback's time limit, and the cooldown.
 * Entries run one after another, so they add up. Steady-state and verification probes are not bounded by
 * a limit of their own and are not counted: they take seconds, not minutes.
 */
export function plannedDuration(drill: Drill, catalog: ReadonlyMap<string, ScenarioDefinition>, entries: ScenarioEntry[]): PlannedDuration {
  const load = drill.load;
  const out: PlannedDuration['entries'] = [];
  for (const entry of entries) {
    const s = catalog.get(entry.scenario);
    const rollbackMs = (s?.actions ?? []).reduce(
      (sum, a) => sum + ('none' in a.rollback ? 0 : a.rollback.timeout ? parseDuration(a.rollback.timeout) : DEFAULT_ROLLBACK_TIMEOUT_MS),
      0,
    );
    const baseline = load?.baselineMs ?? 0;
    const cooldown = load?.cooldownMs ?? 0;
    const recovery = entry.timeoutMs + drill.policy.recoveryWindowMs;
    const ms = baseline + recovery + rollbackMs + cooldown;
    const parts = [
      ...(load ? [`baseline ${formatDuration(baseline)}`] : []),
      `recovery ${formatDuration(entry.timeoutMs)} + window ${formatDuration(drill.policy.recoveryWindowMs)}`,
      `rollbacks ${formatDuration(rollbackMs)}`,
      ...(load ? [`cooldown ${formatDuration(cooldown)}`] : []),
    ].join(' + ');
    out.push({ name: entry.name, ms, parts });
  }
  const ms = out.reduce((sum, e) => sum + e.ms, 0);
  return {
    ms,
    text: formatDuration(ms),
    how: 'per scenario: baseline load + recovery timeout + recovery window + every rollback time limit + cooldown, scenarios one after another (probes not counted)',
    entries: out,
  };
}
