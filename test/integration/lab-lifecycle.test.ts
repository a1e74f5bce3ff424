import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { childrenOf, procState } from '../../lib/util/proc.ts';
import { UserError } from '../../lib/errors.ts';
import { labDown, labPaths, labStatus, labUp, type LabInfo } from '../../lib/lab/index.ts';
import { assertServerCanReach } from '../../lib/lab/reach.ts';
import { labFixture, livePids } from '../support/lab.ts';

/** Every PID the lab runs right now: daemon, replicas, postmaster and its children. */
async function labPids(dir: string): Promise<number[]> {
  const s = await labStatus({ dir });
  const pids = new Set<number>();
  for (const c of s.components) if (c.pid) pids.add(c.pid);
  for (const r of s.replicas) if (r.pid) pids.add(r.pid);
  for (const pg of s.components.filter((c) => c.name.startsWith('postgres') && c.pid))
    for (const c of await childrenOf(pg.pid!)) pids.add(c);
  return [...pids];
}

describe('lab lifecycle', { timeout: 240_000 }, () => {
  const lab = labFixture('lablc');
  const seen = lab.seen;
  let info: LabInfo;

  test('down stops every process of the lab and keeps its data', async (t) => {
    let t0 = performance.now();
    info = await labUp({ dir: lab.dir, replicas: 3 });
    t.diagnostic(`labUp on a fresh dir took ${(performance.now() - t0).toFixed(0)} ms`);
    const pids = await labPids(lab.dir);
    pids.forEach((p) => seen.add(p));
    assert.ok(pids.length >= 3 + 1 + 2 + 6, `daemon, 3 replicas, two postmasters and their helpers: ${pids.length}`);
    // A backend of a connection that just closed may exit between the listing and this check; the lab's own
    // processes (daemon, replicas, postmasters) may not.
    const up = await labStatus({ dir: lab.dir });
    const core = [...new Set([...up.components.map((c) => c.pid!), ...up.replicas.map((r) => r.pid!)])];
    assert.equal(core.length, 1 + 3 + 2 + 1 + 1 + 1, 'daemon, 3 replicas, two postmasters, Azurite, the WAL archiver, the log shipper');
    assert.deepEqual(await livePids(core), core);

    t0 = performance.now();
    const down = await labDown({ dir: lab.dir });
    t.diagnostic(`labDown took ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(down.wasStale, false);
    assert.deepEqual(
      new Set(down.stopped.map((s) => s.name)),
      new Set(['daemon', 'postgres:n1', 'postgres:n2', 'azurite']),
      'the daemon stopped its own replicas; both PostgreSQL nodes and Azurite were stopped',
    );
    assert.deepEqual(await livePids(pids), [], 'no process of the lab is left');
    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.up, false);
    assert.equal(s.stale, false);
    assert.equal(existsSync(labPaths(lab.dir).daemonState), false);
    assert.equal(existsSync(join(info.db.dataDir, 'PG_VERSION')), true, 'data kept for the next up');
  });

  test('up on an existing dir reuses the cluster', async (t) => {
    const t0 = performance.now();
    const again = await labUp({ dir: lab.dir, replicas: 3 });
    t.diagnostic(`labUp on an existing dir took ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(again.alreadyRunning, false);
    assert.equal(again.db.port, info.db.port, 'same PostgreSQL port as before');
    (await labPids(lab.dir)).forEach((p) => seen.add(p));
    const r = await fetch(`${again.serviceUrl}/orders?limit=1`);
    assert.equal(r.status, 200);
    info = again;
  });

  test('after a harness crash (daemon SIGKILLed), status says stale and down cleans replicas, PostgreSQL and state', async () => {
    const pids = await labPids(lab.dir);
    pids.forEach((p) => seen.add(p));
    const beforeKill = await labStatus({ dir: lab.dir });
    const replicaPids = beforeKill.replicas.map((r) => r.pid!);
    const archiverPid = beforeKill.archive?.pid;
    assert.ok(archiverPid, 'the WAL archiver runs');
    const shipperPid = beforeKill.logShipping?.pid;
    assert.ok(shipperPid, 'the log shipper runs');
    process.kill(info.pids.daemon, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));

    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.up, false);
    assert.equal(s.stale, true);
    assert.ok(
      s.problems.some((p) => p.detail.includes(`daemon pid ${info.pids.daemon}`)),
      s.problems.map((p) => p.detail).join('; '),
    );
    assert.deepEqual(await livePids(replicaPids), replicaPids, 'replicas outlive their daemon, as pods outlive a kubelet');

    const down = await labDown({ dir: lab.dir });
    assert.equal(down.wasStale, true);
    assert.deepEqual(
      new Set(down.stopped.map((x) => x.pid)),
      // The WAL archiver and the log shipper outlive their daemon too; down stops them by the PIDs daemon.json recorded.
      new Set([...replicaPids, ...info.db.nodes.map((n) => n.pid!), info.azurite!.pid, archiverPid, shipperPid]),
    );
    assert.deepEqual(await livePids(pids), [], 'every process of the lab is gone');
    const after = await labStatus({ dir: lab.dir });
    assert.equal(after.up, false);
    assert.equal(after.stale, false);
  });

  test('a stale state file whose PIDs now belong to other processes is cleaned without signalling them', async () => {
    // A process of ours that is not the lab's, standing in for an unrelated process that got a recorded PID.
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const p = labPaths(lab.dir);
      await writeFile(
        p.daemonState,
        JSON.stringify({
          pid: stranger.pid,
          startedAt: new Date().toISOString(),
          ports: { front: 1, control: 1, dbEndpoint: 1 },
          primaryPort: info.db.port,
          desired: 3,
          replicas: [{ name: 'orders-dead-1', pid: stranger.pid, port: 1 }],
          updatedAt: new Date().toISOString(),
        }),
      );
      const s = await labStatus({ dir: lab.dir });
      assert.equal(s.up, false);
      assert.equal(s.stale, true);
      const down = await labDown({ dir: lab.dir });
      assert.deepEqual(down.stopped, []);
      assert.equal(await procState(stranger.pid!), 'alive', 'the unrelated process was left alone');
      assert.equal(existsSync(p.daemonState), false);
      assert.equal((await labStatus({ dir: lab.dir })).stale, false);
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  test('up after a crash replaces the leftovers and serves again', async () => {
    info = await labUp({ dir: lab.dir, replicas: 2 });
    const old = (await labStatus({ dir: lab.dir })).replicas.map((r) => r.pid!);
    old.forEach((p) => seen.add(p));
    process.kill(info.pids.daemon, 'SIGKILL');
    const again = await labUp({ dir: lab.dir, replicas: 2 });
    (await labPids(lab.dir)).forEach((p) => seen.add(p));
    assert.equal(again.alreadyRunning, false);
    assert.notEqual(again.pids.daemon, info.pids.daemon);
    assert.equal(again.pids.postgres, info.pids.postgres, 'a healthy PostgreSQL is kept');
    assert.deepEqual(await livePids(old), [], 'orphaned replicas were stopped');
    const served = await fetch(`${again.serviceUrl}/orders?limit=1`).then(
      (r) => r.status,
      async (e: Error) =>
        `${e.message} (${(e.cause as Error)?.message}); status ${JSON.stringify((await labStatus({ dir: lab.dir })).components)}; daemon.log:\n${(await readFile(join(lab.dir, 'logs', 'daemon.log'), 'utf8')).split('\n').slice(-20).join('\n')}`,
    );
    assert.equal(served, 200);
    await labDown({ dir: lab.dir });
  });

  test('a lab dir the postgres user cannot reach is refused up front, naming the directory and the fix', async (t) => {
    const closed = await mkdtemp(join(tmpdir(), 'drill-closed-')); // mode 0700, owned by root
    try {
      const target = join(closed, 'lab');
      if (process.getuid?.() !== 0) {
        // Without root PostgreSQL runs as us and can reach whatever we can: there is nothing to refuse. The check must
        // then let the directory through, but the refusal this test is named for is not exercised: say so, as a skip.
        await assert.doesNotReject(assertServerCanReach(target));
        t.skip('needs root: PostgreSQL runs as the postgres user only under root, so only then can a lab dir be out of its reach');
        return;
      }
      const err = await labUp({ dir: target, replicas: 1 }).then(
        () => assert.fail('labUp should refuse'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof UserError, String(err));
      assert.match(err.message, new RegExp(`${target}.*not reachable by the postgres user.*cannot enter ${closed}`));
      assert.match(err.next ?? '', new RegExp(`chmod o\\+x ${closed}`));
      assert.equal(existsSync(target), false, 'nothing was created');
    } finally {
      await rm(closed, { recursive: true, force: true });
    }
  });

  test("a lab dir too long for PostgreSQL's unix socket is refused before anything is created", async () => {
    const long = join(lab.root, 'x'.repeat(90));
    await assert.rejects(
      labUp({ dir: long, replicas: 1 }),
      (e: unknown) => e instanceof UserError && /longer than the 107 bytes/.test(e.message),
    );
    assert.equal(existsSync(long), false);
  });

  test('down on a directory that holds no lab does nothing', async () => {
    const empty = join(lab.root, 'not-a-lab');
    await mkdir(empty);
    assert.deepEqual(await labDown({ dir: empty }), { dir: empty, stopped: [], wasStale: false });
    assert.deepEqual(await labDown({ dir: join(lab.root, 'missing') }), { dir: join(lab.root, 'missing'), stopped: [], wasStale: false });
    assert.equal(existsSync(join(lab.root, 'missing')), false);
    assert.equal((await labStatus({ dir: join(lab.root, 'missing') })).up, false);
  });
});
