import type { RunRecord } from './run-record.ts';
import { formatSeconds, formatSloValue } from '../score/format.ts';

/**
 * JUnit XML for CI: one testsuite per run, one testcase per objective (RTO, RPO, each SLO,
 * verification), plus a `rollback` case when something was rolled back and a `run` case when the run
 * was aborted or broke, so neither hides behind a suite of skipped objectives.
 */

// Characters XML 1.0 cannot carry at all, even escaped (lone surrogates included).
const INVALID_XML = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function escapeXml(s: string): string {
  return s
    .replace(INVALID_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

type Outcome = { kind: 'pass' } | { kind: 'failure' | 'error'; message: string; body?: string } | { kind: 'skipped'; message: string };

interface Case {
  name: string;
  time?: number;
  outcome: Outcome;
}

function attrs(a: Record<string, string | number>): string {
  return Object.entries(a)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join('');
}

function renderCase(classname: string, c: Case): string {
  const head = `    <testcase${attrs({ classname, name: c.name, ...(c.time !== undefined ? { time: c.time } : {}) })}`;
  const o = c.outcome;
  if (o.kind === 'pass') return `${head}/>`;
  if (o.kind === 'skipped') return `${head}>\n      <skipped${attrs({ message: o.message })}/>\n    </testcase>`;
  const body = o.body ? `${escapeXml(o.body)}` : '';
  return `${head}>\n      <${o.kind}${attrs({ message: o.message, type: o.kind === 'failure' ? 'objective-missed' : 'run-error' })}>${body}</${o.kind}>\n    </testcase>`;
}

function versus(measured: string, target: string): string {
  return `measured ${measured} vs target ${target}`;
}

function casesOf(r: RunRecord): Case[] {
  const cases: Case[] = [];
  const { rto, rpo, slo, verification } = r.objectives;

  const rtoTarget = formatSeconds(rto.targetSeconds);
  if (rto.met === null) cases.push({ name: 'RTO', outcome: { kind: 'skipped', message: rto.reason ?? 'not measured' } });
  else {
    const measured = rto.measuredSeconds === null ? 'none (not recovered)' : formatSeconds(rto.measuredSeconds);
    cases.push({
      name: 'RTO',
      ...(rto.measuredSeconds !== null ? { time: rto.measuredSeconds } : {}),
      outcome: rto.met
        ? { kind: 'pass' }
        : { kind: 'failure', message: versus(measured, rtoTarget), body: [rto.reason, rto.method].filter(Boolean).join('\n') },
    });
  }

  if (rpo.met === null) cases.push({ name: 'RPO', outcome: { kind: 'skipped', message: rpo.reason ?? 'not measured' } });
  else {
    const measured = rpo.measuredSeconds === null ? 'n/a' : formatSeconds(rpo.measuredSeconds);
    const body = `${rpo.lostWrites ?? 0} acknowledged writes lost, ${rpo.unknownWrites ?? 0} unknown\n${rpo.method ?? ''}`;
    cases.push({
      name: 'RPO',
      outcome: rpo.met ? { kind: 'pass' } : { kind: 'failure', message: versus(measured, formatSeconds(rpo.targetSeconds)), body },
    });
  }

  // The other data classes (the entry's own is the RPO case above), each its own case: a CI view shows which class missed.
  for (const c of r.objectives.rpoClasses ?? []) {
    if (c.dataClass === r.dataClass) continue;
    const name = `RPO ${c.dataClass}`;
    if (c.met === null) cases.push({ name, outcome: { kind: 'skipped', message: c.reason ?? 'not measured' } });
    else {
      const measured = c.measuredSeconds === null ? 'n/a' : formatSeconds(c.measuredSeconds);
      const body = `${c.lost ?? 0} acknowledged ${c.dataClass === 'logs' ? 'log lines' : 'files'} lost, ${c.unknown ?? 0} unknown\n${c.method ?? ''}`;
      cases.push({
        name,
        outcome: c.met ? { kind: 'pass' } : { kind: 'failure', message: versus(measured, formatSeconds(c.targetSeconds)), body },
      });
    }
  }

  for (const s of slo) {
    const name = `SLO ${s.phase}: ${s.name}`;
    if (s.met === null) cases.push({ name, outcome: { kind: 'skipped', message: s.reason ?? 'not measured' } });
    else
      cases.push({
        name,
        outcome: s.met ? { kind: 'pass' } : { kind: 'failure', message: versus(formatSloValue(s.threshold, s.measured), s.threshold) },
      });
  }

  if (verification.met === null)
    cases.push({ name: 'verification', outcome: { kind: 'skipped', message: verification.reason ?? 'not run' } });
  else {
    const passed = verification.probes.filter((p) => p.ok).length;
    const failed = verification.probes.filter((p) => !p.ok).map((p) => `${p.name}: ${p.detail}`);
    cases.push({
      name: 'verification',
      outcome: verification.met
        ? { kind: 'pass' }
        : {
            kind: 'failure',
            message: versus(`${passed} of ${verification.probes.length} probes passed`, 'all probes pass'),
            body: failed.join('\n'),
          },
    });
  }

  const rolled = r.actions.filter((a) => a.rollback.status === 'done' || a.rollback.status === 'failed');
  if (rolled.length > 0) {
    const failed = rolled.filter((a) => a.rollback.status === 'failed');
    cases.push({
      name: 'rollback',
      outcome:
        failed.length === 0
          ? { kind: 'pass' }
          : {
              kind: 'error',
              message: `rollback failed: ${failed.map((a) => a.name).join(', ')}`,
              body: failed.map((a) => `${a.name}: ${a.rollback.error ?? ''}`).join('\n'),
            },
    });
  }

  if (r.abort) cases.push({ name: 'run', outcome: { kind: 'error', message: `${r.status} (exit ${r.exitCode}): ${r.abort.reason}` } });
  return cases;
}

export function renderJUnit(records: readonly RunRecord[]): string {
  const suites: string[] = [];
  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0, time: 0 };
  for (const r of records) {
    const cases = casesOf(r);
    const count = (k: Outcome['kind']) => cases.filter((c) => c.outcome.kind === k).length;
    const time = Math.max(0, (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000) || 0;
    const s = { tests: cases.length, failures: count('failure'), errors: count('error'), skipped: count('skipped'), time };
    for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += s[k];
    const classname = `drill.${r.drill}.${r.scenario}`;
    const properties = [
      ['run.id', r.id],
      ['status', r.status],
      ['exitCode', String(r.exitCode)],
      ['tier', r.tier],
      ['dataClass', r.dataClass],
      ['target', r.target],
    ]
      .map(([name, value]) => `      <property${attrs({ name: name!, value: value! })}/>`)
      .join('\n');
    suites.push(
      [
        `  <testsuite${attrs({ name: `${r.drill} / ${r.scenario}`, id: r.id, tests: s.tests, failures: s.failures, errors: s.errors, skipped: s.skipped, timestamp: r.startedAt, time: s.time })}>`,
        `    <properties>\n${properties}\n    </properties>`,
        ...cases.map((c) => renderCase(classname, c)),
        '  </testsuite>',
      ].join('\n'),
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: 'drill', ...totals })}>`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}
