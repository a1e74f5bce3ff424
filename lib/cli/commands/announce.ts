/**
 * `drill announce FILE --at TIME`: the notice of a drill, written ahead as the policy asks (48 h): the
 * plan, the window, the blast radius, as Markdown for a channel or a change ticket and an iCalendar event
 * for calendars. The JSON copy under <results>/announcements/ is what `drill run` reads to record
 * `noticeGivenAt`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Drill, MaintenancePolicy } from '../../config/types.ts';
import { formatDuration } from '../../config/duration.ts';
import { checkWindow, describeOccurrence, describePolicy, windowAt } from '../../config/maintenance.ts';
import { ExitCode, UserError } from '../../errors.ts';
import { buildPlan, type Plan } from '../../plan/plan.ts';
import { announcementsDir, stampOf, writeAnnouncement, type Announcement } from '../../record/announcements.ts';
import { renderCalendar } from '../../record/ical.ts';
import { validatedDrill } from './load-drill.ts';
import { drillNow, windowApplies } from './window.ts';

export interface AnnounceOptions {
  file: string;
  at: string;
  resultsDir: string;
  outDir?: string;
}

function parseAt(at: string): number {
  // An instant without a zone would mean the machine's local time: a notice must not depend on that.
  const ms = /(Z|[+-]\d\d:?\d\d)$/i.test(at.trim()) ? Date.parse(at) : Number.NaN;
  if (Number.isNaN(ms))
    throw new UserError(`--at ${at}: expected an ISO time with its zone, like 2026-12-06T02:00:00Z`, {
      untouched: 'nothing: no notice was written',
      next: 'give the start in UTC (Z) or with an offset (+01:00)',
    });
  return ms;
}

function utc(ms: number): string {
  return new Date(ms).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z');
}

function blastRadius(plan: Plan): Announcement['blastRadius'] {
  return plan.scenarios.flatMap((s) =>
    s.actions.map((a) => ({
      scenario: s.name,
      action: a.name,
      hits: a.problem
        ? `cannot select: ${a.problem}`
        : a.targets === null
          ? `resolved at run time (${a.breaks})`
          : a.targets.join(', ') || '(nothing)',
    })),
  );
}

function renderMarkdown(drill: Drill, plan: Plan, a: Announcement, m: MaintenancePolicy, startMs: number, endMs: number): string {
  const w = windowAt(m, startMs);
  const fit = !windowApplies(drill.target) ? null : checkWindow(m, startMs, plan.plannedDuration.ms);
  const out = [
    `# Drill notice: ${drill.name}`,
    '',
    drill.description ?? '',
    '',
    `- **When**: ${utc(startMs)} to ${utc(endMs)} at the latest (planned duration ${plan.plannedDuration.text})`,
    `- **Maintenance window**: ${w ? describeOccurrence(w, m) : `none: ${utc(startMs)} is outside the policy (${describePolicy(m)})`}`,
    ...(fit && !fit.ok ? [`- **Warning**: ${fit.message}; the run needs --outside-window --reason`] : []),
    `- **Target**: ${plan.target.kind}: ${plan.target.note}`,
    `- **Kind**: ${drill.kind}; owner ${drill.owner ?? 'not named'}; approver ${drill.approver ?? 'not named'}${drill.participants.length ? `; participants ${drill.participants.join(', ')}` : ''}`,
    `- **Notice given**: ${a.announcedAt} (the policy asks for ${m.notice})`,
    '',
    '## Blast radius',
    '',
    '| scenario | action | hits |',
    '|---|---|---|',
    ...a.blastRadius.map((b) => `| ${b.scenario} | ${b.action} | ${b.hits.replace(/\|/g, '\\|')} |`),
    '',
    '## Plan',
    '',
  ];
  for (const s of plan.scenarios) {
    out.push(`### ${s.name} (${s.scenario})`, '', s.description, '');
    out.push(`- RTO ${s.rto} (tier ${s.tier}), RPO ${s.rpo} (${s.dataClass}); gives up after ${s.timeout}`);
    for (const [i, act] of s.actions.entries()) {
      out.push(`- action ${i + 1}, ${act.name}: ${act.breaks}`);
      out.push(`  - rollback: ${act.rollback}`);
    }
    out.push(`- recovered when: ${s.recovery}`, '');
  }
  out.push(
    '## Planned duration',
    '',
    `At most ${plan.plannedDuration.text}: ${plan.plannedDuration.how}.`,
    '',
    ...plan.plannedDuration.entries.map((e) => `- ${e.name}: ${e.parts}`),
    '',
    '## Stopping it',
    '',
    `Stop conditions: ${plan.stopConditions.join('; ') || 'none'}.`,
    '',
    'Anyone can halt the drill: create the file named by DRILL_HALT_FILE on the machine running it (its text is the reason)' +
      (drill.target.kind === 'kubernetes'
        ? `, or the ConfigMap \`drill-halt\` in namespace ${drill.target.namespace} (\`kubectl create configmap drill-halt -n ${drill.target.namespace} --from-literal=reason="..." --from-literal=by="..."\`)`
        : '') +
      '. A running drill then aborts and rolls back within 2 s; no drill starts while it is set.',
    '',
  );
  return out.join('\n');
}

export async function announceCommand(o: AnnounceOptions): Promise<number> {
  const { drill, catalog } = await validatedDrill(o.file);
  const startMs = parseAt(o.at);
  const nowMs = drillNow();
  if (startMs <= nowMs)
    throw new UserError(`--at ${o.at} is not in the future (now is ${utc(nowMs)}): a notice goes out before the drill`, {
      untouched: 'nothing: no notice was written',
      next: 'give the start the drill is scheduled for',
    });
  const plan = await buildPlan(drill, catalog, []);
  const m = drill.policy.maintenance;
  const endMs = startMs + plan.plannedDuration.ms;
  const w = windowAt(m, startMs);
  const announcement: Announcement = {
    schemaVersion: 1,
    drill: drill.name,
    file: drill.file,
    at: new Date(startMs).toISOString(),
    announcedAt: new Date(nowMs).toISOString(),
    plannedDurationMs: plan.plannedDuration.ms,
    window: w ? { opens: new Date(w.startMs).toISOString(), closes: new Date(w.endMs).toISOString() } : null,
    blastRadius: blastRadius(plan),
  };
  const markdown = renderMarkdown(drill, plan, announcement, m, startMs, endMs);
  const stored = writeAnnouncement(o.resultsDir, announcement);
  const outDir = o.outDir ?? announcementsDir(o.resultsDir);
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${drill.name}-${stampOf(announcement.at)}`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(
    `${base}.ics`,
    renderCalendar({
      // The same drill and start keep the same UID: announcing again updates the calendar entry.
      uid: `${drill.name}-${stampOf(announcement.at)}@drill`,
      stampMs: nowMs,
      startMs,
      endMs,
      summary: `Drill ${drill.name} (${drill.kind}) on ${drill.target.kind}`,
      description: markdown,
      location: `${plan.target.kind}: ${plan.target.note}`,
    }),
  );
  process.stdout.write(`notice: ${base}.md\ncalendar: ${base}.ics\nfor drill run: ${stored}\n`);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  if (windowApplies(drill.target) && startMs - nowMs < m.noticeMs)
    say(
      `warning: ${formatDuration(startMs - nowMs)} ahead is less than the policy's ${m.notice} notice; the run will carry a SEV3 finding`,
    );
  if (windowApplies(drill.target)) {
    const fit = checkWindow(m, startMs, plan.plannedDuration.ms);
    if (!fit.ok) say(`warning: at ${utc(startMs)}, ${fit.message}; the run will need --outside-window --reason`);
  }
  return ExitCode.ok;
}
