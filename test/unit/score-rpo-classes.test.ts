import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFiles, checkLogs, type FileLedgerEntry, type LogLedgerEntry } from '../../lib/measure/data-classes.ts';
import { renderJUnit } from '../../lib/record/junit.ts';
import { summarizeRun } from '../../lib/record/quarterly/rollup.ts';
import { renderRunHtml } from '../../lib/record/render/html.ts';
import { runMarkdown } from '../../lib/record/render/markdown.ts';
import { buildRunRecord } from '../../lib/record/run-record.ts';
import { renderSummary } from '../../lib/record/summary.ts';
import { sampleRunInput } from '../support/record-sample.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunFacts } from '../../lib/engine/facts.ts';
import { finalizeRun } from '../../lib/engine/finalize.ts';
import { parseFilesTsv, parseLogsTsv } from '../../lib/load/class-ledgers.ts';

// The sample run's fault is at 10 s; files and log lines acknowledged every 100 ms from 0 to 9.9 s.
const FAULT_MS = 10_000;
const files: FileLedgerEntry[] = Array.from({ length: 100 }, (_, i) => ({
  seq: i,
  name: `orders/f${i}/attachment`,
  sha256: `sha${i}`,
  sentMs: i * 100,
  ackMs: i * 100 + 3,
  outcome: 'ok',
}));
const logs: LogLedgerEntry[] = Array.from({ length: 100 }, (_, i) => ({
  seq: i,
  token: `t${i}`,
  replica: 'orders-1',
  sentMs: i * 100,
  ackMs: i * 100 + 3,
  outcome: 'ok',
}));

function run(logsShippedBelow: number, logsTargetMs?: number) {
  const input = sampleRunInput();
  if (logsTargetMs !== undefined) input.drill.policy.rpoMs.logs = logsTargetMs;
  const stored = new Map(files.map((f) => [f.name, f.sha256]));
  const shipped = new Set(logs.filter((l) => l.seq < logsShippedBelow).map((l) => l.token));
  return buildRunRecord({ ...input, rpoClasses: [checkFiles(files, stored, FAULT_MS), checkLogs(logs, shipped, FAULT_MS)] });
}

test('every class measured is in objectives.rpoClasses, each against its own target', () => {
  const r = run(90);
  const byClass = Object.fromEntries(r.objectives.rpoClasses.map((c) => [c.dataClass, c]));
  assert.deepEqual(Object.keys(byClass).sort(), ['file-storage', 'logs']);
  assert.deepEqual(
    [
      byClass['file-storage']!.lost,
      byClass['file-storage']!.measuredSeconds,
      byClass['file-storage']!.targetSeconds,
      byClass['file-storage']!.met,
    ],
    [0, 0, 3600, true],
  );
  // Lines 90..99 never shipped: RPO from line 89's ack (8903 ms) to the fault.
  assert.deepEqual(
    [byClass.logs!.lost, byClass.logs!.measuredSeconds, byClass.logs!.targetSeconds, byClass.logs!.met],
    [10, 1.097, 86_400, true],
  );
  assert.equal(r.exitCode, 0, JSON.stringify(r.findings));
  // Lines lost inside the 24 h target: a note, not a failure.
  assert.deepEqual(
    r.findings.filter((f) => f.objective === 'rpo:logs').map((f) => [f.severity, f.title]),
    [['SEV4', '10 acknowledged log lines lost (within RPO, logs)']],
  );
});

test('a class over its target fails the run (exit 1) and says which class; summary and JUnit show it', () => {
  const r = run(50, 2000);
  assert.equal(r.exitCode, 1);
  assert.equal(r.status, 'failed');
  assert.deepEqual(
    r.findings.filter((f) => f.objective === 'rpo:logs').map((f) => [f.severity, f.title]),
    [['SEV1', 'Data loss beyond RPO (logs): 50 acknowledged log lines lost']],
  );
  const text = renderSummary(r, { color: false });
  assert.ok(text.includes('  RPO logs      5.1 s measured vs 2 s target  ✗ missed  (50 of 100 lost, 0 unknown log lines)'), text);
  assert.ok(text.includes('  RPO files     0 s measured vs 1 h target  ✓ met  (0 of 100 lost, 0 unknown files)'), text);
  assert.match(text, /logs\.tsv/);
  const xml = renderJUnit([r]);
  assert.match(xml, /<testcase [^>]*name="RPO logs"[^>]*>\s*<failure/);
  assert.match(xml, /<testcase [^>]*name="RPO file-storage"[^>]*\/>/);
});

test('a class not measured is absent, never a guess; one that could not be read back carries its reason', () => {
  const none = buildRunRecord(sampleRunInput());
  assert.deepEqual(
    none.objectives.rpoClasses.map((c) => c.dataClass),
    none.objectives.rpo.measuredSeconds === null && none.objectives.rpo.method === null ? [] : [none.dataClass],
  );
  const r = buildRunRecord({ ...sampleRunInput(), rpoClasses: [{ dataClass: 'logs', reason: "the lab's Azurite did not answer" }] });
  const logsClass = r.objectives.rpoClasses.find((c) => c.dataClass === 'logs')!;
  assert.deepEqual([logsClass.measuredSeconds, logsClass.met, logsClass.reason], [null, null, "the lab's Azurite did not answer"]);
  assert.equal(r.exitCode, 0);
  assert.match(renderSummary(r, { color: false }), /RPO logs\s+– the lab's Azurite did not answer/);
});

test("Markdown and HTML show every class measured beside the entry's own RPO", () => {
  const r = run(90);
  const summary = summarizeRun({
    file: 'runs/x/run.json',
    digest: 'd',
    record: r,
    context: { drillKind: null, drillFile: null, owner: null, participants: [], approver: null, service: null },
    series: { resolutionSeconds: 1, points: [] },
  });
  assert.deepEqual(
    summary.otherRpoClasses.map((c) => c.dataClass),
    ['file-storage', 'logs'],
  );
  const md = runMarkdown(summary);
  assert.match(md, /\| RPO logs \| 24 h \| 1\.1 s \| met \| log ledger: [^|]*; lost 10, unknown 0 \|/);
  assert.match(md, /\| RPO file-storage \| 1 h \| 0 s \| met \| file ledger: [^|]*; lost 0, unknown 0 \|/);
  const html = renderRunHtml(summary, []);
  assert.ok(html.includes('<td>RPO logs</td>'), 'HTML has a logs RPO row');
  assert.ok(html.includes('run.otherRpoClasses.1.measuredSeconds'), 'the logs figure is traced to its field');
});

test('a finalized run writes files.tsv and logs.tsv beside writes.tsv, and run.json carries rpoClasses', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'drill-classes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sample = sampleRunInput();
  const shipped = new Set(logs.filter((l) => l.seq < 90).map((l) => l.token));
  const facts: RunFacts = {
    ...sample,
    dir,
    drill: sample.drill as RunFacts['drill'],
    entry: sample.entry as RunFacts['entry'],
    steadyState: [],
    actions: sample.actions.map((a, index) => ({ ...a, index })),
    rpo: null,
    skippedChecks: [],
    abort: null,
    load: { ...sample.load!, seconds: [], classes: { files, logs } },
    rpoClasses: [checkLogs(logs, shipped, FAULT_MS)],
  };
  const { record } = finalizeRun(facts);
  assert.deepEqual(parseFilesTsv(readFileSync(join(dir, 'files.tsv'), 'utf8')), files);
  assert.deepEqual(parseLogsTsv(readFileSync(join(dir, 'logs.tsv'), 'utf8')), logs);
  const onDisk = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  assert.deepEqual(onDisk.objectives.rpoClasses, record.objectives.rpoClasses);
  assert.deepEqual(
    onDisk.objectives.rpoClasses.map((c: { dataClass: string; lost: number }) => [c.dataClass, c.lost]),
    [['logs', 10]],
  );
});
