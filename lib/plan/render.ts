import type { Plan } from './plan.ts';

/** `drill plan`'s text: what each scenario would break, hit and roll back, before anything runs. */
export function renderPlan(plan: Plan): string {
  const out: string[] = [];
  out.push(`drill ${plan.drill.name} (${plan.drill.kind}) from ${plan.drill.file}`);
  out.push(`target: ${plan.target.kind}: ${plan.target.note}`);
  const guard = plan.target.dataLoss;
  if (guard)
    out.push(
      guard.allowed
        ? `destructive data faults: allowed (allowDataLoss: true): ${guard.reason}`
        : 'destructive data faults: refused (the target does not set allowDataLoss: true with a dataLossReason)',
    );
  out.push(
    plan.load
      ? `load: ${plan.load.rate} req/s open model, ${plan.load.requests.join(', ')}; timeout ${plan.load.timeout}, at most ${plan.load.maxInFlight} in flight; baseline ${plan.load.baseline}, cooldown ${plan.load.cooldown}`
      : 'load: none (the target has no service; SLOs are not judged)',
  );
  out.push(`stop conditions: ${plan.stopConditions.length ? plan.stopConditions.join('; ') : 'none'}`);
  out.push(`planned duration: at most ${plan.plannedDuration.text} (${plan.plannedDuration.how})`);
  for (const e of plan.plannedDuration.entries) out.push(`  ${e.name}: ${e.parts}`);
  for (const s of plan.scenarios) {
    out.push('');
    out.push(`scenario ${s.name} (${s.scenario}): ${s.description}`);
    const slo = s.slos.length > 0 ? `SLOs ${s.slos.join(', ')}; recovered = SLOs held for ${s.recoveryWindow}` : 'no SLOs (no load)';
    out.push(`  tier ${s.tier}: RTO ${s.rto}; data ${s.dataClass}: RPO ${s.rpo}; ${slo}; gives up after ${s.timeout}`);
    out.push(`  params: ${JSON.stringify(s.params)}`);
    out.push(`  steady state: ${s.steadyState.join('; ')}`);
    for (const [i, a] of s.actions.entries()) {
      out.push(`  action ${i + 1}. ${a.name}: ${a.breaks}`);
      out.push(
        `     hits: ${a.problem ? `CANNOT SELECT: ${a.problem}` : a.targets === null ? '(resolved at run time)' : a.targets.join(', ') || '(nothing)'}`,
      );
      if (a.replacedBy) out.push(`     replaced by: the controller of ${a.replacedBy}`);
      out.push(`     rollback: ${a.rollback}`);
      if (a.restores) out.push(`     restores: ${a.restores} (checked before and after the rollback acts)`);
    }
    out.push(`  recovered when: ${s.recovery}`);
    out.push(`  verify: ${s.verify.join('; ') || 'nothing beyond the SLOs'}`);
  }
  for (const w of plan.warnings) out.push('', `warning: ${w}`);
  if (plan.problems.length) out.push('', `problems: ${plan.problems.join('; ')}`);
  return out.join('\n') + '\n';
}
