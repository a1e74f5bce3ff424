import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { childrenOf, cmdlineOf, signal } from '../../lib/util/proc.ts';
import { labStatus, labUp, type LabInfo, type LabProblem, type LabStatus } from '../../lib/lab/index.ts';
import { drillCli } from '../support/cli.ts';
import { labFixture } from '../support/lab.ts';

/** `drill lab status --json` as a user runs it: its exit code and what it lists. */
async function statusCli(dir: string): Promise<{ code: number | null; status: LabStatus; human: string }> {
  const [json, human] = await Promise.all([
    drillCli(['lab', 'status', '--dir', dir, '--json']).done,
    drillCli(['lab', 'status', '--dir', dir]).done,
  ]);
  assert.equal(human.code, json.code, 'the same exit code with and without --json');
  return { code: json.code, status: JSON.parse(json.stdout) as LabStatus, human: human.stdout };
}

const parts = (s: LabStatus) => s.problems.map((p: LabProblem) => p.part);

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await fn())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The walsender feeding the standby (the primary also has one for the WAL archiver's pg_receivewal). */
async function walsenderOf(primaryPid: number, primaryPort: number, standby = 'n2'): Promise<number> {
  const c = new pg.Client({ host: '127.0.0.1', port: primaryPort, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_replication WHERE application_name = $1', [standby]);
    const pid = r.rows[0]?.pid;
    if (pid !== undefined && (await childrenOf(primaryPid)).includes(pid) && (await cmdlineOf(pid))?.[0]?.includes('walsender')) return pid;
  } finally {
    await c.end();
  }
  throw new Error(`postmaster ${primaryPid} has no walsender for ${standby}`);
}

describe('drill lab status tells the truth', { timeout: 240_000 }, () => {
  const lab = labFixture('labst');
  let info: LabInfo;

  test('a healthy lab: up, no problem, exit 0', async () => {
    info = await labUp({ dir: lab.dir, replicas: 2 });
    const { code, status, human } = await statusCli(lab.dir);
    assert.deepEqual(status.problems, []);
    assert.equal(status.up, true);
    assert.equal(code, 0);
    assert.match(human, /: up, healthy/);
  });

  test('a stopped walsender is listed (the standby no longer shows as streaming), exit 1; SIGCONT: exit 0', async () => {
    const sender = await walsenderOf(info.pids.postgres!, info.db.port);
    lab.seen.add(sender);
    signal(sender, 'SIGSTOP');
    try {
      const { code, status, human } = await statusCli(lab.dir);
      assert.equal(code, 1, human);
      assert.equal(status.up, true);
      assert.deepEqual(status.problems, [
        {
          part: 'walsender',
          detail: `walsender pid ${sender} on n1 (to n2) is stopped (state T): WAL does not reach n2; \`kill -CONT ${sender}\` resumes it`,
        },
      ]);
      assert.doesNotMatch(human, /standby +n2 .*streaming/, 'the standby is not reported as streaming');
      assert.match(human, /standby +n2 .*STALLED: its walsender pid \d+ is stopped/);
    } finally {
      signal(sender, 'SIGCONT');
    }
    const after = await statusCli(lab.dir);
    assert.deepEqual(after.status.problems, []);
    assert.equal(after.code, 0);
  });

  test('a killed replica is listed until its replacement is ready; a stopped one until it answers again', async () => {
    const victim = (await labStatus({ dir: lab.dir })).replicas[0]!;
    signal(victim.pid!, 'SIGKILL');
    // The daemon replaces it at once; the replacement needs a second before it is ready.
    await until('status to list the killed replica', async () => parts(await labStatus({ dir: lab.dir })).includes('replicas'), 2000);
    await until('the replacement ready', async () => (await labStatus({ dir: lab.dir })).problems.length === 0, 20_000);

    const stopped = (await labStatus({ dir: lab.dir })).replicas[0]!;
    lab.seen.add(stopped.pid!);
    signal(stopped.pid!, 'SIGSTOP');
    try {
      await until(
        'the stopped replica to fail its readiness probes',
        async () => parts(await labStatus({ dir: lab.dir })).includes('replicas'),
        10_000,
      );
      const { code, status } = await statusCli(lab.dir);
      assert.equal(code, 1);
      assert.deepEqual(parts(status), ['replicas']);
      assert.match(status.problems[0]!.detail, new RegExp(`1 of 2 replicas ready \\(not ready: ${stopped.name}\\)`));
    } finally {
      signal(stopped.pid!, 'SIGCONT');
    }
    await until('the replica ready again', async () => (await labStatus({ dir: lab.dir })).problems.length === 0, 10_000);
  });

  test('a dead standby, a dead Azurite and a dead primary are each listed while the lab stays up; `drill lab up` repairs all', async () => {
    const before = await labStatus({ dir: lab.dir });
    const standby = before.database!.nodes.find((n) => n.role === 'standby')!;
    signal(standby.pid!, 'SIGKILL');
    let s = await statusCli(lab.dir);
    assert.equal(s.code, 1);
    assert.ok(
      s.status.problems.some((p) => p.part === 'standby' && p.detail === `standby n2 (PostgreSQL on port ${standby.port}) is not running`),
      JSON.stringify(s.status.problems),
    );

    const azurite = before.components.find((c) => c.name === 'azurite')!;
    signal(azurite.pid!, 'SIGKILL');
    await until('Azurite gone', async () => parts(await labStatus({ dir: lab.dir })).includes('azurite'), 5000);

    signal(info.pids.postgres!, 'SIGKILL');
    s = await statusCli(lab.dir);
    assert.equal(s.code, 1);
    assert.equal(s.status.up, true, 'the daemon runs: the lab is up, and broken');
    assert.equal(s.status.stale, false);
    assert.match(s.human, /: up, \d+ problems/);
    assert.doesNotMatch(s.human, /down/);
    assert.ok(
      s.status.problems.some(
        (p) => p.part === 'primary' && /^n1 \(PostgreSQL on port \d+\) is not running: no node takes writes$/.test(p.detail),
      ),
      JSON.stringify(s.status.problems),
    );
    for (const part of ['standby', 'azurite', 'replicas'])
      assert.ok(parts(s.status).includes(part as LabProblem['part']), `${part} listed`);

    const repaired = await drillCli(['lab', 'up', '--dir', lab.dir, '--replicas', '2']).done;
    assert.equal(repaired.code, 0, repaired.stderr);
    const after = await statusCli(lab.dir);
    assert.deepEqual(after.status.problems, []);
    assert.equal(after.code, 0);
    info = (await labStatus({ dir: lab.dir })).info!;
  });

  test('a dead daemon is down (stale state found), exit 1', async () => {
    signal(info.pids.daemon, 'SIGKILL');
    const { code, status, human } = await statusCli(lab.dir);
    assert.equal(code, 1);
    assert.equal(status.up, false);
    assert.equal(status.stale, true);
    assert.match(human, /: down \(stale state found/);
    assert.ok(parts(status).includes('daemon'));
  });
});

describe('drill lab status on a Patroni lab', { timeout: 240_000 }, () => {
  const lab = labFixture('labstp');

  test('a Patroni member whose process died is listed, exit 1', async () => {
    await labUp({ dir: lab.dir, replicas: 1, provider: 'patroni' });
    const healthy = await statusCli(lab.dir);
    assert.deepEqual(healthy.status.problems, []);
    assert.equal(healthy.code, 0);

    const member = healthy.status.components.find((c) => c.name === 'patroni' && c.alive)!;
    lab.seen.add(member.pid!);
    signal(member.pid!, 'SIGKILL');
    const { code, status } = await statusCli(lab.dir);
    assert.equal(code, 1);
    assert.equal(status.up, true);
    assert.ok(
      status.problems.some((p) => p.part === 'patroni' && p.detail === `patroni pid ${member.pid} (port ${member.port}) is not running`),
      JSON.stringify(status.problems),
    );
  });
});
