import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown } from '../../lib/lab/index.ts';
import { readEvents, REPO, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

/**
 * The checkout as a user may have it: inside a folder only its owner can enter (mktemp -d makes it 0700; a
 * home directory under /root is the same). PostgreSQL, Patroni and etcd run as `postgres`, so a tool that
 * kept our working directory failed there: pg_rewind "could not change directory", Patroni members stuck
 * in `starting`. The working tree (committed or not) is copied into such a folder and run from there.
 */
const closed = mkdtempSync(join(tmpdir(), 'drill-closed-'));
const checkout = join(closed, 'drill');
const scratch = scratchDir('closed-lab');
after(async () => {
  await labDown({ dir: join(scratch, 'lab') }).catch(() => undefined);
  rmSync(closed, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

function copyCheckout(): void {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  // A worktree's node_modules is often a symlink, which `node_modules/` in .gitignore does not match.
  const files = listed
    .split('\0')
    .filter((f) => f !== '' && f !== 'node_modules')
    .join('\0');
  execFileSync('mkdir', ['-p', checkout]);
  // Deleted-but-tracked files are listed too: tar skips what is gone (--ignore-failed-read).
  execFileSync('bash', ['-c', `tar --null --ignore-failed-read -cf - -T - 2>/dev/null | tar -xf - -C '${checkout}'`], {
    cwd: REPO,
    input: files,
  });
  symlinkSync(join(REPO, 'node_modules'), join(checkout, 'node_modules'));
}

/**
 * Every process running as postgres whose working directory lies in the closed folder, sampled every 100 ms.
 * PostgreSQL 15.18 only logs its failed chdir back there and carries on, so this sees what its logs do not.
 */
function watchServerCwds(): { stop(): string[] } {
  const found = new Set<string>();
  const postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const timer = setInterval(() => {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
        if (uid !== postgresUid || !readlinkSync(`/proc/${pid}/cwd`).startsWith(closed)) continue;
        found.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 160));
      } catch {
        // gone meanwhile
      }
    }
  }, 100);
  return { stop: () => (clearInterval(timer), [...found]) };
}

function runFrom(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  // The test runner's marker would make a nested `node --test` report to us instead of printing.
  const { NODE_TEST_CONTEXT: _, ...ours } = process.env;
  const child = spawn(process.execPath, args, {
    cwd: checkout,
    env: { ...ours, CI: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

test('the checkout sits in a folder postgres cannot enter', () => {
  copyCheckout();
  assert.equal(statSync(closed).mode & 0o777, 0o700);
  assert.throws(() => execFileSync('runuser', ['-u', 'postgres', '--', 'test', '-x', closed]), 'postgres must not be able to enter it');
});

test('from that checkout the lab drill fails over the primary and rejoins it with pg_rewind', { timeout: 300_000 }, async (t) => {
  const results = join(scratch, 'results');
  // The quarterly drill's failover entry: the lab's db-failover at 50 requests a second, which a 2-core machine
  // under other load still serves within its SLOs (drills/lab.yaml's 200 a second does not, at load average 16).
  const cwds = watchServerCwds();
  const r = await runFrom(['lib/cli/drill.mjs', 'run', 'drills/quarterly.yaml', '--scenario', 'fail-over-primary', '--results', results], {
    DRILL_LAB_DIR: join(scratch, 'lab'),
  });
  const closedCwds = cwds.stop();
  assert.equal(r.code, 0, r.out.slice(-3000));
  assert.deepEqual(closedCwds, [], 'no PostgreSQL tool ran in the closed checkout');
  const [run] = runFolders(results);
  const rollbacks = readEvents(run!).filter((e) => e.type === 'rollback.done');
  const detail = rollbacks.map((e) => String(e.detail)).join('\n');
  t.diagnostic(detail);
  assert.match(detail, /rewound with pg_rewind/, 'the old primary rejoined through pg_rewind');
  assert.doesNotMatch(detail, /pg_basebackup/, 'no fallback to a base backup');
  // PostgreSQL 15.18 only logs the failed chdir back to our directory and carries on; its logs still show
  // whether any server binary started in a folder postgres cannot enter.
  const labLogs = readdirSync(join(scratch, 'lab', 'pg'))
    .map((n) => join(scratch, 'lab', 'pg', n, 'postgres.log'))
    .filter((f) => existsSync(f));
  assert.ok(labLogs.length >= 2, `server logs of both nodes: ${labLogs.join(', ')}`);
  for (const f of [join(run!, 'events.jsonl'), ...labLogs])
    assert.doesNotMatch(readFileSync(f, 'utf8'), /could not change directory/, `${f} shows a server binary started in our directory`);
});

test('from that checkout the Patroni provider fails over and the old leader rejoins through pg_rewind', { timeout: 300_000 }, async (t) => {
  const cwds = watchServerCwds();
  const r = await runFrom(
    [
      '--import',
      'tsx',
      '--test',
      '--test-name-pattern',
      'the leader dies|rejoin: the old leader comes back through pg_rewind',
      'test/integration/patroni.test.ts',
    ],
    {},
  );
  t.diagnostic(
    r.out
      .split('\n')
      .filter((l) => /^\s*(ok|not ok|# (pass|fail))/.test(l))
      .join('\n'),
  );
  const closedCwds = cwds.stop();
  assert.equal(r.code, 0, r.out.slice(-3000));
  assert.deepEqual(closedCwds, [], 'neither Patroni nor a PostgreSQL process it ran worked in the closed checkout');
  assert.match(r.out, /# pass 2/, 'both the failover and the pg_rewind rejoin ran and passed');
  assert.match(r.out, /# fail 0/);
});
