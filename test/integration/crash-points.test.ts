import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../support/cli.ts';
import {
  CRASH_DRILLS,
  type JournalEvent,
  type KillPointDensity,
  killPointDensity,
  killPoints,
  labScenarios,
} from '../support/crash-points.ts';

/** The crash-point matrix's rows are the files in test/integration/crash-points/ (see test/support/crash-matrix.ts). */
const ROWS = join(REPO, 'test', 'integration', 'crash-points');

test('every scenario the lab can run has a row in the crash-point matrix', async () => {
  assert.deepEqual(new Set(CRASH_DRILLS.map((d) => d.scenario)), new Set(await labScenarios()));
});

test('every row of the crash-point matrix has a test file that runs it, and every part of a split row is there', async () => {
  const called = new Map<string, Set<string>>();
  for (const f of (await readdir(ROWS)).filter((n) => n.endsWith('.test.ts'))) {
    const text = await readFile(join(ROWS, f), 'utf8');
    for (const m of text.matchAll(/crashMatrixRow\('([^']+)'(?:, \{ part: (\d+), of: (\d+) \})?\)/g)) {
      const parts = called.get(m[1]!) ?? new Set<string>();
      parts.add(`${m[2] ?? 1}/${m[3] ?? 1}`);
      called.set(m[1]!, parts);
    }
  }
  for (const d of CRASH_DRILLS) {
    const parts = [...(called.get(d.label) ?? [])];
    assert.ok(parts.length > 0, `no file under test/integration/crash-points/ runs the row ${d.label}`);
    const of = Number(parts[0]!.split('/')[1]);
    assert.deepEqual(new Set(parts), new Set(Array.from({ length: of }, (_, i) => `${i + 1}/${of}`)), `the parts of ${d.label}`);
  }
  assert.deepEqual(
    [...called.keys()].filter((l) => !CRASH_DRILLS.some((d) => d.label === l)),
    [],
    'rows no crash drill defines',
  );
});

test('the matrix kills at the steps of a journal: intents, dones, rollback starts and the ends of each stretch of log lines; or only before each action and rollback', () => {
  // The shape of the region-loss drill's journal (2026-12-05), shortened: probes, one action with one log line,
  // one with a stretch of four, then the rollbacks.
  const journal: JournalEvent[] = [
    { type: 'run.start' },
    { type: 'probe', name: 'front serves' },
    { type: 'probe', name: 'load writes' },
    { type: 'action.intent', name: 'lose' },
    { type: 'log', message: 'primary region lost' },
    { type: 'action.done', name: 'lose' },
    { type: 'action.intent', name: 'restore' },
    { type: 'log', message: 'base backup found' },
    { type: 'log', message: 'download 4.12 s' },
    { type: 'log', message: 'replay 3.10 s' },
    { type: 'log', message: 'restored' },
    { type: 'action.done', name: 'restore' },
    { type: 'probe', name: 'served from the secondary' },
    { type: 'probe', name: 'ledger read back' },
    { type: 'rpo.measured' },
    { type: 'rollback.none', name: 'restore' },
    { type: 'rollback.start', name: 'lose' },
    { type: 'rollback.done', name: 'lose' },
    { type: 'run.end' },
  ];
  const lines = (d: KillPointDensity) => killPoints(journal, d).map((p) => p.line);
  assert.deepEqual(lines('steps'), [1, 4, 5, 7, 8, 11, 12, 17]);
  assert.deepEqual(killPoints(journal, 'steps')[5], { line: 11, event: 'log: restored', spec: 'log#5' });
  // Line 6, the first action's done, is left out: line 7 holds the same done and the next intent.
  assert.deepEqual(lines('intents'), [4, 7, 17]);
  // `lines` drops only the inside of a stretch of read-only lines (here the ledger's probe, between two others).
  assert.deepEqual(lines('lines'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19]);
  assert.equal(lines('every-line').length, journal.length);
  assert.equal(killPointDensity({}), 'steps');
  assert.equal(killPointDensity({}, 'intents'), 'intents', "a row's own density when the variable is unset");
  assert.equal(killPointDensity({ DRILL_CRASH_POINTS: 'lines' }, 'intents'), 'lines', 'the variable wins over the row');
  assert.throws(() => killPointDensity({ DRILL_CRASH_POINTS: 'all' }), /expected intents, steps, lines, every-line/);
});
