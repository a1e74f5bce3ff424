import type { RunRecord } from './run-record.ts';
import type { SloResult } from '../score/objectives.ts';
import { verdict } from '../score/verdict.ts';
import { formatCount, formatMs, formatPercent, formatSeconds, formatSloValue } from '../score/format.ts';

/**
 * What a person reads in ten seconds at the end of a run: the verdict first, then the objectives,
 * the SLOs per phase, the budget, the findings and where the files are. At most 100 columns.
 */
export const WIDTH = 100;

export interface SummaryOptions {
  color: boolean;
  /** The run folder, as the person should type it; defaults to results/runs/<id>. */
  dir?: string;
}

const ANSI = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
type Style = keyof typeof ANSI;

// Matches the SGR sequences this module emits, so widths can be measured without them.
const SGR = /\x1b\[[0-9;]*m/g;

/** A tiny share of the budget still reads as spent (0.0004%), never as a flat 0%. */
function formatBudgetShare(ratio: number): string {
  if (ratio === 0 || ratio >= 0.001) return formatPercent(ratio);
  return `${Number((ratio * 100).toPrecision(2))}%`;
}

export function visibleWidth(s: string): number {
  return [...s.replace(SGR, '')].length;
}

/**
 * Text wrapped at spaces to the width, continuation lines indented by `indent`. A number keeps its
 * unit (`60 s` never breaks), and runs of spaces inside a line are kept.
 */
function wrap(first: string, text: string, indent: number, cutLong = true): string[] {
  if (visibleWidth(first + text) <= WIDTH) return [first + text];
  const out: string[] = [];
  let line = first;
  let fresh = true;
  for (const word of text.split(/ (?!(?:ms|s|min|h)\b)/)) {
    if (fresh && word === '') continue;
    if (!fresh && visibleWidth(line) + 1 + visibleWidth(word) > WIDTH) {
      out.push(line.trimEnd());
      line = ' '.repeat(indent);
      fresh = true;
      if (word === '') continue;
    }
    line += (fresh ? '' : ' ') + word;
    fresh = false;
  }
  out.push(line.trimEnd());
  // A single word longer than the width (a long URL) is cut rather than overflow; a path to copy is not.
  if (!cutLong) return out;
  return out.map((l) => (visibleWidth(l) > WIDTH ? [...l.replace(SGR, '')].slice(0, WIDTH - 1).join('') + '…' : l));
}

function pad(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - visibleWidth(s)));
}

function cut(s: string, width: number): string {
  const chars = [...s];
  return chars.length <= width ? s : chars.slice(0, width - 1).join('') + '…';
}

export function renderSummary(record: RunRecord, options: SummaryOptions): string {
  const paint = (style: Style, s: string) => (options.color ? `\x1b[${ANSI[style]}m${s}\x1b[0m` : s);
  const mark = (met: boolean | null) =>
    met === true ? paint('green', '✓ met') : met === false ? paint('red', '✗ missed') : paint('dim', '– not measured');
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(...wrap(`  ${pad(label, 13)} `, text.trimEnd(), 16));

  const statusStyle: Style = record.status === 'passed' ? 'green' : record.status === 'aborted' ? 'yellow' : 'red';
  const head = `${paint(statusStyle, paint('bold', record.status.toUpperCase()))} (exit ${record.exitCode})  ${record.drill} / ${record.scenario}`;
  lines.push(...wrap('', `${head}  tier ${record.tier}, ${record.dataClass}, target ${record.target}`, 2));
  const v = verdict({
    objectives: record.objectives,
    rollbackFailed: record.actions.some((a) => a.rollback.status === 'failed'),
    abort: record.abort && record.abort.kind !== 'harness-error' ? { kind: record.abort.kind, message: record.abort.reason } : null,
    harnessError: record.abort?.kind === 'harness-error' ? { message: record.abort.reason } : null,
  });
  for (const r of v.reasons.slice(0, 4)) lines.push(...wrap('  ', r, 4));
  if (v.reasons.length > 4) lines.push(`  … and ${v.reasons.length - 4} more`);
  lines.push('');

  const { rto, rpo, verification } = record.objectives;
  // After an abort the same stop reason explains every unmeasured objective; it is printed once, above.
  const unmeasured = (reason: string | undefined, fallback: string) =>
    `${paint('dim', '–')} ${record.abort ? `not measured: the run stopped (${record.status})` : (reason ?? fallback)}`;
  if (rto.measuredSeconds !== null) {
    row('RTO', `${formatSeconds(rto.measuredSeconds)} measured vs ${formatSeconds(rto.targetSeconds)} target  ${mark(rto.met)}`);
  } else if (rto.met === false) {
    row('RTO', `not recovered vs ${formatSeconds(rto.targetSeconds)} target  ${mark(false)}  (${rto.reason ?? 'no reason given'})`);
  } else row('RTO', unmeasured(rto.reason, 'not measured'));

  if (rpo.measuredSeconds !== null) {
    const unknown = rpo.unknownWrites ?? 0;
    const writes = `${formatCount(rpo.lostWrites ?? 0)} lost, ${formatCount(unknown)} unknown write${unknown === 1 ? '' : 's'}`;
    row(
      'RPO',
      `${formatSeconds(rpo.measuredSeconds)} measured vs ${formatSeconds(rpo.targetSeconds)} target  ${mark(rpo.met)}  (${writes})`,
    );
  } else row('RPO', unmeasured(rpo.reason, 'not measured'));
  // The other data classes measured in the run (file storage, logs), each against its own target. A run
  // record from before they existed has no rpoClasses.
  for (const c of record.objectives.rpoClasses ?? []) {
    if (c.dataClass === record.dataClass) continue;
    const label = c.dataClass === 'file-storage' ? 'RPO files' : `RPO ${c.dataClass}`;
    if (c.measuredSeconds === null) row(label, unmeasured(c.reason, 'not measured'));
    else {
      const items = c.dataClass === 'logs' ? 'log line' : 'file';
      // Out of how many acknowledged, where the record says (run.json from before it did has only the lost).
      const of = c.acknowledged === undefined ? '' : ` of ${formatCount(c.acknowledged)}`;
      const counts = `${formatCount(c.lost ?? 0)}${of} lost, ${formatCount(c.unknown ?? 0)} unknown ${items}${c.unknown === 1 ? '' : 's'}`;
      row(label, `${formatSeconds(c.measuredSeconds)} measured vs ${formatSeconds(c.targetSeconds)} target  ${mark(c.met)}  (${counts})`);
    }
  }

  if (verification.met === null) row('Verification', unmeasured(verification.reason, 'not run'));
  else {
    const passed = verification.probes.filter((p) => p.ok).length;
    const failed = verification.probes.filter((p) => !p.ok).map((p) => `${p.name}: ${p.detail}`);
    const skipped = verification.skipped?.length ? `(${verification.skipped.map((s) => `${s.name}: skipped`).join('; ')})` : '';
    row(
      'Verification',
      [`${passed} of ${verification.probes.length} probes passed`, mark(verification.met), failed.join('; '), skipped]
        .filter(Boolean)
        .join('  '),
    );
  }

  const b = record.errorBudget;
  if (b.consumedRatio !== null && b.monthlyBudgetSeconds !== null && b.downtimeSeconds !== null) {
    row(
      'Error budget',
      `${formatSeconds(b.downtimeSeconds)} downtime = ${formatBudgetShare(b.consumedRatio)} of the ${formatSeconds(b.monthlyBudgetSeconds)} monthly budget`,
    );
  } else row('Error budget', `${paint('dim', '–')} ${b.reason ?? 'not computed'}`);
  lines.push('');

  lines.push(...sloTable(record, paint));

  const l = record.load;
  const p95 = l.p95Ms === null ? 'n/a' : formatMs(l.p95Ms);
  const availability = l.availability === null ? 'n/a' : formatPercent(l.availability);
  row(
    'Load',
    `${formatCount(l.scheduled)} scheduled, ${formatCount(l.ok)} ok, ${formatCount(l.errors)} ${l.errors === 1 ? 'error' : 'errors'}, ${formatCount(l.dropped)} dropped; availability ${availability}, p95 ${p95}`,
  );
  const rec = record.recovery;
  if (rec.downtimeSeconds !== null) {
    const n = rec.outageIntervalCount;
    const resolution = rec.resolutionMs === null ? 'unknown' : formatMs(rec.resolutionMs);
    row(
      'Outage',
      `${formatCount(n)} interval${n === 1 ? '' : 's'}, ${formatSeconds(rec.downtimeSeconds)} down (SLO window ${formatSeconds(rec.windowSeconds)}, resolution ${resolution})`,
    );
  }
  const w = record.window;
  if (w) {
    const where = w.inside
      ? `inside ${w.opens} to ${w.closes}`
      : `${paint('yellow', 'OUTSIDE the window')} (${w.policy})${w.override ? `, overridden: ${w.reason}` : ''}`;
    const notice = w.noticeGivenAt
      ? `notice given ${w.noticeGivenAt}${w.noticeInTime ? '' : paint('yellow', `, less than ${w.noticeRequired} ahead`)}`
      : paint('yellow', `no notice found (${w.noticeRequired} required)`);
    row('Window', `${where}; ${notice}`);
  }
  lines.push('');

  if (record.findings.length === 0) lines.push('  Findings      none');
  else {
    lines.push(`  Findings (${record.findings.length})`);
    for (const f of record.findings.slice(0, 8)) {
      const sev = f.severity === 'SEV1' || f.severity === 'SEV2' ? paint('red', f.severity) : paint('yellow', f.severity);
      lines.push(...wrap(`    ${sev}  `, f.title, 10));
      lines.push(...wrap('          ', paint('dim', f.detail), 10));
    }
    if (record.findings.length > 8) lines.push(`    … ${record.findings.length - 8} more in run.json`);
  }
  lines.push('');
  const classFiles = (record.objectives.rpoClasses ?? []).flatMap((c) =>
    c.dataClass === 'file-storage' ? ['files.tsv'] : c.dataClass === 'logs' ? ['logs.tsv'] : [],
  );
  const files = ['events.jsonl', 'metrics.jsonl', 'requests.tsv', ...(record.objectives.rpo.ledger ? ['writes.tsv'] : []), ...classFiles];
  lines.push(
    ...wrap(
      `  ${pad('Files', 13)} `,
      `${options.dir ?? `results/runs/${record.id}`}/run.json, with ${files.slice(0, -1).join(', ')} and ${files.at(-1)}`,
      16,
      false,
    ),
  );
  return lines.join('\n');
}

function sloTable(record: RunRecord, paint: (s: Style, t: string) => string): string[] {
  const phases = ['baseline', 'fault', 'recovery'] as const;
  const byName = new Map<string, Map<string, SloResult>>();
  for (const p of phases) {
    for (const s of record.phases[p]?.slo ?? []) {
      if (!byName.has(s.name)) byName.set(s.name, new Map());
      byName.get(s.name)!.set(p, s);
    }
  }
  for (const s of record.objectives.slo) {
    if (!byName.has(s.name)) byName.set(s.name, new Map());
    if (!byName.get(s.name)!.has(s.phase)) byName.get(s.name)!.set(s.phase, s);
  }
  if (byName.size === 0)
    return [`  SLOs          ${record.phases.run === null ? '– not judged: no load ran' : 'none set in the drill'}`, ''];
  const NAME = 34;
  const COL = 20;
  const out = [paint('dim', `  ${pad('SLO', NAME)}${phases.map((p) => pad(p, COL)).join('')}`.trimEnd())];
  for (const [name, cells] of byName) {
    const cols = phases.map((p) => {
      const s = cells.get(p);
      if (!s) return pad('', COL);
      const symbol = s.met === true ? '✓' : s.met === false ? '✗' : '–';
      const text = `${formatSloValue(s.threshold, s.measured)} ${symbol}`;
      return pad(paint(s.met === null ? 'dim' : s.met ? 'green' : 'red', text), COL);
    });
    out.push(`  ${pad(cut(name, NAME - 1), NAME)}${cols.join('')}`.trimEnd());
  }
  if (record.phases.fault) out.push(paint('dim', '  fault-phase SLOs make findings, not a failed run: the fault itself is judged by RTO'));
  out.push('');
  return out;
}

export interface ProgressInput {
  phase: string;
  /** Requests scheduled in the last second. */
  reqPerSec: number;
  p95Ms: number | null;
  /** Failed requests (errors and dropped) in the last second. */
  errors: number;
  elapsedMs: number;
}

/** The live TTY line: fixed-width fields so it does not jitter when redrawn every second. */
export function renderProgress(p: ProgressInput): string {
  const total = Math.max(0, Math.floor(p.elapsedMs / 1000));
  const clock = `${String(Math.floor(total / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
  const p95 = p.p95Ms === null ? 'n/a' : formatMs(p.p95Ms);
  const line = `  ${pad(`[${p.phase}]`, 14)} ${clock}  ${String(Math.round(p.reqPerSec)).padStart(6)} req/s  p95 ${p95.padStart(8)}  errors ${formatCount(p.errors)}`;
  return cut(line, WIDTH);
}
