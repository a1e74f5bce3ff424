// Node 20's test runner finds no files on its own when given none, and sh has no recursive glob:
// list the test files here so `npm test` always runs every one of them.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
// A TAP copy goes to a file so the closing count below can add the browser tests to node's.
const tap = join(tmpdir(), `drill-node-tests-${process.pid}.tap`);
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files], {
  stdio: 'inherit',
});

// ---- Browser tests (Playwright Test in Debian's Chromium): only in a full run, after the node tests. ----
let browser = { status: 0, passed: 0, failed: 0 };
if (only.length === 0) {
  const report = 'test-results/browser/results.json';
  rmSync(report, { force: true });
  console.log('\n# browser tests: npx playwright test -c test/browser/playwright.config.ts');
  const b = spawnSync('npx', ['playwright', 'test', '-c', 'test/browser/playwright.config.ts'], { stdio: 'inherit' });
  let stats = { expected: 0, unexpected: 0, flaky: 0 };
  try {
    stats = JSON.parse(readFileSync(report, 'utf8')).stats;
  } catch {
    stats.unexpected = 1; // no report: Playwright did not run at all, which is a failure
  }
  browser = { status: b.status ?? 1, passed: stats.expected + stats.flaky, failed: stats.unexpected || (b.status === 0 ? 0 : 1) };
}
const count = (key) => {
  try {
    return Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(readFileSync(tap, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};
const nodePassed = count('pass');
const nodeFailed = count('fail') || (r.status === 0 ? 0 : 1);
rmSync(tap, { force: true });
console.log(`\n${nodePassed + browser.passed} passed, ${nodeFailed + browser.failed} failed`);
process.exit(r.status !== 0 ? (r.status ?? 1) : browser.status !== 0 ? browser.status : 0);
