import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { z } from 'zod';
import { stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import type { Topology } from '../../lib/adapters/postgres/failover/types.ts';
import { isProcessUnder } from '../../lib/util/proc.ts';
import { judgeReplayLag, judgeStreaming, replayLagBelow, standbyStreaming } from '../../lib/scenario/probes/replication.ts';
import { validateDrillText } from '../../lib/config/load.ts';
import { runDrill } from '../../lib/engine/drill.ts';
import { formatEvent } from '../../lib/cli/ui.ts';
import { ExitCode } from '../../lib/errors.ts';
import { createLabDatabase } from '../../lib/targets/lab/database.ts';
import { labDown, labUp, type LabInfo } from '../../lib/lab/index.ts';
import { action, defineScenario, type ScenarioContext, type ScenarioDefinition } from '../../lib/scenario/define.ts';
import { makeTempDir, type TempDir } from '../support/tmp.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';

const node = (name: string, role: 'primary' | 'standby' | 'unknown') => ({ name, host: '127.0.0.1', port: 1, role });
const standby = (name: string, streaming: boolean, replayLagMs: number | null, role: 'standby' | 'unknown' = 'standby') => ({
  ...node(name, role),
  replication: { streaming, replayLagMs, lagBytes: replayLagMs === null ? null : replayLagMs * 10, mode: 'async' as const },
});

describe('replication judgement (pure)', () => {
  test('streaming needs a single primary and enough streaming standbys', () => {
    assert.equal(judgeStreaming({ primary: node('a', 'primary'), standbys: [standby('b', true, 0)] }).ok, true);
    const down = judgeStreaming({ primary: node('a', 'primary'), standbys: [standby('b', false, null, 'unknown')] });
    assert.equal(down.ok, false);
    assert.match(down.detail, /b down or not a standby/);
    assert.equal(judgeStreaming({ primary: node('a', 'primary'), standbys: [] }).ok, false);
    assert.equal(judgeStreaming({ primary: null, standbys: [standby('b', true, 0)] }).ok, false);
    assert.equal(
      judgeStreaming({ primary: node('a', 'primary'), standbys: [standby('b', true, 0), standby('c', false, null)] }, 2).ok,
      false,
    );
  });

  test('replay lag: every streaming standby within the limit; unknown lag fails', () => {
    const topo = (...s: Topology['standbys']): Topology => ({ primary: node('a', 'primary'), standbys: s });
    assert.equal(judgeReplayLag(topo(standby('b', true, 120)), 5000).ok, true);
    const late = judgeReplayLag(topo(standby('b', true, 6000)), 5000);
    assert.equal(late.ok, false);
    assert.match(late.detail, /replay lag 6000 ms.*limit 5000 ms: b over it/);
    const unknown = judgeReplayLag(topo(standby('b', true, null)), 5000);
    assert.equal(unknown.ok, false, 'unknown lag is not a small lag');
    assert.match(unknown.detail, /b streaming \(\w+\), replay lag unknown.*limit 5000 ms: b not measurable$/);
    assert.match(
      judgeReplayLag(topo(standby('b', true, 6000), standby('c', true, null)), 5000).detail,
      /limit 5000 ms: b over it, c not measurable$/,
    );
    assert.equal(
      judgeReplayLag(topo(standby('b', false, null, 'unknown')), 5000).ok,
      false,
      'no streaming standby, nothing within the limit',
    );
  });
});

describe('replication probes on the lab pair', { timeout: 240_000 }, () => {
  let tmp: TempDir;
  let dir: string;
  let info: LabInfo;
  let ctx: ScenarioContext<unknown>;

  before(async () => {
    tmp = await makeTempDir('replprobe');
    dir = join(tmp.path, 'lab');
    info = await labUp({ dir, replicas: 1 });
    ctx = { adapters: { database: createLabDatabase(info) }, signal: AbortSignal.timeout(200_000) } as unknown as ScenarioContext<unknown>;
  });

  after(async () => {
    try {
      await labDown({ dir });
    } finally {
      for (const n of info?.db.nodes ?? []) if (n.pid && (await isProcessUnder(n.pid, dir))) process.kill(n.pid, 'SIGKILL');
      await tmp.remove();
    }
  });

  test('a streaming, caught-up standby passes both probes', async () => {
    const s = await standbyStreaming().check(ctx);
    assert.equal(s.ok, true, s.detail);
    assert.match(s.detail, /primary n1; 1\/1 streaming standby needed: n2 streaming \(async\)/);
    const l = await replayLagBelow(5000).check(ctx);
    assert.equal(l.ok, true, l.detail);
  });

  test('a standby that falls behind (walsender stalled under writes) fails the lag probe, and passes once caught up', async (t) => {
    const primary = new pg.Client({ host: '127.0.0.1', port: info.db.port, user: 'postgres', database: 'orders' });
    await primary.connect();
    const [sender] = (await primary.query<{ pid: number }>("SELECT pid FROM pg_stat_replication WHERE application_name = 'n2'")).rows;
    assert.ok(sender, 'a walsender for n2');
    await primary.query('CREATE TABLE IF NOT EXISTS lag_check (id serial PRIMARY KEY, at timestamptz DEFAULT now())');
    // The walsender is a child of our own lab's postmaster (checked above by its application_name): stall it as FIELD-NOTES does.
    process.kill(sender.pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      // Commits keep coming, so there is WAL the standby has not replayed, and its last replayed commit ages.
      while (performance.now() - t0 < 800) {
        await primary.query('INSERT INTO lag_check DEFAULT VALUES');
        await new Promise((r) => setTimeout(r, 20));
      }
      // 300 ms: with the walsender stopped the standby cannot catch up, so the probe waits its whole 1000 ms
      // sample and reports at least that (and the last replayed commit is 800 ms old): over 300 by far.
      const l = await replayLagBelow(300).check(ctx);
      t.diagnostic(`stalled: ${l.detail}`);
      assert.equal(l.ok, false, l.detail);
      assert.match(l.detail, /n2 over it/);
    } finally {
      process.kill(sender.pid, 'SIGCONT');
    }
    // Caught up within 10 s of SIGCONT: under a second of WAL to send and replay; the bound only ends the wait.
    const deadline = performance.now() + 10_000;
    let l = await replayLagBelow(300).check(ctx);
    while (!l.ok && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      l = await replayLagBelow(300).check(ctx);
    }
    await primary.end();
    t.diagnostic(`resumed: ${l.detail}`);
    assert.equal(l.ok, true, l.detail);
  });

  test('WAL without commits (an idle primary) is not read as lag: the lag is how long the standby takes to catch up', async (t) => {
    const primary = new pg.Client({ host: '127.0.0.1', port: info.db.port, user: 'postgres', database: 'orders' });
    await primary.connect();
    try {
      // The last commit grows old; then WAL keeps coming with no commit in it (non-transactional messages).
      await new Promise((r) => setTimeout(r, 1500));
      let writing = true;
      const emitter = (async () => {
        while (writing) await primary.query("SELECT pg_logical_emit_message(false, 'drill', repeat('x', 2000))");
      })();
      const seen: string[] = [];
      let behind = 0;
      let samples = 0;
      const t0 = performance.now();
      try {
        // Sample until the probe itself caught the standby with WAL left to replay (the case under test), at
        // least 8 times and for at most 15 s: how often a sample lands while the standby is behind depends on
        // how the two processes are scheduled, so a fixed 8 samples could see it caught up every time on a
        // fast machine, or behind every time on a slow one.
        while (samples < 8 || (behind === 0 && performance.now() - t0 < 15_000)) {
          const l = await replayLagBelow(1000).check(ctx);
          samples++;
          const bytes = Number(/, (\d+) bytes behind/.exec(l.detail)?.[1] ?? 0);
          if (bytes > 0) behind++;
          seen.push(`${bytes}B/${/replay lag (\d+) ms/.exec(l.detail)?.[1] ?? '?'}ms`);
          // 1000 ms: the last commit is over 1.5 s old, so a lag read as "now - last replayed commit" fails it,
          // while the time to replay what is left takes a few ms (plus a connection to the standby, tens of
          // ms on a loaded machine).
          assert.equal(l.ok, true, `sample ${samples}: ${l.detail}`);
        }
      } finally {
        writing = false;
        await emitter;
      }
      t.diagnostic(`${samples} samples in ${(performance.now() - t0).toFixed(0)} ms (bytes behind / replay lag): ${seen.join(', ')}`);
      assert.ok(behind > 0, `some samples caught the standby with WAL left to replay: ${seen.join(', ')}`);
    } finally {
      await primary.end();
    }
  });

  test('a stopped standby fails both probes', async () => {
    await stopCluster(info.db.nodes[1]!.dataDir, 'fast');
    const s = await standbyStreaming().check(ctx);
    assert.equal(s.ok, false);
    assert.match(s.detail, /n2 down or not a standby/);
    const l = await replayLagBelow(5000).check(ctx);
    assert.equal(l.ok, false);
  });

  test('with the standby down, a drill whose steady state needs it exits 3 and injects nothing', async () => {
    let injected = false;
    const scenario = defineScenario({
      name: 'needs-standby',
      description: 'test scenario: steady state is the replication probes',
      requires: ['database', 'load'],
      params: z.object({ maxReplayLagMs: z.number().default(5000) }).strict(),
      steadyState: [standbyStreaming(), replayLagBelow((c) => (c.params as { maxReplayLagMs: number }).maxReplayLagMs)],
      actions: [
        action({
          name: 'would fail over',
          description: 'marks that it ran',
          select: async () => null,
          describeTargets: () => [],
          run: async () => {
            injected = true;
          },
          rollback: { none: 'test action changes nothing' },
        }),
      ],
      recovery: { description: 'none' },
      verify: [],
    }) as ScenarioDefinition;
    const catalog = new Map([[scenario.name, scenario]]);
    const yaml = `name: standby-gate\nkind: adhoc\ntarget: { kind: lab, replicas: 1, labDir: ${JSON.stringify(dir)}, database: { replication: async, provider: pg-promote } }\nload: { rate: 20, baseline: 1s, cooldown: 0s }\nscenarios:\n  - scenario: needs-standby\n`;
    const loaded = validateDrillText('standby-gate.yaml', yaml, catalog, { capabilitiesOf });
    assert.ok('drill' in loaded, JSON.stringify(loaded));
    const lines: string[] = [];
    const out = await runDrill(loaded.drill, catalog, {
      resultsDir: join(tmp.path, 'results'),
      only: [],
      signal: AbortSignal.timeout(120_000),
      hooks: {
        event: (e) => {
          const l = formatEvent(e);
          if (l !== null) lines.push(l);
        },
      },
    });
    assert.equal(out.exitCode, ExitCode.steadyStateNotMet, lines.join('\n'));
    assert.equal(injected, false, 'nothing was injected');
    assert.ok(
      lines.some((l) => /n2 down or not a standby/.test(l)) || JSON.stringify(out.runs).includes('n2 down or not a standby'),
      'the reason names the standby',
    );
  });
});
