// The region-loss drill through `drill run` on the real two-region lab (PostgreSQL pair, two Azurites, the
// replicator, the global front, the service replicas and the open-model load):
// 1. Without failback: exit 0 or 1; run.json carries the RTO with its breakdown (marks and the breakdown check),
//    rpoClasses for database, files and logs; each class's lost items counted again here from what the primary
//    region kept aside (a copy of its primary's data directory started on a spare port, its Azurite started again
//    on its data folder, its request-log files on disk) against the secondary read with the SDK; the lab is left
//    serving from the secondary, nothing of the primary running.
// 2. A WAL segment deleted from the secondary's copy (and the primary's, so the replicator cannot copy it again)
//    before the fault: SEV1 naming the segment, the global front never switched, nothing running in the secondary,
//    the primary region brought back by the rollback.
//    The base backup's data blob missing from both accounts: the same, the finding naming the blob.
// 3. SIGINT mid-restore: exit 4, the rollback finishes the runbook in the secondary.
// 4. The harness SIGKILLed mid-restore, then `drill recover`: serving from the secondary, nothing of the primary left.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blobServiceFromEnv, type BlobServiceClient } from '../../lib/adapters/blob/index.ts';
import { attachmentBody, sha256Hex } from '../../lib/load/class-ledgers.ts';
import { giveToServerUser, isRunning, startCluster, stopCluster, writeNodeConf } from '../../lib/adapters/postgres/cluster.ts';
import {
  LAB_BACKUP_CONTAINER,
  LAB_FILES_CONTAINER,
  LAB_LOGS_CONTAINER,
  labBlobEnv,
  primaryAzurite,
  stopLabAzurite,
} from '../../lib/lab/azurite.ts';
import { labDown, labStatus } from '../../lib/lab/index.ts';
import { parseLogFileName } from '../../lib/lab/log-ship.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { globalFrontStatus } from '../../lib/lab/regions/global-front.ts';
import { primaryRegionParts } from '../../lib/lab/regions/region-loss.ts';
import { secondaryComputeStatus } from '../../lib/lab/regions/secondary-compute.ts';
import { secondaryPgPaths } from '../../lib/lab/regions/secondary-restore.ts';
import { readConfig } from '../../lib/lab/state.ts';
import { parseFilesTsv, parseLogsTsv } from '../../lib/load/class-ledgers.ts';
import { parseWritesTsv } from '../../lib/load/ledger.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { forgetConfiguredBlobStorage } from '../support/lab.ts';
import { keptLabCopy } from '../support/lab-copy.ts';
import { type RegionDrill, upRegionLab, upRegionLabInTurn, writeRegionDrill } from '../support/region-drill.ts';
import { secondaryBackups, secondaryBlobs } from '../support/secondary-copy.ts';
import { freePort } from '../support/ports.ts';
import { sqlRows } from '../support/sql.ts';
import { scratchDir } from '../support/tmp.ts';

forgetConfiguredBlobStorage();
const dirs: string[] = [];
const labsUp: string[] = [];
const servers: string[] = [];
after(async () => {
  for (const d of servers) await stopCluster(d, 'immediate').catch(() => undefined);
  for (const dir of labsUp) {
    await stopLabAzurite(dir).catch(() => undefined);
    await labDown({ dir }).catch(() => undefined);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The folder the tests at the default lab figures take in turn, each from the same kept lab (upRegionLabInTurn). */
let inTurn: string | undefined;

/** A lab folder, a results folder and the drill file for one test, and the lab up with the drill's figures. */
async function workspace(o: RegionDrill, segments = 2) {
  const defaults = o.replicationLagS === undefined && o.logShipS === undefined;
  let lab = defaults ? inTurn : undefined;
  if (!lab) {
    lab = scratchDir(`lab-rl-${defaults ? 'in-turn' : o.name}`);
    dirs.push(lab, keptLabCopy(lab));
    labsUp.push(lab);
    if (defaults) inTurn = lab;
  }
  const results = scratchDir(`results-rl-${o.name}`);
  dirs.push(results);
  const drill = join(results, 'drill.yaml');
  writeRegionDrill(drill, o);
  const { start } = await (defaults ? upRegionLabInTurn : upRegionLab)(lab, o, segments);
  return { lab, results, drill, start, env: { DRILL_LAB_DIR: lab } };
}

/** Gone from both accounts: the replicator copies again what the secondary lacks, and deletes are not replicated. */
async function deleteFromBothAccounts(lab: string, blob: string): Promise<void> {
  await blobServiceFromEnv((await labBlobEnv(lab))!.env)
    .getContainerClient(LAB_BACKUP_CONTAINER)
    .deleteBlob(blob);
  await (await secondaryBlobs(lab)).getContainerClient(LAB_BACKUP_CONTAINER).deleteBlob(blob);
}

/** A restore in the secondary that failed: the rollback brought the primary back, nothing of the secondary runs. */
async function primaryBackNothingOfSecondary(lab: string): Promise<void> {
  const gf = (await globalFrontStatus(lab))!;
  assert.equal(gf.active, 'primary');
  assert.equal((await secondaryComputeStatus(lab)).daemonPid, null, 'no secondary compute');
  assert.equal(await isRunning(secondaryPgPaths(lab).dataDir), false, 'no secondary database');
  const res = await fetch(`http://127.0.0.1:${gf.port}/orders?limit=1`);
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-drill-region'), 'primary');
}

type ClassRow = {
  dataClass: string;
  measuredSeconds: number | null;
  lost: number | null;
  acknowledged?: number;
  met: boolean | null;
  method: string | null;
};
const record = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
const markMs = (rec: { marks: { name: string; ms: number }[] }, name: string) => rec.marks.find((m) => m.name === name)?.ms;

/** Tokens of every request-log line: in shipped segments of a container, or in the request-log files on disk. */
async function tokensIn(svc: BlobServiceClient): Promise<Set<string>> {
  const out = new Set<string>();
  const c = svc.getContainerClient(LAB_LOGS_CONTAINER);
  if (!(await c.exists())) return out;
  for await (const b of c.listBlobsFlat()) addTokens(out, (await c.getBlockBlobClient(b.name).downloadToBuffer()).toString('utf8'));
  return out;
}
function addTokens(out: Set<string>, text: string): void {
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      const t = (JSON.parse(raw) as { token?: string | null }).token;
      if (t) out.add(t);
    } catch {
      // A line cut by the SIGKILL: no token to count.
    }
  }
}

async function filesIn(svc: BlobServiceClient, names: string[]): Promise<Map<string, string>> {
  const c = svc.getContainerClient(LAB_FILES_CONTAINER);
  const out = new Map<string, string>();
  for (const name of names) {
    const got = await c
      .getBlockBlobClient(name)
      .downloadToBuffer()
      .catch((e: { statusCode?: number }) => {
        if (e.statusCode === 404) return null;
        throw e;
      });
    if (got) out.set(name, createHash('sha256').update(got).digest('hex'));
  }
  return out;
}

/** For each body, whether a file of the folder (an Azurite data folder: its blob extents) holds those bytes. */
function storedBodies(dir: string, bodies: Buffer[]): boolean[] {
  const found = bodies.map(() => false);
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile() && !e.name.endsWith('.json')) {
        const bytes = readFileSync(path);
        bodies.forEach((b, i) => {
          if (!found[i] && bytes.includes(b)) found[i] = true;
        });
      }
    }
  };
  walk(dir);
  return found;
}

/** A copy of the lost primary's data directory, started on a spare port: what the primary region held, read independently. */
async function openLostPrimary(lab: string, scratch: string): Promise<number> {
  const config = (await readConfig(labPaths(lab).config))!;
  const copy = join(scratch, 'lost-primary');
  execFileSync('cp', ['-a', labPaths(lab).node(config.primary).data, copy]);
  for (const f of ['postmaster.pid', 'standby.signal', 'recovery.signal']) rmSync(join(copy, f), { force: true });
  const port = await freePort();
  await writeNodeConf(copy, { port, socketDir: join(scratch, 'sock') });
  writeFileSync(join(copy, 'postgresql.auto.conf'), "archive_mode = off\nprimary_conninfo = ''\nsynchronous_standby_names = ''\n");
  await giveToServerUser(join(copy, 'postgresql.auto.conf'));
  servers.push(copy);
  await startCluster(copy, { logFile: join(scratch, 'lost-primary.log') });
  return port;
}

async function nothingRunsInPrimary(lab: string): Promise<void> {
  const running = (await primaryRegionParts(lab)).filter((x) => x.alive).map((x) => `${x.part} (${x.pid})`);
  assert.deepEqual(running, [], 'nothing of the primary region runs');
}

async function servedBySecondary(lab: string): Promise<void> {
  const gf = (await globalFrontStatus(lab))!;
  assert.equal(gf.active, 'secondary');
  const r = await fetch(`http://127.0.0.1:${gf.port}/orders?limit=1`);
  await r.arrayBuffer();
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-drill-region'), 'secondary');
  const s = await labStatus({ dir: lab });
  assert.match(s.regions?.note ?? '', /^serving from the secondary region since /);
}

describe('drill run region-loss on the two-region lab', { timeout: 600_000 }, () => {
  test('the primary region lost: the runbook recovers in the secondary; RTO by step; every class counted and cross-checked', async (t) => {
    // The replication lag set high (30 s) and logs shipped every 10 s, the figures: a baseline longer than it plus the archive's lag, so the
    // ledgers hold writes old enough to have reached the secondary, and each class's RPO shows the lag rather than the
    // start of the load.
    const w = await workspace({ name: 'whole', replicationLagS: 30, logShipS: 10, baselineS: 40 });
    const r = await drillCli(['run', w.drill, '--results', w.results], w.env).done;
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}\n${r.stdout}${r.stderr}`);
    const [runDir] = runFolders(w.results);
    const rec = record(runDir!);
    assert.equal(rec.scenarioModule, 'region-loss');

    // RTO and its breakdown: every step's mark, in the runbook's order, and the breakdown check's figures.
    const order = [
      'fault-injected',
      'region-lost',
      'region-loss-detected',
      'restore-started',
      'secondary-db-restored',
      'secondary-serving',
      'front-switched',
      'recovered',
    ];
    const at = order.map((m) => markMs(rec, m));
    assert.ok(
      at.every((x) => x !== undefined),
      `marks: ${rec.marks.map((m: { name: string }) => m.name).join(', ')}`,
    );
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! >= at[i - 1]!, `${order[i]} after ${order[i - 1]}`);
    for (const step of ['restore-download', 'restore-replay', 'restore-promote'])
      assert.ok(markMs(rec, step) !== undefined, `mark ${step}`);
    assert.equal(rec.objectives.rto.measuredSeconds, Math.round(markMs(rec, 'recovered')! - markMs(rec, 'fault-injected')!) / 1000);
    const probes = rec.objectives.verification.probes as { name: string; ok: boolean; detail: string }[];
    const breakdownCheck = probes.find((v) => v.name === 'RTO breakdown');
    assert.ok(breakdownCheck?.ok, JSON.stringify(probes));
    assert.match(
      breakdownCheck!.detail,
      /^detect [\d.]+ s, restore [\d.]+ s, replay [\d.]+ s, promote [\d.]+ s, start [\d.]+ s, switch [\d.]+ s; region lost to global front switched [\d.]+ s/,
    );
    t.diagnostic(`RTO ${rec.objectives.rto.measuredSeconds} s; ${breakdownCheck!.detail}`);

    // The lab is left serving from the secondary, and the rollback says so.
    await servedBySecondary(w.lab);
    await nothingRunsInPrimary(w.lab);
    const lose = rec.actions.find((a: { name: string }) => a.name === 'lose the primary region');
    assert.equal(lose.rollback.status, 'done');
    assert.match(lose.rollback.detail, /serves from its secondary region since .* nothing of the primary region runs/);

    // Each class against what the primary kept aside and the secondary holds, counted here.
    const classes = Object.fromEntries((rec.objectives.rpoClasses as ClassRow[]).map((c) => [c.dataClass, c])) as Record<string, ClassRow>;
    assert.deepEqual(Object.keys(classes).sort(), ['database', 'file-storage', 'logs']);
    const sec = await secondaryBlobs(w.lab);
    const files = parseFilesTsv(readFileSync(join(runDir!, 'files.tsv'), 'utf8')).filter((f) => f.outcome === 'ok');
    const inSecondary = await filesIn(
      sec,
      files.map((f) => f.name),
    );
    const lostFiles = files.filter((f) => inSecondary.get(f.name) !== f.sha256);
    assert.equal(classes['file-storage']!.lost, lostFiles.length, `files lost: ${lostFiles.map((f) => f.name).join(', ')}`);
    assert.equal(classes['file-storage']!.acknowledged, files.length);
    // Every lost file's bytes are in the primary's storage, read from its data folder on disk: its Azurite, started
    // again, would not list the blobs of its last 5 s (its index is saved every 5 s, and it was SIGKILLed).
    const bodies = lostFiles.map((f) => {
      const body = attachmentBody(f.name.split('/')[1]!, f.seq);
      assert.equal(sha256Hex(body), f.sha256, `${f.name}: the ledger's sha256 is of the body the load sent`);
      return body;
    });
    const onDisk = storedBodies(primaryAzurite(w.lab).dir, bodies);
    assert.deepEqual(
      lostFiles.filter((_, i) => !onDisk[i]).map((f) => f.name),
      [],
      "every lost file was stored in the primary's account before the loss",
    );

    const logs = parseLogsTsv(readFileSync(join(runDir!, 'logs.tsv'), 'utf8')).filter((l) => l.outcome === 'ok');
    const shippedToSecondary = await tokensIn(sec);
    const keptInPrimary = new Set<string>();
    const serviceLogs = labPaths(w.lab).serviceLogs.dir;
    for (const f of readdirSync(serviceLogs).filter((n) => parseLogFileName(n) !== null))
      addTokens(keptInPrimary, readFileSync(join(serviceLogs, f), 'utf8'));
    const lostLines = logs.filter((l) => !shippedToSecondary.has(l.token));
    assert.equal(classes.logs!.lost, lostLines.length);
    for (const l of lostLines) assert.ok(keptInPrimary.has(l.token), `line ${l.token} was written in the primary region`);

    const writes = parseWritesTsv(readFileSync(join(runDir!, 'writes.tsv'), 'utf8')).filter((x) => x.outcome === 'ok');
    const tokens = writes.map((x) => x.token);
    const secondaryPort = (await readSecondaryPort(w.lab))!;
    const primaryPort = await openLostPrimary(w.lab, w.results);
    const rowsIn = async (port: number) =>
      new Set((await sqlRows<{ token: string }>(port, 'SELECT token FROM orders WHERE token = ANY($1)', [tokens])).map((x) => x.token));
    const [dbSecondary, dbPrimary] = await Promise.all([rowsIn(secondaryPort), rowsIn(primaryPort)]);
    const lostWrites = writes.filter((x) => !dbSecondary.has(x.token));
    assert.equal(rec.objectives.rpo.lostWrites, lostWrites.length);
    assert.equal(classes.database!.lost, lostWrites.length);
    for (const x of lostWrites) assert.ok(dbPrimary.has(x.token), `write ${x.token} was committed in the primary before the loss`);
    assert.ok(
      // An answer sent before the SIGKILL may still arrive a little after it.
      lostWrites.every((x) => x.ackMs! <= markMs(rec, 'region-lost')! + 500),
      `only writes acknowledged before the loss are lost (SIGKILL at ${markMs(rec, 'region-lost')} ms)`,
    );
    // Within the measured resolution: no class loses less than the replication lag (the secondary trails by it), nor
    // much more than the lag plus its own (archive lag 4 s, log ship interval 10 s) and the replicator's pass (up to
    // about 10 s on a loaded 2-core machine: 40.1 s of database RPO measured with another region test beside it).
    const LAG_S = 30;
    for (const [cls, own] of [
      ['database', 4],
      ['file-storage', 0],
      ['logs', 10],
    ] as const) {
      const rpo = classes[cls]!.measuredSeconds!;
      assert.ok(
        rpo >= LAG_S - 1 && rpo <= LAG_S + own + 10,
        `${cls} RPO ${rpo} s against a replication lag of ${LAG_S} s (+${own} s its own)`,
      );
    }
    // The ship interval on top of the lag: a line waits up to an interval before it is shipped, then the lag.
    const [filesRpo, logsRpo] = [classes['file-storage']!.measuredSeconds!, classes.logs!.measuredSeconds!];
    assert.ok(
      logsRpo >= filesRpo - 1 && logsRpo <= filesRpo + 10 + 3,
      `logs RPO ${logsRpo} s against files ${filesRpo} s and a 10 s ship interval`,
    );
    t.diagnostic(
      `lost: ${lostWrites.length}/${writes.length} writes (RPO ${classes.database!.measuredSeconds} s), ${lostFiles.length}/${files.length} files (RPO ${classes['file-storage']!.measuredSeconds} s), ${lostLines.length}/${logs.length} log lines (RPO ${classes.logs!.measuredSeconds} s)`,
    );
  });

  test('a WAL segment missing from the secondary copy: SEV1 naming it, the front never switched, nothing running in the secondary', async () => {
    const w = await workspace({ name: 'hole' }, 4);
    const start = w.start;
    const s = await secondaryBackups(w.lab);
    const after = [...s.segments.keys()].filter((n) => n.slice(8) > start.slice(8)).sort();
    const gone = after[0]!;
    const blob = s.segments.get(gone)!;
    await deleteFromBothAccounts(w.lab, blob);

    const r = await drillCli(['run', w.drill, '--results', w.results], w.env).done;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const [runDir] = runFolders(w.results);
    const rec = record(runDir!);
    const sev1 = rec.findings.filter(
      (f: { severity: string; title: string; detail: string }) =>
        f.severity === 'SEV1' && /^Verification failed/.test(f.title) && f.detail.includes(gone),
    );
    assert.equal(sev1.length, 1, JSON.stringify(rec.findings, null, 1));
    assert.match(sev1[0].title, /the secondary's copy of the backups is complete/);
    assert.match(sev1[0].detail, /the global front was not switched/);
    assert.equal(markMs(rec, 'front-switched'), undefined);
    assert.ok(markMs(rec, 'secondary-restore-failed') !== undefined);
    const switched = readEvents(runDir!).find((e) => e.type === 'action.done' && e.name === 'switch the global front');
    assert.match(String((switched?.result as { skipped?: string })?.skipped), /not switched/);
    const lose = rec.actions.find((a: { name: string }) => a.name === 'lose the primary region');
    assert.equal(lose.rollback.status, 'done', JSON.stringify(lose.rollback));
    assert.match(lose.rollback.detail, /the secondary could not be restored .*primary region brought back/);
    await primaryBackNothingOfSecondary(w.lab);
  });

  test("the base backup's data missing from the secondary copy: SEV1 naming the blob, the front never switched, the primary back", async () => {
    const w = await workspace({ name: 'nobackup' });
    const manifest = (await secondaryBackups(w.lab)).manifests.sort().at(-1)!;
    const data = manifest.replace(/manifest\.json$/, 'base.tar');
    await deleteFromBothAccounts(w.lab, data);

    const r = await drillCli(['run', w.drill, '--results', w.results], w.env).done;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const rec = record(runFolders(w.results)[0]!);
    const sev1 = rec.findings.filter(
      (f: { severity: string; title: string; detail: string }) =>
        f.severity === 'SEV1' && /the secondary's copy of the backups is complete/.test(f.title) && f.detail.includes(data),
    );
    assert.equal(sev1.length, 1, JSON.stringify(rec.findings, null, 1));
    assert.match(sev1[0].detail, /cannot be restored.*base\.tar, which is not in the container/);
    assert.equal(markMs(rec, 'front-switched'), undefined);
    await primaryBackNothingOfSecondary(w.lab);
  });

  test('SIGINT mid-restore: exit 4, and the rollback finishes the runbook: serving from the secondary, nothing of the primary', async () => {
    const w = await workspace({ name: 'sigint' });
    const run = drillCli(['run', w.drill, '--results', w.results], w.env);
    const dir = await waitFor('the run folder', () => runFolders(w.results)[0], 120_000);
    await waitFor(
      'the restore in the secondary to have downloaded the base backup',
      () =>
        existsSync(join(dir, 'events.jsonl')) &&
        readEvents(dir).some((e) => e.type === 'log' && /^secondary restore: download /.test(String(e.message))),
      120_000,
    );
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const rec = record(dir);
    assert.equal(rec.abort?.kind, 'signal');
    const lose = rec.actions.find((a: { name: string }) => a.name === 'lose the primary region');
    assert.equal(lose.rollback.status, 'done', JSON.stringify(lose.rollback));
    assert.match(lose.rollback.detail, /the runbook finished in the secondary/);
    await servedBySecondary(w.lab);
    await nothingRunsInPrimary(w.lab);
    // The lab left serving from the secondary is no pair to drill against: a second run is refused, nothing touched.
    const again = await drillCli(['run', w.drill, '--results', join(w.results, 'again')], w.env).done;
    assert.equal(again.code, 2, again.stdout + again.stderr);
    assert.match(again.stdout + again.stderr, /serves from its secondary region[\s\S]*drill lab down/);
    assert.doesNotMatch(again.stdout + again.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
    await servedBySecondary(w.lab);
  });

  test('the harness SIGKILLed mid-restore, then drill recover: serving from the secondary, nothing of the primary left', async () => {
    const w = await workspace({ name: 'sigkill' });
    const run = drillCli(['run', w.drill, '--results', w.results], w.env);
    const dir = await waitFor('the run folder', () => runFolders(w.results)[0], 120_000);
    await waitFor(
      'the restore in the secondary to have downloaded the base backup',
      () =>
        existsSync(join(dir, 'events.jsonl')) &&
        readEvents(dir).some((e) => e.type === 'log' && /^secondary restore: download /.test(String(e.message))),
      120_000,
    );
    run.child.kill('SIGKILL');
    await run.done;
    const rec = await drillCli(['recover', '--results', w.results], w.env).done;
    assert.equal(rec.code, 0, rec.stderr + rec.stdout);
    assert.match(rec.stdout + rec.stderr, /region loss in progress, left for its rollback/);
    await servedBySecondary(w.lab);
    await nothingRunsInPrimary(w.lab);
    assert.ok(readEvents(dir).some((e) => e.type === 'rollback.done' && e.name === 'lose the primary region'));
  });
});

async function readSecondaryPort(lab: string): Promise<number | null> {
  const file = join(lab, 'secondary', 'pg', 'db.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { port: number }).port : null;
}
