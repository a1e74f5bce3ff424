import { dueDate, type Finding, type Severity } from '../../score/findings.ts';
import { periodEnd } from './coverage.ts';
import type { Quarter } from './quarter.ts';
import type { CoverageItem, RemediationAction, RolledFinding, RunInput } from './types.ts';

/**
 * The quarter's findings: every run's findings, rolled up so the same problem in the same scenario is
 * one line with its occurrences, plus a finding for each coverage gap; then one remediation action each.
 */

const ORDER: Severity[] = ['SEV1', 'SEV2', 'SEV3', 'SEV4'];
const rank = (s: Severity) => ORDER.indexOf(s);

type Draft = Omit<RolledFinding, 'id' | 'recurring'>;

/** Same drill, scenario and objective: the same problem, whatever its wording this time. */
function keyOf(drill: string | null, scenario: string | null, f: Pick<Finding, 'objective' | 'title'>): string {
  return `${drill ?? ''}/${scenario ?? ''}/${f.objective ?? f.title.replace(/[\d.,]+/g, '#')}`;
}

function earliest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

export function rollupFindings(
  runs: readonly RunInput[],
  gaps: readonly CoverageItem[],
  quarter: Quarter,
  previousKeys: ReadonlySet<string>,
): RolledFinding[] {
  const drafts = new Map<string, Draft>();
  for (const run of runs) {
    const r = run.record;
    for (const f of r.findings) {
      const key = keyOf(r.drill, r.scenario, f);
      const seen = drafts.get(key);
      if (!seen) {
        drafts.set(key, {
          severity: f.severity,
          title: f.title,
          detail: f.detail,
          owner: (f.owner as string | null) ?? run.context.owner,
          due: f.due,
          source: 'run',
          drill: r.drill,
          scenario: r.scenario,
          objective: f.objective ?? null,
          runs: [r.id],
          occurrences: 1,
          firstSeen: r.startedAt,
          lastSeen: r.startedAt,
          key,
        });
        continue;
      }
      seen.occurrences++;
      if (!seen.runs.includes(r.id)) seen.runs.push(r.id);
      seen.due = earliest(seen.due, f.due);
      if (r.startedAt < seen.firstSeen) seen.firstSeen = r.startedAt;
      if (r.startedAt >= seen.lastSeen) {
        // The latest wording describes the latest state; the worst severity seen stays.
        seen.lastSeen = r.startedAt;
        seen.title = f.title;
        seen.detail = f.detail;
      }
      if (rank(f.severity) < rank(seen.severity)) seen.severity = f.severity;
    }
  }
  for (const g of gaps) {
    const key = `${g.drill}/${g.scenario}/coverage:${g.cadence}:${g.period}`;
    const end = periodEnd(g, quarter);
    const what = g.cadence === 'quarterly' ? `quarterly drill` : `monthly restore test`;
    const title =
      g.status === 'incomplete'
        ? `Required ${what} never completed in ${g.period}: every run was ${g.lastStatus}`
        : g.status === 'stale'
          ? `Required ${what} not run in ${g.period}: last run ${g.lastRunAt!.slice(0, 10)}`
          : `Required ${what} never run: not in ${g.period}`;
    drafts.set(key, {
      severity: 'SEV2',
      title: `${title} (${g.drill} / ${g.scenario})`,
      detail: `The policy requires ${g.drill} / ${g.scenario} ${g.cadence === 'quarterly' ? 'every quarter' : 'every month'}; ${g.status === 'incomplete' ? `no run in ${g.period} got as far as judging recovery` : `no run started in ${g.period}`}${g.lastRunId ? ` (last: ${g.lastRunId}, ${g.lastStatus})` : ''}. An untested recovery path is an unknown RTO.`,
      owner: g.owner,
      due: dueDate('SEV2', end),
      source: 'coverage',
      drill: g.drill,
      scenario: g.scenario,
      objective: `coverage:${g.cadence}`,
      runs: g.lastRunId ? [g.lastRunId] : [],
      occurrences: 1,
      firstSeen: end,
      lastSeen: end,
      key,
    });
  }
  return [...drafts.values()]
    .sort((a, b) => rank(a.severity) - rank(b.severity) || (a.due ?? '9999').localeCompare(b.due ?? '9999') || a.key.localeCompare(b.key))
    .map((d, i) => ({ id: `F-${String(i + 1).padStart(2, '0')}`, ...d, recurring: previousKeys.has(d.key) }));
}

/** What to do about a finding, in an SRE's words; SEV4 notes get no action. */
export function remediation(f: RolledFinding): string | null {
  if (f.severity === 'SEV4') return null;
  const where = f.drill ? `${f.drill} / ${f.scenario}` : 'the service';
  const obj = f.objective ?? '';
  if (obj.startsWith('coverage:'))
    return `Run ${where} (\`drill run <drill file> --scenario ${f.scenario}\`) and keep its run folder where \`drill record\` reads; then make the schedule that should have run it reliable.`;
  if (obj === 'rto')
    return `Find what held recovery of ${where} past its RTO (timeline marks in the run's events.jsonl), fix it, and rerun the drill to show the RTO met.`;
  if (obj === 'rpo')
    return `Stop the loss of acknowledged writes in ${where} (replication mode, failover fencing, backup frequency), then rerun to show lost writes at 0 or within the RPO.`;
  if (obj === 'verification')
    return `Fix what verification found in ${where}: ${f.title.replace(/^Verification failed: /, '')}; rerun the drill.`;
  if (obj.startsWith('slo:fault:'))
    return `Reduce the impact of the fault in ${where} (retries, connection draining, readiness checks) so fewer requests fail while it lasts.`;
  if (obj.startsWith('slo:'))
    return `Investigate the degraded service around ${where} (${obj.split(':').slice(1).join(' ')}); a service must meet its SLOs outside the fault.`;
  if (/^Rollback failed/.test(f.title))
    return `Bring the target back by hand (\`drill recover\`), then fix the rollback of ${where} so it cannot leave the target broken.`;
  return `Review "${f.title}" with the owner of ${where} and decide the fix.`;
}

export function remediationActions(findings: readonly RolledFinding[]): RemediationAction[] {
  const out: RemediationAction[] = [];
  for (const f of findings) {
    const action = remediation(f);
    if (action === null) continue;
    out.push({ id: `A-${String(out.length + 1).padStart(2, '0')}`, finding: f.id, action, owner: f.owner, due: f.due, status: 'open' });
  }
  return out;
}

export function severityCounts(findings: readonly Pick<RolledFinding, 'severity'>[]): Record<Severity, number> {
  const c: Record<Severity, number> = { SEV1: 0, SEV2: 0, SEV3: 0, SEV4: 0 };
  for (const f of findings) c[f.severity]++;
  return c;
}
