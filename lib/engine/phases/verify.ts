import type { RunState } from './state.ts';

/** Verify: the scenario's after-the-fact checks (data intact, replacements new); a check may not apply to this run. */
export async function verify(s: RunState): Promise<void> {
  const { facts } = s;
  s.tell({ type: 'phase', name: 'verify' });
  for (const p of s.scenario.verify) {
    const skipped = p.skip?.(s.ctx) ?? null;
    if (skipped === null) {
      facts.verification.push(await s.probe(p));
      continue;
    }
    facts.skippedChecks.push({ name: p.name, reason: skipped });
    s.record({ type: 'probe.skipped', name: p.name, reason: skipped });
  }
  if (facts.verification.every((v) => v.ok) && s.timeline.get('recovered')) s.timeline.mark('verified');
}
