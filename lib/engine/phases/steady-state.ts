import { summarize } from '../../measure/summary.ts';
import { formatSloValue } from '../../score/format.ts';
import { scoreSlos } from '../../score/objectives.ts';
import { RunAbort } from '../context.ts';
import type { RunState } from './state.ts';

/** Steady state: the SLOs over the baseline and the scenario's own probes. Nothing is injected unless all hold. */
export async function steadyState(s: RunState): Promise<void> {
  const { facts, clock } = s;
  s.tell({ type: 'phase', name: 'steady-state' });
  if (s.load) {
    const measured = summarize(s.load.generator.log, 0, clock.now());
    for (const slo of scoreSlos(s.drill.policy.slo, measured, 'baseline')) {
      facts.steadyState.push({
        name: `SLO ${slo.name}`,
        ok: slo.met === true,
        detail: `measured ${formatSloValue(slo.threshold, slo.measured)} over the baseline`,
        at: clock.iso(clock.now()),
      });
    }
  }
  for (const p of s.scenario.steadyState) facts.steadyState.push(await s.probe(p));
  const unmet = facts.steadyState.filter((f) => !f.ok);
  if (unmet.length > 0) {
    throw new RunAbort('steady-state', `steady state not met: ${unmet.map((f) => `${f.name} (${f.detail})`).join('; ')}`);
  }
  s.timeline.mark('steady-state-met');
}
