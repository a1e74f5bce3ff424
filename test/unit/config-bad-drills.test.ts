import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProblem, loadDrill, validateDrillText } from '../../lib/config/load.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';

// Each malformed drill must produce exactly the problems listed for it, positions included: the
// messages are the user interface of `drill validate`, so a changed word is a reviewed change.
const DIR = fileURLToPath(new URL('../fixtures/bad-drills/', import.meta.url));
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<string, string[]>;
const fixtures = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('every fixture has expectations and every expectation a fixture', () => {
  assert.ok(fixtures.length >= 24, `only ${fixtures.length} fixtures`);
  assert.deepEqual(Object.keys(expected).sort(), fixtures);
});

for (const name of fixtures) {
  test(`bad drill ${name}`, () => {
    const r = validateDrillText(name, readFileSync(join(DIR, name), 'utf8'), testCatalog(), { capabilitiesOf });
    assert.ok('problems' in r, `${name} was accepted`);
    const got = r.problems.map((p) => formatProblem(p).slice(name.length + 1));
    assert.deepEqual(got, expected[name]);
    for (const p of r.problems) assert.equal(p.file, name);
  });
}

test('problems come sorted by position', () => {
  for (const name of fixtures) {
    const r = validateDrillText(name, readFileSync(join(DIR, name), 'utf8'), testCatalog(), { capabilitiesOf });
    if (!('problems' in r)) continue;
    const order = r.problems.map((p) => p.line * 10_000 + p.col);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      name,
    );
  }
});

test('loadDrill reads a fixture from disk with the path as given', async () => {
  const file = join(DIR, '12-count-above-replicas.yaml');
  const r = await loadDrill(file, testCatalog(), { capabilitiesOf });
  assert.ok('problems' in r);
  assert.deepEqual(r.problems, [
    { file, line: 9, col: 14, path: 'scenarios[0].params.count', message: 'cannot kill 5 replicas: the lab target runs 3' },
  ]);
});

test('a missing file is a problem at 1:1, not a throw', async () => {
  const file = join(DIR, 'no-such-drill.yaml');
  const r = await loadDrill(file, testCatalog(), { capabilitiesOf });
  assert.deepEqual(r, { problems: [{ file, line: 1, col: 1, path: '', message: 'cannot read the drill file: no such file' }] });
});

test('a directory is a problem at 1:1, not a throw', async () => {
  const r = await loadDrill(DIR, testCatalog(), { capabilitiesOf });
  assert.deepEqual(r, { problems: [{ file: DIR, line: 1, col: 1, path: '', message: 'cannot read the drill file: it is a directory' }] });
});
