// The region-loss drill with failback: true through `drill run` on the real two-region lab (PostgreSQL pair, two
// Azurites, the replicator, the global front, the service replicas and the open-model load). The runbook recovers
// in the secondary; once that recovery is on record (the SLOs held for the window, as the run judges it) the primary
// region is rebuilt from the secondary and the global front switched back. Checked here, independently of the
// run's own figures: the order of the marks (recovered before the failback began), every write and file the
// secondary acknowledged is in the primary afterwards (read with SQL and the SDK), the lost writes are exactly the
// ones the primary's database lacks, the primary's WAL archive continues on the new timeline without a hole, the
// standby streams from the failed-back primary, and nothing of the secondary runs.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv } from '../../lib/adapters/blob/index.ts';
import { isRunning } from '../../lib/adapters/postgres/cluster.ts';
import { readWalArchiveState } from '../../lib/adapters/postgres/backup/wal-state.ts';
import { LAB_FILES_CONTAINER, labBlobEnv, stopLabAzurite } from '../../lib/lab/azurite.ts';
import { labDown, labStatus } from '../../lib/lab/index.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { globalFrontStatus } from '../../lib/lab/regions/global-front.ts';
import { secondaryComputeStatus } from '../../lib/lab/regions/secondary-compute.ts';
import { secondaryPgPaths } from '../../lib/lab/regions/secondary-restore.ts';
import { readConfig } from '../../lib/lab/state.ts';
import { parseFilesTsv } from '../../lib/load/class-ledgers.ts';
import { parseWritesTsv } from '../../lib/load/ledger.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { forgetConfiguredBlobStorage } from '../support/lab.ts';
import { keptLabCopy } from '../support/lab-copy.ts';
import { upRegionLabInTurn, writeRegionDrill } from '../support/region-drill.ts';
import { sqlRows } from '../support/sql.ts';
import { scratchDir } from '../support/tmp.ts';

forgetConfiguredBlobStorage();
const dirs: string[] = [];
const labsUp: string[] = [];
after(async () => {
  for (const dir of labsUp) {
    await stopLabAzurite(dir).catch(() => undefined);
    await labDown({ dir }).catch(() => undefined);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const record = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
const markMs = (rec: { marks: { name: string; ms: number }[] }, name: string) => rec.marks.find((m) => m.name === name)?.ms;

// One folder the tests take in turn, each from the same kept lab (upRegionLabInTurn).
const lab = scratchDir('lab-rl-fb');
dirs.push(lab, keptLabCopy(lab));
labsUp.push(lab);

async function failbackLab(name: string): Promise<{ lab: string; results: string; drill: string }> {
  const results = scratchDir(`results-rl-fb-${name}`);
  dirs.push(results);
  const drill = join(results, 'drill.yaml');
  const o = { name: `failback-${name}`, failback: true, cooldownS: 3 };
  writeRegionDrill(drill, o);
  await upRegionLabInTurn(lab, o);
  return { lab, results, drill };
}

/** The primary answers through the global front, and nothing of the secondary runs: where every cut-short failback must end. */
async function servedByPrimaryOnly(lab: string): Promise<void> {
  const gf = (await globalFrontStatus(lab))!;
  assert.equal(gf.active, 'primary');
  const res = await fetch(`http://127.0.0.1:${gf.port}/orders?limit=1`);
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-drill-region'), 'primary');
  assert.equal((await secondaryComputeStatus(lab)).daemonPid, null, 'no secondary compute');
  assert.equal(await isRunning(secondaryPgPaths(lab).dataDir), false, 'no secondary database');
  assert.ok(!existsSync(join(lab, 'secondary', 'failback.json')), 'the failback is finished');
}

/** Until the run's journal holds the failback's log line for `step`. */
const afterFailbackStep = (runDir: () => string | undefined, step: string) =>
  waitFor(
    `the failback's ${step} step`,
    () => {
      const d = runDir();
      return (
        d &&
        existsSync(join(d, 'events.jsonl')) &&
        readEvents(d).some((e) => e.type === 'log' && String(e.message).startsWith(`failback: ${step} `)) &&
        d
      );
    },
    180_000,
  );

describe('drill run region-loss with failback', { timeout: 900_000 }, () => {
  test('recovered in the secondary, then failed back: nothing the secondary acknowledged is lost, the archive goes on, the primary serves', async (t) => {
    const { lab, results, drill } = await failbackLab('whole');
    const r = await drillCli(['run', drill, '--results', results], { DRILL_LAB_DIR: lab }).done;
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}\n${r.stdout}${r.stderr}`);
    const [runDir] = runFolders(results);
    const rec = record(runDir!);

    // The recovery in the secondary is on record before the failback touches anything, and the way back in order.
    const order = [
      'region-lost',
      'front-switched',
      'recovered',
      'failback-started',
      'failback-storage',
      'failback-writes-stopped',
      'failback-stop-secondary',
      'failback-wal',
      'failback-database',
      'failback-start',
      'failback-switch',
      'failback-recovered',
    ];
    const at = order.map((m) => markMs(rec, m));
    assert.ok(
      at.every((x) => x !== undefined),
      `marks: ${rec.marks.map((m: { name: string; ms: number }) => `${m.name}@${m.ms}`).join(', ')}`,
    );
    const story = () =>
      readEvents(runDir!)
        .filter((e) => e.type === 'mark' || (e.type === 'log' && /recovered|failback/.test(String(e.message))))
        .map((e) => `${Number(e.ms).toFixed(0)} ${e.type === 'mark' ? `mark ${e.name}` : e.message}`)
        .join('\n');
    for (let i = 1; i < at.length; i++)
      assert.ok(at[i]! >= at[i - 1]!, `${order[i]} (${at[i]}) after ${order[i - 1]} (${at[i - 1]})\n${story()}`);
    assert.equal(rec.objectives.rto.measuredSeconds, Math.round(markMs(rec, 'recovered')! - markMs(rec, 'fault-injected')!) / 1000);
    const probes = rec.objectives.verification.probes as { name: string; ok: boolean; detail: string }[];
    const fb = probes.find((p) => p.name === 'failback');
    assert.ok(fb?.ok, JSON.stringify(probes, null, 1));
    assert.match(
      fb!.detail,
      /^RTO of the way back [\d.]+ s .*; steps: storage [\d.]+ s, stop-secondary [\d.]+ s, wal [\d.]+ s, database [\d.]+ s, start [\d.]+ s, switch [\d.]+ s; total time in DR .* [\d.]+ s; storage mirrored back: lab-backups \d+ copied/,
    );
    t.diagnostic(`RTO ${rec.objectives.rto.measuredSeconds} s; failback: ${fb!.detail}`);

    const readback = probes.find((p) => p.name === 'write ledger read back from the serving database');
    assert.ok(readback?.ok, readback?.detail);
    assert.match(readback!.detail, /lost on the way back: 0 of the writes acknowledged after the switch to the secondary/);

    // The primary serves through the global front; nothing of the secondary runs; the standby streams again.
    await servedByPrimaryOnly(lab);
    const lose = rec.actions.find((a: { name: string }) => a.name === 'lose the primary region');
    assert.equal(lose.rollback.status, 'done', JSON.stringify(lose.rollback));
    assert.match(lose.rollback.detail, /serves from its primary region .*nothing of the secondary region runs/);
    const config = (await readConfig(labPaths(lab).config))!;
    const primaryPort = config.nodes[config.primary]!.port;
    const standbyName = Object.keys(config.nodes).find((n) => n !== config.primary)!;
    const standby = await sqlRows<{ state: string }>(primaryPort, 'SELECT state FROM pg_stat_replication WHERE application_name = $1', [
      standbyName,
    ]);
    assert.deepEqual(
      standby.map((x) => x.state),
      ['streaming'],
      `the standby ${standbyName} was rebuilt from the failed-back primary`,
    );
    const quarantined = readdirSync(join(lab, 'quarantine')).filter((n) => n.startsWith('failback-'));
    assert.equal(quarantined.length, 1, "the primary's own data kept aside");
    assert.ok(existsSync(join(lab, 'quarantine', quarantined[0]!, 'service-logs')), "the primary's unshipped request logs kept aside");
    // Lines the primary never shipped stay lost after the failback: the rebuilt region does not ship its old disks.
    const logsClass = (rec.objectives.rpoClasses as { dataClass: string; lost: number | null; measuredSeconds: number | null }[]).find(
      (c) => c.dataClass === 'logs',
    );
    assert.ok(
      (logsClass?.lost ?? 0) > 0 && (logsClass?.measuredSeconds ?? 0) >= 1,
      `logs class after failback: ${JSON.stringify(logsClass)}`,
    );

    // Every write: present in the failed-back primary unless the run counted it lost, and only writes acknowledged
    // before the region was lost are lost (nothing the secondary acknowledged).
    const writes = parseWritesTsv(readFileSync(join(runDir!, 'writes.tsv'), 'utf8')).filter((x) => x.outcome === 'ok');
    const present = new Set(
      (await sqlRows<{ token: string }>(primaryPort, 'SELECT token FROM orders WHERE token = ANY($1)', [writes.map((x) => x.token)])).map(
        (x) => x.token,
      ),
    );
    const lost = writes.filter((x) => !present.has(x.token));
    assert.equal(rec.objectives.rpo.lostWrites, lost.length);
    const switchedMs = markMs(rec, 'front-switched')!;
    const ackedBySecondary = writes.filter((x) => x.ackMs! >= switchedMs);
    assert.ok(ackedBySecondary.length > 0, 'the secondary acknowledged writes');
    assert.deepEqual(
      ackedBySecondary.filter((x) => !present.has(x.token)).map((x) => x.token),
      [],
      'no write the secondary acknowledged is lost on the way back',
    );
    assert.ok(lost.every((x) => x.ackMs! <= markMs(rec, 'region-lost')! + 500));

    // Files the secondary acknowledged are in the primary's account, byte for byte.
    const files = parseFilesTsv(readFileSync(join(runDir!, 'files.tsv'), 'utf8')).filter((f) => f.outcome === 'ok');
    const c = blobServiceFromEnv((await labBlobEnv(lab))!.env).getContainerClient(LAB_FILES_CONTAINER);
    const secondaryFiles = files.filter((f) => f.ackMs! >= switchedMs);
    assert.ok(secondaryFiles.length > 0, 'the secondary stored files');
    for (const f of secondaryFiles) {
      const body = await c.getBlockBlobClient(f.name).downloadToBuffer();
      assert.equal(createHash('sha256').update(body).digest('hex'), f.sha256, `${f.name} in the primary's account`);
    }

    // The primary's archive goes on from the secondary's timeline: the archiver streams from the failed-back
    // database, names no hole, and a write now is archived within the lag.
    const walState = labPaths(lab).walArchive.state;
    const tlBefore = (await readWalArchiveState(walState))?.archivedThrough?.timeline ?? 0;
    const timeline = (await sqlRows<{ t: number }>(primaryPort, 'SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]!.t;
    assert.ok(timeline >= 2, `the failed-back primary runs on the restore's timeline (${timeline})`);
    await sqlRows(primaryPort, "SELECT pg_switch_wal(), pg_logical_emit_message(false, 'test', 'after failback')");
    const deadline = Date.now() + 60_000;
    let s = await readWalArchiveState(walState);
    while (
      Date.now() < deadline &&
      !(s?.state === 'streaming' && s.archivedThrough?.timeline === timeline && s.lagMs !== null && s.lagMs < 10_000)
    ) {
      await sleep(500);
      s = await readWalArchiveState(walState);
    }
    assert.equal(s?.state, 'streaming', JSON.stringify(s));
    assert.equal(
      s?.archivedThrough?.timeline,
      timeline,
      `archived through ${JSON.stringify(s?.archivedThrough)} (was timeline ${tlBefore})`,
    );
    assert.deepEqual(s?.holes, [], 'no hole in the archive after the failback');
    // The replicator copies again what the failback wrote to the primary's account: under load its first passes may
    // trail the lag for a while, so the lab must settle to no problems, not show none at once.
    let problems: unknown[] = [];
    await waitFor(
      'lab status without problems after the failback',
      async () => {
        problems = (await labStatus({ dir: lab })).problems ?? [];
        return problems.length === 0;
      },
      60_000,
    ).catch(() => undefined);
    assert.deepEqual(problems, [], JSON.stringify(problems));
  });

  test('SIGINT once the secondary stopped its writes: exit 4, and the rollback finishes the failback', async () => {
    const { lab, results, drill } = await failbackLab('sigint');
    const run = drillCli(['run', drill, '--results', results], { DRILL_LAB_DIR: lab });
    const dir = await afterFailbackStep(() => runFolders(results)[0], 'storage');
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const rec = record(dir);
    assert.equal(rec.abort?.kind, 'signal');
    const fb = rec.actions.find((a: { name: string }) => a.name === 'fail back to the primary region');
    assert.equal(fb.rollback.status, 'done', JSON.stringify(fb.rollback));
    assert.match(fb.rollback.detail, /serves from its primary region|the failback finished/);
    await servedByPrimaryOnly(lab);
  });

  test('the harness SIGKILLed with the data moved, then drill recover: the failback finished, nothing of the secondary left', async () => {
    const { lab, results, drill } = await failbackLab('sigkill');
    const run = drillCli(['run', drill, '--results', results], { DRILL_LAB_DIR: lab });
    // A write of the test's own, acknowledged by the secondary: it must be in the primary after the killed failback.
    const sentinel = `failback-sentinel-${Date.now()}`;
    await waitFor(
      'a write acknowledged by the secondary',
      async () => {
        const gf = await globalFrontStatus(lab);
        if (gf?.active !== 'secondary') return false;
        const res = await fetch(`http://127.0.0.1:${gf.port}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ item: 'sentinel', token: sentinel, seq: 1 }),
        }).catch(() => null);
        await res?.arrayBuffer();
        return res !== null && res.status < 300 && res.headers.get('x-drill-region') === 'secondary';
      },
      180_000,
    );
    const dir = await afterFailbackStep(() => runFolders(results)[0], 'database');
    run.child.kill('SIGKILL');
    await run.done;
    const rec = await drillCli(['recover', '--results', results], { DRILL_LAB_DIR: lab }).done;
    assert.equal(rec.code, 0, rec.stderr + rec.stdout);
    assert.ok(readEvents(dir).some((e) => e.type === 'rollback.done' && e.name === 'fail back to the primary region'));
    await servedByPrimaryOnly(lab);
    // The data was moved, not restored again: what the secondary acknowledged is in the primary.
    const config = (await readConfig(labPaths(lab).config))!;
    const found = await sqlRows(config.nodes[config.primary]!.port, 'SELECT 1 FROM orders WHERE token = $1', [sentinel]);
    assert.equal(found.length, 1, 'the write the secondary acknowledged survived the killed failback');
  });
});
