import type { QuarterlyRecord, RunSummary } from '../quarterly/types.ts';
import { count, day, met, minute, ms, orBlank, pct, secs, sloValue, DASH } from './format.ts';
import { errorChart, esc, latencyChart, objectiveBars } from './svg.ts';

/**
 * The record as one self-contained HTML file: inline CSS and SVG, no script, no external asset, so it
 * opens offline from a file and prints. A manager reads the first screen; an auditor reads on.
 * Figures carry `data-field` (their path in record.json) and `data-value` (the raw value), so a test
 * can check that what is shown is what was recorded.
 */

const CSS = `
:root { --ok:#2e7d32; --bad:#c62828; --warn:#ef6c00; --muted:#607d8b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color:#1c2530; margin:0 auto; max-width:1100px; padding:24px; }
h1 { font-size:24px; margin:0 0 4px; } h2 { font-size:18px; margin:28px 0 8px; border-bottom:2px solid #eceff1; padding-bottom:4px; }
h3 { font-size:15px; margin:18px 0 6px; }
.meta { color:var(--muted); margin:0 0 12px; }
.headline { font-size:16px; background:#f5f7f8; border-left:4px solid #455a64; padding:10px 14px; margin:12px 0; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); gap:8px; margin:10px 0; }
.tile { border:1px solid #cfd8dc; border-radius:6px; padding:8px 10px; } .tile b { display:block; font-size:20px; }
.tile.bad b { color:var(--bad); } .tile.ok b { color:var(--ok); }
table { border-collapse:collapse; width:100%; margin:6px 0 10px; font-size:13px; }
th, td { border:1px solid #dde3e6; padding:4px 6px; text-align:left; vertical-align:top; } th { background:#f2f5f6; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.id, td.date { white-space:nowrap; }
.met { color:var(--ok); } .missed { color:var(--bad); font-weight:bold; } .na { color:var(--muted); }
.sev-SEV1 { color:#fff; background:var(--bad); } .sev-SEV2 { color:#fff; background:var(--warn); } .sev-SEV3 { background:#ffe0b2; } .sev-SEV4 { background:#eceff1; }
.sev { padding:1px 6px; border-radius:3px; font-weight:bold; font-size:12px; }
.blank { color:var(--muted); letter-spacing:1px; }
.small { font-size:12px; color:var(--muted); } code, .hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px; word-break:break-all; }
section.run { border-top:3px solid #455a64; margin-top:28px; padding-top:6px; }
svg.chart { display:block; max-width:760px; margin:6px 0 12px; font-size:11px; }
svg .grid { stroke:#eceff1; } svg .plot { fill:none; stroke:#b0bec5; } svg .tick, svg .axis { fill:#546e7a; } svg .reason { fill:#546e7a; }
.legend span { display:inline-block; margin-right:12px; } .legend i { display:inline-block; width:18px; height:3px; vertical-align:middle; margin-right:4px; }
@media print {
  body { max-width:none; padding:0; font-size:11px; } h2 { break-after:avoid; } section.run, table, svg { break-inside:avoid; }
  .tile { border-color:#999; } a { color:inherit; text-decoration:none; }
}
`;

const field = (path: string, value: unknown, shown: string): string =>
  `<span data-field="${esc(path)}" data-value="${esc(JSON.stringify(value ?? null))}">${esc(shown)}</span>`;

const metCell = (m: boolean | null | undefined) =>
  `<span class="${m === true ? 'met' : m === false ? 'missed' : 'na'}">${esc(met(m))}</span>`;
const blankable = (s: string | null | undefined) => (s && s.trim() ? esc(s) : `<span class="blank">${esc(orBlank(null))}</span>`);
const sev = (s: string) => `<span class="sev sev-${esc(s)}">${esc(s)}</span>`;
const table = (head: string[], rows: string[][], cls = '') =>
  `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.join('')}</tr>`).join('')}</tbody></table>`;
const td = (html: string, num = false) => `<td${num ? ' class="num"' : ''}>${html}</td>`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${CSS}</style></head><body>${body}</body></html>\n`;
}

export function renderRecordHtml(r: QuarterlyRecord): string {
  const s = r.summary;
  const notPassed = s.runs - s.byStatus.passed;
  const tiles = [
    ['Runs', field('summary.runs', s.runs, count(s.runs)), ''],
    ['Passed', field('summary.byStatus.passed', s.byStatus.passed, count(s.byStatus.passed)), notPassed === 0 && s.runs > 0 ? 'ok' : ''],
    [
      'Failed / aborted / error',
      `${field('summary.byStatus.failed', s.byStatus.failed, count(s.byStatus.failed))} / ${field('summary.byStatus.aborted', s.byStatus.aborted, count(s.byStatus.aborted))} / ${field('summary.byStatus.error', s.byStatus.error, count(s.byStatus.error))}`,
      notPassed > 0 ? 'bad' : '',
    ],
    [
      'RTO met / missed',
      `${field('summary.rtoMet', s.rtoMet, count(s.rtoMet))} / ${field('summary.rtoMissed', s.rtoMissed, count(s.rtoMissed))}`,
      s.rtoMissed > 0 ? 'bad' : '',
    ],
    ['Worst RTO', field('summary.rtoWorstSeconds', s.rtoWorstSeconds, secs(s.rtoWorstSeconds)), ''],
    ['Acknowledged writes lost', field('summary.lostWrites', s.lostWrites, count(s.lostWrites)), s.lostWrites > 0 ? 'bad' : 'ok'],
    ['Downtime caused', field('summary.downtimeSeconds', s.downtimeSeconds, secs(s.downtimeSeconds)), ''],
    ['Coverage gaps', field('summary.coverageGaps', s.coverageGaps, count(s.coverageGaps)), s.coverageGaps > 0 ? 'bad' : 'ok'],
    [
      'Findings SEV1 / SEV2',
      `${field('summary.findings.SEV1', s.findings.SEV1, count(s.findings.SEV1))} / ${field('summary.findings.SEV2', s.findings.SEV2, count(s.findings.SEV2))}`,
      s.findings.SEV1 + s.findings.SEV2 > 0 ? 'bad' : 'ok',
    ],
    ['Excluded files', field('summary.excluded', s.excluded, count(s.excluded)), s.excluded > 0 ? 'bad' : ''],
  ]
    .map(([label, v, cls]) => `<div class="tile ${cls}"><b>${v}</b>${esc(label!)}</div>`)
    .join('');

  const src = r.source.kind === 'folder' ? r.source.path : `${r.source.url} (${r.source.endpoint})`;
  const parts: string[] = [];
  parts.push(
    `<header><h1>Drill record ${esc(r.quarter)}</h1><p class="meta">Disaster-recovery and chaos drills from ${esc(day(r.period.from))} to ${esc(day(new Date(Date.parse(r.period.to) - 1).toISOString()))} · generated ${esc(minute(r.generatedAt))} by drill ${esc(r.harnessVersion)} · runs from <code>${esc(src)}</code></p></header>`,
    `<section id="summary"><h2>Summary</h2><p class="headline" data-field="summary.headline">${esc(s.headline)}</p><div class="tiles">${tiles}</div></section>`,
  );

  parts.push(
    `<section id="sign-off"><h2>Participants and sign-off</h2>${table(
      ['', ''],
      [
        [td('Participants'), td(r.people.participants.length ? esc(r.people.participants.join(', ')) : blankable(null))],
        [td('Drill owners'), td(r.people.owners.length ? esc(r.people.owners.join(', ')) : blankable(null))],
        [td('Approver'), td(blankable(r.signOff.approver ?? r.people.approver))],
        [td('Signed off by'), td(blankable(r.signOff.signedBy))],
        [td('Date'), td(blankable(r.signOff.signedAt))],
        [td('Statement'), td(esc(r.signOff.statement))],
      ],
      'signoff',
    )}</section>`,
  );

  parts.push(
    `<section id="scope"><h2>Scope</h2>${table(
      ['', ''],
      [
        [
          td('Drills'),
          td(
            r.scope.drills.length
              ? r.scope.drills
                  .map(
                    (d) =>
                      `${esc(d.name)} <span class="small">(${esc(d.kind ?? 'kind unknown')}${d.file ? `, ${esc(d.file)}` : ''})</span>`,
                  )
                  .join('<br>')
              : DASH,
          ),
        ],
        [td('Targets'), td(esc(r.scope.targets.join(', ') || DASH))],
        [
          td('Services'),
          td(
            r.scope.services
              .map((x) => `${esc(x.name)} <span class="small">(tier ${esc(x.tier)}, ${esc(x.dataClass)})</span>`)
              .join('<br>') || DASH,
          ),
        ],
        [td('Databases'), td(esc(r.scope.databases.join(', ') || DASH))],
        [td('Backup sets'), td(esc(r.scope.backupSets.join(', ') || 'none named by the runs of this quarter'))],
      ],
    )}</section>`,
  );

  const cov = r.coverage;
  parts.push(
    `<section id="coverage"><h2>Coverage against the policy</h2>${
      cov.items.length === 0
        ? `<p>${esc(cov.reason ?? 'nothing required')}</p>`
        : table(
            ['Cadence', 'Period', 'Drill / scenario', 'Status', 'Runs', 'Last run', 'Owner'],
            cov.items.map((c, i) => [
              td(esc(c.cadence)),
              td(esc(c.period)),
              td(`${esc(c.drill)} / ${esc(c.scenario)}`),
              td(
                `<span class="${c.status === 'ran' ? 'met' : c.status === 'due' ? 'na' : 'missed'}" data-field="coverage.items.${i}.status" data-value="${esc(JSON.stringify(c.status))}">${esc(c.status === 'stale' ? 'GAP: ran only before' : c.status === 'missing' ? 'GAP: never ran' : c.status === 'incomplete' ? 'GAP: only aborted runs' : c.status === 'due' ? 'due (period not over)' : 'ran')}</span>`,
              ),
              td(field(`coverage.items.${i}.runs`, c.runs, count(c.runs)), true),
              td(c.lastRunAt ? `${esc(day(c.lastRunAt))} <span class="small">${esc(c.lastStatus ?? '')}</span>` : DASH),
              td(blankable(c.owner)),
            ]),
          )
    }</section>`,
  );

  parts.push(
    `<section id="scenarios"><h2>Scenarios: RTO and RPO</h2>${
      r.scenarios.length === 0
        ? '<p>No runs in this quarter.</p>'
        : table(
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
            r.scenarios.map((c, i) => [
              td(`${esc(c.drill)} / <b>${esc(c.scenario)}</b><br><span class="small">${esc(c.scenarioModule)}</span>`),
              td(`${esc(c.service)}<br><span class="small">tier ${esc(c.tier)}, ${esc(c.dataClass)}</span>`),
              td(field(`scenarios.${i}.runs`, c.runs, count(c.runs)), true),
              td(
                `<span class="${c.lastRun.status === 'passed' ? 'met' : 'missed'}">${esc(c.lastRun.status)}</span><br><span class="small">${esc(day(c.lastRun.startedAt))}</span>`,
              ),
              td(field(`scenarios.${i}.rto.targetSeconds`, c.rto.targetSeconds, secs(c.rto.targetSeconds)), true),
              td(
                `${field(`scenarios.${i}.rto.measured.last`, c.rto.measured.last, secs(c.rto.measured.last))} / ${field(`scenarios.${i}.rto.measured.max`, c.rto.measured.max, secs(c.rto.measured.max))}`,
                true,
              ),
              td(
                `${c.rto.met} of ${c.rto.met + c.rto.missed}${c.runs > c.rto.met + c.rto.missed ? ` <span class="small">(${c.runs - c.rto.met - c.rto.missed} not measured)</span>` : ''}`,
                true,
              ),
              td(field(`scenarios.${i}.rpo.targetSeconds`, c.rpo.targetSeconds, secs(c.rpo.targetSeconds)), true),
              td(field(`scenarios.${i}.rpo.measured.max`, c.rpo.measured.max, secs(c.rpo.measured.max)), true),
              td(
                `${field(`scenarios.${i}.rpo.lostWrites`, c.rpo.lostWrites, count(c.rpo.lostWrites))} / ${field(`scenarios.${i}.rpo.unknownWrites`, c.rpo.unknownWrites, count(c.rpo.unknownWrites))}`,
                true,
              ),
              td(field(`scenarios.${i}.errorBudget.consumedRatio`, c.errorBudget.consumedRatio, pct(c.errorBudget.consumedRatio)), true),
            ]),
          ) +
          `<h3>How RTO and RPO were measured</h3>` +
          r.scenarios
            .map(
              (c) =>
                `<p><b>${esc(c.scenario)}</b>: RTO: ${esc(c.rto.method ?? 'not measured')}${c.rto.resolutionMs !== null ? ` (resolution ${esc(ms(c.rto.resolutionMs))}, recovery window ${esc(secs(c.rto.windowSeconds))})` : ''}. RPO: ${esc(c.rpo.method ?? 'not measured: the scenario writes no data')}.</p>`,
            )
            .join('')
    }</section>`,
  );

  if (r.scenarios.length > 0) {
    parts.push(
      `<section id="slos"><h2>SLOs per phase</h2>${table(
        ['Scenario', 'Phase', 'SLO', 'Runs met', 'Worst measured'],
        r.scenarios.flatMap((c, i) =>
          c.slo.map((x, j) => [
            td(esc(c.scenario)),
            td(esc(x.phase)),
            td(esc(x.name)),
            td(`<span class="${x.met === x.judged ? 'met' : 'missed'}">${x.met} of ${x.judged}</span>`, true),
            td(field(`scenarios.${i}.slo.${j}.worst`, x.worst, sloValue(x.threshold, x.worst)), true),
          ]),
        ),
      )}<p class="small">Fault-phase SLO misses are findings, not failed runs: the fault itself is judged by its RTO and the error budget it spends.</p></section>`,
    );
    parts.push(
      `<section id="budget"><h2>Error budget by service and month</h2>${table(
        ['Service', 'Monthly budget', ...r.period.months.map((m) => `${m} downtime (share of budget)`)],
        r.services.map((sv, i) => [
          td(`${esc(sv.service)} <span class="small">(tier ${esc(sv.tier)})</span>`),
          td(field(`services.${i}.monthlyBudgetSeconds`, sv.monthlyBudgetSeconds, secs(sv.monthlyBudgetSeconds)), true),
          ...sv.months.map((m, j) =>
            td(
              `${field(`services.${i}.months.${j}.downtimeSeconds`, m.downtimeSeconds, secs(m.downtimeSeconds))} (${pct(m.consumedRatio)})`,
              true,
            ),
          ),
        ]),
      )}</section>`,
    );
  }

  parts.push(
    `<section id="findings"><h2>Findings</h2>${
      r.findings.length === 0
        ? '<p>No findings.</p>'
        : table(
            ['Id', 'Severity', 'Finding', 'Where', 'Seen', 'Owner', 'Due'],
            r.findings.map((f) => [
              `<td class="id"><b>${esc(f.id)}</b></td>`,
              td(sev(f.severity)),
              td(
                `${esc(f.title)}${f.recurring ? ' <span class="missed">(recurring)</span>' : ''}<br><span class="small">${esc(f.detail)}</span>`,
              ),
              td(f.drill ? `${esc(f.drill)} / ${esc(f.scenario ?? '')}` : DASH),
              td(`${f.occurrences}×`, true),
              td(blankable(f.owner)),
              `<td class="date">${blankable(f.due)}</td>`,
            ]),
          )
    }</section>`,
    `<section id="window-exceptions"><h2>Maintenance window overrides and notice</h2>${
      r.windowExceptions.length === 0
        ? '<p>Every run on a target other than the lab started inside its maintenance window, with the notice the policy asks for.</p>'
        : table(
            ['Run', 'Drill / scenario', 'Target', 'Started', 'Window', 'Reason given', 'Notice'],
            r.windowExceptions.map((w) => [
              `<td class="id">${esc(w.run)}</td>`,
              td(`${esc(w.drill)} / ${esc(w.scenario)}`),
              td(esc(w.target)),
              `<td class="date">${esc(w.startedAt)}</td>`,
              td(w.override ? '<span class="missed">overridden</span>' : 'inside'),
              td(blankable(w.reason)),
              td(
                w.noticeGivenAt
                  ? `${esc(w.noticeGivenAt)}${w.noticeInTime ? '' : ' <span class="missed">(late)</span>'}`
                  : '<span class="missed">none</span>',
              ),
            ]),
          )
    }</section>`,
    `<section id="actions"><h2>Remediation actions</h2>${
      r.actions.length === 0
        ? '<p>None.</p>'
        : table(
            ['Id', 'For', 'Action', 'Owner', 'Due', 'Status'],
            r.actions.map((a) => [
              `<td class="id"><b>${esc(a.id)}</b></td>`,
              `<td class="id">${esc(a.finding)}</td>`,
              td(esc(a.action)),
              td(blankable(a.owner)),
              `<td class="date">${blankable(a.due)}</td>`,
              td(esc(a.status)),
            ]),
          )
    }</section>`,
  );

  const t = r.trend;
  const arrow = (d: string) =>
    d === 'better'
      ? '<span class="met">▲ better</span>'
      : d === 'worse'
        ? '<span class="missed">▼ worse</span>'
        : d === 'same'
          ? 'same'
          : DASH;
  const num = (v: number | null, name: string) =>
    v === null ? DASH : name.includes('rate') ? pct(v) : name.includes('(s)') ? secs(v) : count(v);
  parts.push(
    `<section id="trend"><h2>Trend against ${esc(t.previousQuarter)}</h2>${
      !t.available
        ? `<p>${esc(t.reason ?? 'no previous record')}</p>`
        : table(
            ['Metric', t.previousQuarter, r.quarter, ''],
            t.overall.map((m, i) => [
              td(esc(m.name)),
              td(num(m.previous, m.name), true),
              td(field(`trend.overall.${i}.current`, m.current, num(m.current, m.name)), true),
              td(arrow(m.direction)),
            ]),
          ) +
          table(
            ['Scenario', 'Metric', t.previousQuarter, r.quarter, ''],
            t.scenarios.flatMap((sc) =>
              sc.metrics.map((m) => [
                td(`${esc(sc.drill)} / ${esc(sc.scenario)}`),
                td(esc(m.name)),
                td(num(m.previous, m.name), true),
                td(num(m.current, m.name), true),
                td(arrow(m.direction)),
              ]),
            ),
          )
    }</section>`,
  );

  parts.push(
    `<section id="excluded"><h2>Excluded files and warnings</h2>${
      r.excluded.length === 0
        ? '<p>No file was excluded.</p>'
        : table(
            ['File', 'Why it is not counted'],
            r.excluded.map((e) => [td(`<code>${esc(e.file)}</code>`), td(esc(e.reason))]),
            'excluded',
          )
    }${r.warnings.length ? `<ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}</section>`,
  );

  const ig = r.integrity;
  parts.push(
    `<section id="integrity"><h2>Integrity</h2><p>Each run record's ${esc(ig.algorithm)} and a hash chain across them; <code>drill verify</code> recomputes both. Rule: <code>${esc(ig.rule)}</code>.</p>` +
      `<p>Genesis <span class="hash">${esc(ig.genesis)}</span>${ig.genesisFrom ? ` (head of ${esc(ig.genesisFrom)})` : ''}<br>Head <span class="hash" data-field="integrity.head" data-value="${esc(JSON.stringify(ig.head))}">${esc(ig.head)}</span></p>` +
      table(
        ['Run', 'sha256 of run.json', 'Chain'],
        ig.entries.map((e) => [
          td(esc(e.id)),
          td(`<span class="hash">${esc(e.digest)}</span>`),
          td(`<span class="hash">${esc(e.chain)}</span>`),
        ]),
      ) +
      `</section>`,
  );

  parts.push(`<h2 id="runs">Runs</h2>`, ...r.runs.map((run, i) => runSection(run, `runs.${i}`)));
  return page(`Drill record ${r.quarter}`, parts.join('\n'));
}

const LEGEND = `<p class="legend small"><span><i style="background:#1e88e5"></i>p50</span><span><i style="background:#fb8c00"></i>p95</span><span><i style="background:#8e24aa"></i>p99</span><span><i style="background:#6a1b9a"></i>SLO</span><span><i style="background:#c62828"></i>fault injected</span><span><i style="background:#2e7d32"></i>recovered</span></p>`;

/** One run: its verdict, RTO/RPO bars, latency and error-rate charts, SLOs per phase, timeline. */
export function runSection(run: RunSummary, path: string): string {
  const statusCls = run.status === 'passed' ? 'met' : 'missed';
  const charts =
    run.series.points.length > 0
      ? `${LEGEND}${latencyChart(run)}${errorChart(run)}${run.series.resolutionSeconds > 1 ? `<p class="small">One point per ${run.series.resolutionSeconds} s (worst latency of each bucket).</p>` : ''}`
      : `<p class="small charts-missing">No charts: ${esc(run.series.reason ?? 'no per-second metrics')}</p>`;
  return (
    `<section class="run" id="run-${esc(run.id)}" data-run="${esc(run.id)}">` +
    `<h3>${esc(run.drill)} / ${esc(run.scenario)} <span class="${statusCls}">${esc(run.status.toUpperCase())}</span> <span class="small">exit ${run.exitCode}</span></h3>` +
    `<p class="small">${esc(run.id)} · ${esc(minute(run.startedAt))} · ${esc(run.service)}, tier ${esc(run.tier)}, ${esc(run.dataClass)} · target ${esc(run.target)} · ${esc(run.file)}</p>` +
    table(
      ['Objective', 'Target', 'Measured', 'Result', 'Method'],
      [
        [
          td('RTO'),
          td(field(`${path}.rto.targetSeconds`, run.rto.targetSeconds, secs(run.rto.targetSeconds)), true),
          td(field(`${path}.rto.measuredSeconds`, run.rto.measuredSeconds, secs(run.rto.measuredSeconds)), true),
          td(metCell(run.rto.met)),
          td(`<span class="small">${esc(run.rto.method ?? run.rto.reason ?? DASH)}</span>`),
        ],
        [
          td('RPO'),
          td(field(`${path}.rpo.targetSeconds`, run.rpo.targetSeconds, secs(run.rpo.targetSeconds)), true),
          td(field(`${path}.rpo.measuredSeconds`, run.rpo.measuredSeconds, secs(run.rpo.measuredSeconds)), true),
          td(metCell(run.rpo.met)),
          td(
            `<span class="small">${esc(run.rpo.method ?? run.rpo.reason ?? DASH)}${run.rpo.lostWrites !== null ? `; lost ${count(run.rpo.lostWrites)}, unknown ${count(run.rpo.unknownWrites)}` : ''}</span>`,
          ),
        ],
        ...run.otherRpoClasses.map((c, k) => [
          td(`RPO ${esc(c.dataClass)}`),
          td(field(`${path}.otherRpoClasses.${k}.targetSeconds`, c.targetSeconds, secs(c.targetSeconds)), true),
          td(field(`${path}.otherRpoClasses.${k}.measuredSeconds`, c.measuredSeconds, secs(c.measuredSeconds)), true),
          td(metCell(c.met)),
          td(
            `<span class="small">${esc(c.method ?? c.reason ?? DASH)}${c.lost !== null ? `; lost ${count(c.lost)}, unknown ${count(c.unknown)}` : ''}</span>`,
          ),
        ]),
        [
          td('Error budget'),
          td(
            field(
              `${path}.errorBudget.monthlyBudgetSeconds`,
              run.errorBudget.monthlyBudgetSeconds,
              secs(run.errorBudget.monthlyBudgetSeconds),
            ),
            true,
          ),
          td(field(`${path}.errorBudget.downtimeSeconds`, run.errorBudget.downtimeSeconds, secs(run.errorBudget.downtimeSeconds)), true),
          td(field(`${path}.errorBudget.consumedRatio`, run.errorBudget.consumedRatio, pct(run.errorBudget.consumedRatio))),
          td(`<span class="small">${esc(run.errorBudget.reason ?? 'downtime / monthly budget')}</span>`),
        ],
      ],
    ) +
    objectiveBars(run) +
    charts +
    table(
      ['Phase', 'SLO', 'Measured', 'Result'],
      run.slo.map((x, j) => [
        td(esc(x.phase)),
        td(esc(x.name)),
        td(field(`${path}.slo.${j}.measured`, x.measured, sloValue(x.threshold, x.measured)), true),
        td(metCell(x.met)),
      ]),
    ) +
    `<p class="small">Load: ${field(`${path}.load.scheduled`, run.load.scheduled, count(run.load.scheduled))} scheduled, ${count(run.load.ok)} ok, ${count(run.load.errors)} errors, ${count(run.load.dropped)} dropped; p95 ${field(`${path}.load.p95Ms`, run.load.p95Ms, ms(run.load.p95Ms))}. Timeline: ${run.marks.map((m) => `${esc(m.name)} ${esc(secs(m.ms / 1000))}`).join(' · ')}.</p>` +
    `</section>`
  );
}

/** `drill report RUN_ID`: one run, the same way the record shows it. */
export function renderRunHtml(
  run: RunSummary,
  findings: ReadonlyArray<{ severity: string; title: string; detail: string; due: string | null }>,
): string {
  const f = findings.length
    ? table(
        ['Severity', 'Finding', 'Due'],
        findings.map((x) => [
          td(sev(x.severity)),
          td(`${esc(x.title)}<br><span class="small">${esc(x.detail)}</span>`),
          td(blankable(x.due)),
        ]),
      )
    : '<p>No findings.</p>';
  return page(
    `Drill run ${run.id}`,
    `<header><h1>Drill run ${esc(run.scenario)}</h1><p class="meta">${esc(run.drill)} · ${esc(run.id)}</p></header>${runSection(run, 'run')}<h2>Findings</h2>${f}`,
  );
}
