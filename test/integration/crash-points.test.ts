import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../support/cli.ts';
import { CRASH_DRILLS, labScenarios } from '../support/crash-points.ts';

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
