// The global front of a two-region lab on real processes (PostgreSQL pair, two Azurites, the lab daemon, the
// secondary's compute, the built-in load generator): the load's URL is the global front, on the port lab.json
// keeps; switched between two serving regions under load it loses no request and each region answers its share;
// pointed at a region whose front is dead it answers 502 at once naming the region; killed, lab up starts it
// again on the same port; lab down leaves no process of either region running.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { globalFrontStatus, switchGlobalFront } from '../../lib/lab/regions/global-front.ts';
import { primaryRegionParts } from '../../lib/lab/regions/region-loss.ts';
import { secondaryComputeStatus, startSecondaryCompute, stopSecondaryCompute } from '../../lib/lab/regions/secondary-compute.ts';
import { readConfig, readDaemonState } from '../../lib/lab/state.ts';
import { LoadGenerator } from '../../lib/load/generator.ts';
import type { LoadProfile } from '../../lib/load/types.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { Outcome } from '../../lib/measure/request-log.ts';
import { regionComputePaths } from '../../lib/lab/paths.ts';
import { procState, signal, waitGone } from '../../lib/util/proc.ts';
import { forgetConfiguredBlobStorage, labFixture } from '../support/lab.ts';

/** Alive as /proc says, read here rather than through the code under test: the state letter after the last ')'. */
async function runsInProc(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

describe('the global front of a two-region lab', { timeout: 240_000 }, () => {
  const lab = labFixture('lab-region-front');
  let frontPort = 0;

  test('lab up puts the global front before the primary region, on the port lab.json keeps', async () => {
    forgetConfiguredBlobStorage();
    const info = await labUp({ dir: lab.dir, replicas: 2, regions: 2, replicationLagMs: 5000 });
    const gf = await globalFrontStatus(lab.dir);
    assert.ok(gf?.alive, JSON.stringify(gf));
    lab.seen.add(gf.pid);
    frontPort = gf.port;
    assert.equal((await readConfig(labPaths(lab.dir).config))?.globalFrontPort, gf.port);
    assert.equal(info.serviceUrl, `http://127.0.0.1:${gf.port}`);
    assert.deepEqual(info.regions, {
      active: 'primary',
      globalFrontUrl: info.serviceUrl,
      primaryFrontUrl: `http://127.0.0.1:${(await readDaemonState(labPaths(lab.dir).daemonState))!.ports.front}`,
      secondaryFrontUrl: null,
    });
    assert.equal(gf.upstreamPort, Number(new URL(info.regions!.primaryFrontUrl!).port));
    const res = await fetch(`${info.serviceUrl}/orders?limit=1`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-drill-region'), 'primary');
    await res.arrayBuffer();
    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.regions?.active, 'primary');
    assert.ok(s.components.some((c) => c.name === 'global-front' && c.alive && c.port === gf.port));
    assert.deepEqual(
      s.problems.filter((p) => p.part === 'global-front'),
      [],
    );
  });

  test('switched between two serving regions under load, it loses no request', async () => {
    const info = await labUp({ dir: lab.dir, replicas: 2, regions: 2 });
    // The secondary's compute on the primary's own database: two regions that both serve, to switch between.
    const sec = await startSecondaryCompute(lab.dir, { dbPort: info.db.port, replicas: 2 });
    lab.seen.add(sec.daemonPid);
    const primaryFront = Number(new URL(info.regions!.primaryFrontUrl!).port);
    const traffic = (url: string): LoadProfile => ({
      url,
      rate: 60,
      requests: [
        { method: 'POST', path: '/orders', body: { item: 'switch', token: '{{token}}', seq: '{{seq}}' }, weight: 1 },
        { method: 'GET', path: '/orders?limit=5', weight: 1 },
      ],
      timeoutMs: 3000,
      maxInFlight: 200,
      connections: 8,
      attachments: { share: 0.2 },
    });
    // Both regions warmed with the same traffic first (a replica's first write and upload open its pools): the
    // test is about the switch, and a cold region on a starved machine stalls its first seconds whatever routes to it.
    for (const port of [sec.frontPort, primaryFront]) {
      const warm = new LoadGenerator(traffic(`http://127.0.0.1:${port}`), createClock());
      warm.start(1500);
      await warm.stop();
    }
    const gen = new LoadGenerator(traffic(info.serviceUrl), createClock());
    const loadStart = performance.now();
    gen.start(9000);
    const switches: number[] = [];
    const switchedAt: string[] = [];
    const at = async (ms: number, region: 'primary' | 'secondary', port: number) => {
      await new Promise((r) => setTimeout(r, ms));
      const t0 = performance.now();
      await switchGlobalFront(lab.dir, region, port);
      switches.push(performance.now() - t0);
      switchedAt.push(`${region} at ${((t0 - loadStart) / 1000).toFixed(2)} s`);
    };
    // The generator warms its client first; the switches fall inside the scheduled load.
    await at(4000, 'secondary', sec.frontPort);
    await at(2500, 'primary', primaryFront);
    await at(1500, 'secondary', sec.frontPort);
    await at(1000, 'primary', primaryFront);
    await new Promise((r) => setTimeout(r, 2500));
    await gen.stop();
    const log = gen.log;
    const counts = new Map<number, number>();
    for (let i = 0; i < log.count; i++) counts.set(log.outcome[i]!, (counts.get(log.outcome[i]!) ?? 0) + 1);
    assert.ok(log.count >= 400, `${log.count} requests scheduled`);
    // On a failure, where the failures sat in the run (outcome counts per second of schedule) and when it switched.
    const perSecond = new Map<number, Map<number, number>>();
    for (let i = 0; i < log.count; i++) {
      const sec = Math.floor(log.scheduledMs[i]! / 1000);
      const m = perSecond.get(sec) ?? new Map<number, number>();
      m.set(log.outcome[i]!, (m.get(log.outcome[i]!) ?? 0) + 1);
      perSecond.set(sec, m);
    }
    assert.deepEqual(
      [...counts],
      [[Outcome.ok, log.count]],
      `every request answered ok: ${JSON.stringify([...counts])}; per second ${JSON.stringify([...perSecond].map(([k, m]) => [k, [...m]]))}; switched to ${switchedAt.join(', ')}`,
    );
    // Each region answered its share: the logs ledger names the replica of every ledgered answer.
    const replicas = new Set(gen.classLedgers().logs.map((l) => l.replica));
    assert.ok(
      [...replicas].some((r) => r?.startsWith('orders-secondary-')),
      [...replicas].join(' '),
    );
    assert.ok(
      [...replicas].some((r) => r && !r.startsWith('orders-secondary-')),
      [...replicas].join(' '),
    );
    const files = gen.classLedgers().files;
    assert.ok(files.length > 0 && files.every((f) => f.outcome === 'ok'), 'every upload through the global front acknowledged');
    process.stdout.write(
      `# ${log.count} requests through 4 switches, none lost; switch call took ${switches.map((m) => m.toFixed(1)).join(', ')} ms\n`,
    );
  });

  test('pointed at a region whose front is dead, it answers 502 at once naming the region', async () => {
    const c = await secondaryComputeStatus(lab.dir);
    assert.ok(c.up && c.frontPort !== null);
    const deadPort = c.frontPort;
    await stopSecondaryCompute(lab.dir);
    await switchGlobalFront(lab.dir, 'secondary', deadPort);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const res = await fetch(`http://127.0.0.1:${frontPort}/orders?limit=1`, { signal: AbortSignal.timeout(5000) });
      times.push(performance.now() - t0);
      assert.equal(res.status, 502);
      const body = (await res.json()) as { error: string; region: string };
      assert.equal(body.region, 'secondary');
      assert.match(body.error, /secondary region's front .* cannot be reached/);
    }
    assert.ok(Math.max(...times) < 250, `502 in ${times.map((t) => t.toFixed(1)).join(', ')} ms`);
    process.stdout.write(`# 502 from a dead upstream in ${times.map((t) => t.toFixed(1)).join(', ')} ms\n`);
    // A front left on the secondary is the lab serving from it: with no compute there, lab up refuses rather than
    // restart the primary under it, and says what to do.
    await assert.rejects(labUp({ dir: lab.dir }), /serving from the secondary region .*compute is not running/s);
  });

  test('killed, the global front comes back on the same port with lab up; lab down leaves no process running', async () => {
    const p = labPaths(lab.dir);
    await switchGlobalFront(lab.dir, 'primary', (await readDaemonState(p.daemonState))!.ports.front);
    const before = (await globalFrontStatus(lab.dir))!;
    signal(before.pid, 'SIGKILL');
    assert.ok(await waitGone(before.pid, 3000));
    const info = await labUp({ dir: lab.dir });
    const after = (await globalFrontStatus(lab.dir))!;
    lab.seen.add(after.pid);
    assert.notEqual(after.pid, before.pid);
    assert.equal(after.port, frontPort);
    assert.equal(info.serviceUrl, `http://127.0.0.1:${frontPort}`);
    const res = await fetch(`${info.serviceUrl}/orders?limit=1`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();

    const sec = await startSecondaryCompute(lab.dir, { dbPort: info.db.port, replicas: 1 });
    const secState = (await readDaemonState(regionComputePaths(lab.dir, 'secondary').daemonState))!;
    const pids = [
      after.pid,
      sec.daemonPid,
      ...secState.replicas.map((r) => r.pid),
      ...(secState.logShipper?.pid ? [secState.logShipper.pid] : []),
      ...(await primaryRegionParts(lab.dir)).filter((x) => x.alive).map((x) => x.pid!),
    ];
    for (const pid of pids) lab.seen.add(pid);
    assert.ok(pids.length >= 12, `${pids.length} processes`);
    for (const pid of pids) assert.ok(await runsInProc(pid), `pid ${pid} runs before lab down`);
    const down = await labDown({ dir: lab.dir });
    const names = down.stopped.map((s) => s.name);
    assert.ok(names.includes('global-front') && names.includes('secondary daemon'), names.join(', '));
    const left = [];
    for (const pid of pids) if (await runsInProc(pid)) left.push(pid);
    assert.deepEqual(left, [], 'no process of either region left running');
    assert.equal(await procState(after.pid), 'dead');
  });
});
