import type { QuarterlyRecord, RunSummary } from '../quarterly/types.ts';
import { count, day, met, minute, ms, orBlank, pct, secs, sloValue, DASH } from './format.ts';

/** The record for a wiki page or a pull request: the same tables as the HTML, without the charts. */

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return '_none_\n';
  return (
    [
      `| ${head.map(cell).join(' | ')} |`,
      `|${head.map(() => '---').join('|')}|`,
      ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    ].join('\n') + '\n'
  );
}

export function renderRecordMarkdown(r: QuarterlyRecord): string {
  const s = r.summary;
  const out: string[] = [];
  const src = r.source.kind === 'folder' ? r.source.path : r.source.url;
  out.push(
    `# Drill record ${r.quarter}`,
    '',
    `Period ${day(r.period.from)} to ${day(new Date(Date.parse(r.period.to) - 1).toISOString())}; generated ${minute(r.generatedAt)} by drill ${r.harnessVersion} from \`${src}\`.`,
    '',
  );
  out.push('## Summary', '', `**${s.headline}**`, '');
  out.push(
    table(
      [
        'Runs',
        'Passed',
        'Failed',
        'Aborted',
        'Error',
        'RTO met / missed',
        'Worst RTO',
        'Lost writes',
        'Downtime',
        'Coverage gaps',
        'SEV1',
        'SEV2',
        'SEV3',
        'SEV4',
        'Excluded',
      ],
      [
        [
          count(s.runs),
          count(s.byStatus.passed),
          count(s.byStatus.failed),
          count(s.byStatus.aborted),
          count(s.byStatus.error),
          `${s.rtoMet} / ${s.rtoMissed}`,
          secs(s.rtoWorstSeconds),
          count(s.lostWrites),
          secs(s.downtimeSeconds),
          count(s.coverageGaps),
          count(s.findings.SEV1),
          count(s.findings.SEV2),
          count(s.findings.SEV3),
          count(s.findings.SEV4),
          count(s.excluded),
        ],
      ],
    ),
  );
  out.push('## Participants and sign-off', '');
  out.push(
    table(
      ['', ''],
      [
        ['Participants', r.people.participants.length ? r.people.participants.join(', ') : orBlank(null)],
        ['Drill owners', r.people.owners.length ? r.people.owners.join(', ') : orBlank(null)],
        ['Approver', orBlank(r.signOff.approver ?? r.people.approver)],
        ['Signed off by', orBlank(r.signOff.signedBy)],
        ['Date', orBlank(r.signOff.signedAt)],
        ['Statement', r.signOff.statement],
      ],
    ),
  );
  out.push('## Scope', '');
  out.push(
    table(
      ['', ''],
      [
        ['Drills', r.scope.drills.map((d) => `${d.name} (${d.kind ?? 'kind unknown'})`).join(', ') || DASH],
        ['Targets', r.scope.targets.join(', ') || DASH],
        ['Services', r.scope.services.map((x) => `${x.name} (tier ${x.tier}, ${x.dataClass})`).join(', ') || DASH],
        ['Databases', r.scope.databases.join(', ') || DASH],
        ['Backup sets', r.scope.backupSets.join(', ') || 'none named by the runs of this quarter'],
      ],
    ),
  );
  out.push('## Coverage against the policy', '');
  if (r.coverage.items.length === 0) out.push(`${r.coverage.reason ?? 'nothing required'}`, '');
  else
    out.push(
      table(
        ['Cadence', 'Period', 'Drill / scenario', 'Status', 'Runs', 'Last run', 'Owner'],
        r.coverage.items.map((c) => [
          c.cadence,
          c.period,
          `${c.drill} / ${c.scenario}`,
          c.status === 'stale'
            ? '**GAP: ran only before**'
            : c.status === 'missing'
              ? '**GAP: never ran**'
              : c.status === 'incomplete'
                ? '**GAP: only aborted runs**'
                : c.status,
          count(c.runs),
          c.lastRunAt ? `${day(c.lastRunAt)} ${c.lastStatus ?? ''}` : DASH,
          orBlank(c.owner),
        ]),
      ),
    );
  out.push('## Scenarios: RTO and RPO', '');
  out.push(
    table(
      [
        'Drill / scenario',
        'Service',
        'Runs',
        'Last result',
        'RTO target',
        'RTO last / worst',
        'RTO met',
        'RPO target',
        'RPO worst',
        'Lost / unknown writes',
        'Budget consumed',
      ],
      r.scenarios.map((c) => [
        `${c.drill} / ${c.scenario}`,
        `${c.service} (${c.tier}, ${c.dataClass})`,
        count(c.runs),
        `${c.lastRun.status} ${day(c.lastRun.startedAt)}`,
        secs(c.rto.targetSeconds),
        `${secs(c.rto.measured.last)} / ${secs(c.rto.measured.max)}`,
        `${c.rto.met} of ${c.rto.met + c.rto.missed}${c.runs > c.rto.met + c.rto.missed ? ` (${c.runs - c.rto.met - c.rto.missed} not measured)` : ''}`,
        secs(c.rpo.targetSeconds),
        secs(c.rpo.measured.max),
        `${count(c.rpo.lostWrites)} / ${count(c.rpo.unknownWrites)}`,
        pct(c.errorBudget.consumedRatio),
      ]),
    ),
  );
  for (const c of r.scenarios) {
    out.push(
      `- **${c.scenario}**: RTO: ${c.rto.method ?? 'not measured'}${c.rto.resolutionMs !== null ? ` (resolution ${ms(c.rto.resolutionMs)}, window ${secs(c.rto.windowSeconds)})` : ''}. RPO: ${c.rpo.method ?? 'not measured: the scenario writes no data'}.`,
    );
  }
  if (r.scenarios.length) out.push('');
  out.push('## SLOs per phase', '');
  out.push(
    table(
      ['Scenario', 'Phase', 'SLO', 'Runs met', 'Worst measured'],
      r.scenarios.flatMap((c) =>
        c.slo.map((x) => [c.scenario, x.phase, x.name, `${x.met} of ${x.judged}`, sloValue(x.threshold, x.worst)]),
      ),
    ),
  );
  out.push('## Error budget by service and month', '');
  out.push(
    table(
      ['Service', 'Monthly budget', ...r.period.months],
      r.services.map((sv) => [
        `${sv.service} (${sv.tier})`,
        secs(sv.monthlyBudgetSeconds),
        ...sv.months.map((m) => `${secs(m.downtimeSeconds)} (${pct(m.consumedRatio)})`),
      ]),
    ),
  );
  out.push('## Findings', '');
  out.push(
    table(
      ['Id', 'Severity', 'Finding', 'Where', 'Seen', 'Owner', 'Due'],
      r.findings.map((f) => [
        f.id,
        f.severity,
        `${f.title}${f.recurring ? ' (recurring)' : ''}: ${f.detail}`,
        f.drill ? `${f.drill} / ${f.scenario}` : DASH,
        `${f.occurrences}×`,
        orBlank(f.owner),
        orBlank(f.due),
      ]),
    ),
  );
  out.push('## Maintenance window overrides and notice', '');
  if (r.windowExceptions.length === 0)
    out.push('Every run on a target other than the lab started inside its maintenance window, with the notice the policy asks for.', '');
  else
    out.push(
      table(
        ['Run', 'Drill / scenario', 'Target', 'Started', 'Window', 'Reason given', 'Notice'],
        r.windowExceptions.map((w) => [
          w.run,
          `${w.drill} / ${w.scenario}`,
          w.target,
          w.startedAt,
          w.override ? '**overridden**' : 'inside',
          orBlank(w.reason),
          w.noticeGivenAt ? `${w.noticeGivenAt}${w.noticeInTime ? '' : ' (late)'}` : '**none**',
        ]),
      ),
    );
  out.push('## Remediation actions', '');
  out.push(
    table(
      ['Id', 'For', 'Action', 'Owner', 'Due', 'Status'],
      r.actions.map((a) => [a.id, a.finding, a.action, orBlank(a.owner), orBlank(a.due), a.status]),
    ),
  );
  out.push(`## Trend against ${r.trend.previousQuarter}`, '');
  if (!r.trend.available) out.push(r.trend.reason ?? 'no previous record', '');
  else {
    const num = (v: number | null, name: string) =>
      v === null ? DASH : name.includes('rate') ? pct(v) : name.includes('(s)') ? secs(v) : count(v);
    out.push(
      table(
        ['Metric', r.trend.previousQuarter, r.quarter, ''],
        r.trend.overall.map((m) => [m.name, num(m.previous, m.name), num(m.current, m.name), m.direction]),
      ),
    );
  }
  out.push('## Excluded files and warnings', '');
  out.push(
    r.excluded.length
      ? table(
          ['File', 'Why it is not counted'],
          r.excluded.map((e) => [`\`${e.file}\``, e.reason]),
        )
      : 'No file was excluded.\n',
  );
  for (const w of r.warnings) out.push(`- ${w}`);
  if (r.warnings.length) out.push('');
  out.push(
    '## Integrity',
    '',
    `Rule: \`${r.integrity.rule}\`. Genesis \`${r.integrity.genesis}\`${r.integrity.genesisFrom ? ` (head of ${r.integrity.genesisFrom})` : ''}; head \`${r.integrity.head}\`. Check with \`drill verify\`.`,
    '',
  );
  out.push(
    table(
      ['Run', 'sha256 of run.json', 'Chain'],
      r.integrity.entries.map((e) => [e.id, `\`${e.digest}\``, `\`${e.chain}\``]),
    ),
  );
  out.push('## Runs', '');
  for (const run of r.runs) out.push(runMarkdown(run));
  return out.join('\n');
}

export function runMarkdown(run: RunSummary, heading = '###'): string {
  const lines = [
    `${heading} ${run.drill} / ${run.scenario}: ${run.status.toUpperCase()} (exit ${run.exitCode})`,
    '',
    `${run.id}, ${minute(run.startedAt)}; ${run.service}, tier ${run.tier}, ${run.dataClass}; target ${run.target}.`,
    '',
    table(
      ['Objective', 'Target', 'Measured', 'Result', 'Method'],
      [
        ['RTO', secs(run.rto.targetSeconds), secs(run.rto.measuredSeconds), met(run.rto.met), run.rto.method ?? run.rto.reason ?? DASH],
        [
          'RPO',
          secs(run.rpo.targetSeconds),
          secs(run.rpo.measuredSeconds),
          met(run.rpo.met),
          `${run.rpo.method ?? run.rpo.reason ?? DASH}${run.rpo.lostWrites !== null ? `; lost ${run.rpo.lostWrites}, unknown ${run.rpo.unknownWrites}` : ''}`,
        ],
        ...run.otherRpoClasses.map((c) => [
          `RPO ${c.dataClass}`,
          secs(c.targetSeconds),
          secs(c.measuredSeconds),
          met(c.met),
          `${c.method ?? c.reason ?? DASH}${c.lost !== null ? `; lost ${c.lost}, unknown ${c.unknown}` : ''}`,
        ]),
        [
          'Error budget',
          secs(run.errorBudget.monthlyBudgetSeconds),
          secs(run.errorBudget.downtimeSeconds),
          pct(run.errorBudget.consumedRatio),
          run.errorBudget.reason ?? 'downtime / monthly budget',
        ],
      ],
    ),
    table(
      ['Phase', 'SLO', 'Measured', 'Result'],
      run.slo.map((x) => [x.phase, x.name, sloValue(x.threshold, x.measured), met(x.met)]),
    ),
    `Load: ${count(run.load.scheduled)} scheduled, ${count(run.load.ok)} ok, ${count(run.load.errors)} errors, ${count(run.load.dropped)} dropped; p95 ${ms(run.load.p95Ms)}. Timeline: ${run.marks.map((m) => `${m.name} ${secs(m.ms / 1000)}`).join(' · ')}.`,
    '',
  ];
  return lines.join('\n');
}
