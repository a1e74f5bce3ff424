// Node 20's test runner finds no files on its own when given none, and sh has no recursive glob:
// list the test files here so `npm test` always runs every one of them.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name === 'bench' || name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : find('test');
if (files.length === 0) {
  console.error('no test files found under test/');
  process.exit(1);
}
// One file at a time: integration tests start PostgreSQL clusters and drive load on a 2-core machine,
// and timing assertions (outage length within 100 ms) do not survive another suite competing for the CPU.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
