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

// Two groups. Files that start no PostgreSQL, lab or load generator run two at a time: each takes its own
// freePort ports and temp folders, and most of their time is spent waiting on timers (the fake Kubernetes API's
// controller delays), so two share the CPU well. Everything else runs one file at a time: those tests start
// PostgreSQL clusters and drive load on a 2-core machine, and their timing assertions (outage length within
// 100 ms) do not survive another suite competing for the CPU.
const SHARED = [
  /^test\/unit\//,
  /^test\/integration\/(kube-api|kube-kubectl|kube-target-config|kube-adapter|kube-target|kube-rollback|kube-target-recover)\.test\.ts$/,
  /^test\/integration\/(blob-client|blob-download-faults|blob-progress|blob-transfer|load-templates)\.test\.ts$/,
];
// measure-recovery.test.ts times findRecovery against a plain scan of the same log in the same process, a
// ratio that another file sharing the CPU slows alike, so it no longer needs to run alone.
const shared = (f) => SHARED.some((r) => r.test(f));
// The crash-point matrix's rows (one lab each) also run two at a time, in a group of their own: a row is mostly
// CLI starts, probes and rollbacks, and asserts that every kill point recovers, never how fast. Alone they
// took 27 of the suite's 75 minutes (2026-12-04). Node 20 sorts the files it is given by name, so no order set here
// would hold: the split rows (region-loss) have halves of equal length, which the sorted order runs side by side.
const crashRow = (f) => f.startsWith('test/integration/crash-points/');
const groups = [
  { files: files.filter(shared), concurrency: 2 },
  { files: files.filter(crashRow), concurrency: 2 },
  { files: files.filter((f) => !shared(f) && !crashRow(f)), concurrency: 1 },
].filter((g) => g.files.length > 0);

// A TAP copy of each group goes to a file so the closing count below can add them up, with the browser tests.
const taps = [];
let nodeStatus = 0;
for (const [i, g] of groups.entries()) {
  const tap = join(tmpdir(), `drill-node-tests-${process.pid}-${i}.tap`);
  taps.push(tap);
  console.log(`\n# ${g.files.length} test file${g.files.length === 1 ? '' : 's'}, ${g.concurrency} at a time`);
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${g.concurrency}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
      ...g.files,
    ],
    { stdio: 'inherit' },
  );
  if (r.status !== 0 && nodeStatus === 0) nodeStatus = r.status ?? 1;
}

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
const count = (key) =>
  taps.reduce((sum, tap) => {
    try {
      return sum + Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(readFileSync(tap, 'utf8'))?.[1] ?? 0);
    } catch {
      return sum;
    }
  }, 0);
const nodePassed = count('pass');
const nodeFailed = count('fail') || (nodeStatus === 0 ? 0 : 1);
for (const tap of taps) rmSync(tap, { force: true });
console.log(`\n${nodePassed + browser.passed} passed, ${nodeFailed + browser.failed} failed`);
process.exit(nodeStatus !== 0 ? nodeStatus : browser.status !== 0 ? browser.status : 0);
