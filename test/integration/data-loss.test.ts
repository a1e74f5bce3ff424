import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { giveToServerUser, runServerBinary, startCluster, stopCluster, writeNodeConf } from '../../lib/adapters/postgres/cluster.ts';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { sqlRows } from '../support/sql.ts';
import { freePort } from '../support/ports.ts';
import { scratchDir } from '../support/tmp.ts';
import { resolveBackupStore } from '../../lib/adapters/postgres/backup/resolve.ts';
import { listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { walFolder } from '../../lib/backup/naming.ts';
import { parseSegmentName } from '../../lib/backup/wal-names.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lib/lab/azurite.ts';

/**
 * The data-loss drill end to end on the real lab (PostgreSQL pair, Azurite with the base backup and the WAL
 * archive, the orders service under load), through `drill run` as a person runs it. The lab is brought up by
 * each test and stays up after the run, so the test can look at the restored database, and at the damaged one
 * the drill kept in quarantine (a copy of it started read-only on a spare port), on its own.
 */
const labs: string[] = [];
const dirs: string[] = [];
const servers: string[] = [];
after(async () => {
  for (const d of servers) await stopCluster(d, 'immediate').catch(() => undefined);
  for (const dir of labs) await labDown({ dir }).catch(() => undefined);
  for (const dir of [...labs, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

function workspace(name: string) {
  const lab = scratchDir(`lab-${name}`);
  const results = scratchDir(`results-${name}`);
  labs.push(lab);
  dirs.push(results);
  return { lab, results, file: join(results, 'drill.yaml'), env: { DRILL_LAB_DIR: lab } };
}

/** Loose SLOs: the drill judges the restore, not a 2-core machine shared with other tests. */
function drillYaml(params: string, target = 'allowDataLoss: true, dataLossReason: test data'): string {
  return `name: data-loss-test
kind: adhoc
service: { name: orders, tier: critical, dataClass: database }
target: { kind: lab, replicas: 2${target ? `, ${target}` : ''} }
policy:
  recoveryWindow: 2s
  slo: { availability: ['rate>=50%'], errors: ['rate<50%'], latency: ['p(95)<5s'] }
load:
  rate: 40
  requests:
    - { method: GET, path: '/orders?limit=5', weight: 1 }
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 1 }
  timeout: 2s
  baseline: 3s
  cooldown: 0s
scenarios:
  - { scenario: data-loss, name: data-loss, params: ${params}, timeout: 5m }
`;
}

const record = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
const markMs = (rec: any, name: string): number => {
  const m = rec.marks.find((x: { name: string }) => x.name === name);
  assert.ok(m, `mark ${name} in ${rec.marks.map((x: { name: string }) => x.name).join(', ')}`);
  return m.ms;
};

async function primaryPort(lab: string): Promise<number> {
  const s = await labStatus({ dir: lab });
  const db = s.database!;
  const primaries = db.nodes.filter((n) => n.alive && n.inRecovery === false);
  const standbys = db.nodes.filter((n) => n.alive && n.inRecovery === true && n.streaming === true);
  assert.equal(primaries.length, 1, `one primary: ${JSON.stringify(db.nodes)}`);
  assert.equal(standbys.length, 1, `one streaming standby: ${JSON.stringify(db.nodes)}`);
  return primaries[0]!.port;
}

const query = <T extends pg.QueryResultRow>(port: number, sql: string, args: unknown[] = []) => sqlRows<T>(port, sql, args);

type OrderRow = { id: string; item: string; token: string | null; seq: string | null };
const ALL_ORDERS = 'SELECT id::text, item, token, seq::text FROM orders ORDER BY id';
/** The orders the test wrote before the run (the lab's own untagged warm-up writes come and go with its start-ups). */
const EARLIER = "SELECT id::text, item, token, seq::text FROM orders WHERE token LIKE 'earlier-%' ORDER BY id";

/** Orders written before the run (directly, as earlier users did): the restore must bring each back as it was. */
async function seedOrders(port: number, n: number): Promise<OrderRow[]> {
  await query(port, `INSERT INTO orders (item, token, seq) SELECT 'earlier-' || g, 'earlier-' || g, g FROM generate_series(1, $1) g`, [n]);
  return query<OrderRow>(port, EARLIER);
}

interface Write {
  seq: number;
  token: string;
  ackMs: number | null;
  outcome: string;
}

function writesOf(runDir: string): Write[] {
  const lines = readFileSync(join(runDir, 'writes.tsv'), 'utf8').trim().split('\n');
  assert.equal(lines[0], 'seq\ttoken\tsent_ms\tack_ms\toutcome');
  return lines.slice(1).map((line) => {
    const [seq, token, , ack, outcome] = line.split('\t');
    return { seq: Number(seq), token: token!, ackMs: ack === '' ? null : Number(ack), outcome: outcome! };
  });
}

/** The damaged primary's data directory the drill moved aside: the one that ran as primary (no standby.signal). */
function quarantinedPrimary(quarantine: string): string {
  const dataDirs: string[] = [];
  const walk = (d: string, depth: number) => {
    if (existsSync(join(d, 'PG_VERSION'))) dataDirs.push(d);
    else if (depth > 0) for (const e of readdirSync(d)) if (statSync(join(d, e)).isDirectory()) walk(join(d, e), depth - 1);
  };
  walk(quarantine, 3);
  const primary = dataDirs.filter((d) => !existsSync(join(d, 'standby.signal')));
  assert.equal(primary.length, 1, `one damaged primary in ${quarantine}: ${dataDirs.join(', ')}`);
  return primary[0]!;
}

/**
 * A copy of the quarantined damaged cluster, started on a spare port: the independent read of what the damaged
 * database held. The copy, not the quarantine, runs crash recovery: the forensic evidence stays as it was.
 */
async function openQuarantine(quarantine: string, scratch: string): Promise<number> {
  const copy = join(scratch, 'damaged');
  // cp -a: the copy keeps the server user's ownership and the 0700 modes PostgreSQL insists on.
  execFileSync('cp', ['-a', quarantinedPrimary(quarantine), copy]);
  for (const f of ['postmaster.pid', 'standby.signal', 'recovery.signal']) rmSync(join(copy, f), { force: true });
  const port = await freePort();
  await writeNodeConf(copy, { port, socketDir: join(scratch, 'sock') });
  // A copy never archives or streams anywhere: it is read, then thrown away.
  writeFileSync(join(copy, 'postgresql.auto.conf'), "archive_mode = off\nprimary_conninfo = ''\n");
  await giveToServerUser(join(copy, 'postgresql.auto.conf'));
  servers.push(copy);
  await startCluster(copy, { logFile: join(scratch, 'damaged.log') });
  return port;
}

/** The restore's outcome as the run journaled it. */
function restoreOutcome(runDir: string) {
  const done = readEvents(runDir).find((e) => e.type === 'action.done' && e.name === 'restore from Blob');
  assert.ok(done, 'the restore action finished');
  return (done.result as { outcome: { quarantine: string; missingSegments: string[]; replaced: boolean; ok: boolean } }).outcome;
}

/**
 * Every write classified by hand from writes.tsv and two databases read directly: the restored primary (what
 * survived) and the damaged cluster in quarantine (what was written to it). Compared with the record.
 */
async function judgeByHand(runDir: string, restoredPort: number, damagedPort: number | null) {
  const rec = record(runDir);
  const l = rec.objectives.rpo.ledger;
  const all = writesOf(runDir);
  const judged = all.slice(0, l.total);
  const tag = all[0]!.token.slice(0, 8);
  const restored = new Map(
    (await query<{ token: string; seq: string }>(restoredPort, 'SELECT token, seq::text FROM orders WHERE token LIKE $1', [`${tag}%`])).map(
      (r) => [r.token, Number(r.seq)] as const,
    ),
  );
  const damaged =
    damagedPort === null
      ? null
      : (await query<{ t: string | null }>(damagedPort, "SELECT to_regclass('orders')::text AS t"))[0]!.t === null
        ? new Set<string>()
        : new Set(
            (await query<{ token: string }>(damagedPort, 'SELECT token FROM orders WHERE token LIKE $1', [`${tag}%`])).map((r) => r.token),
          );
  const rp = l.discardedByRestore?.restorePointMs ?? l.faultMs;
  const destroyedMs = markMs(rec, 'data-destroyed');
  const mine = { survived: 0, lost: 0, discarded: 0, discardedSeenInDamaged: 0, discardedBeforeChange: 0 };
  for (const w of judged) {
    if (restored.has(w.token)) assert.equal(restored.get(w.token), w.seq, `${w.token} keeps its seq`);
    if (w.outcome !== 'ok') continue;
    if (restored.has(w.token)) mine.survived++;
    else if (l.discardedByRestore && w.ackMs! > rp) {
      mine.discarded++;
      if (damaged?.has(w.token)) mine.discardedSeenInDamaged++;
      // Acknowledged between the restore point and the change itself: the change took them too.
      else if (w.ackMs! <= destroyedMs) mine.discardedBeforeChange++;
      else assert.fail(`${w.token} acknowledged at ${w.ackMs} ms, after the change, is in neither database`);
    } else mine.lost++;
  }
  return { rec, l, mine, restored, damaged, judged, rp, destroyedMs };
}

/** What every passing data-loss run shows: exit 0, the marks in order, RTO = recovered − fault-injected, rollbacks. */
function assertRestoredRun(rec: any, code: number | null, output: string): void {
  assert.equal(code, 0, `${output.slice(-4000)}\n${JSON.stringify({ objectives: rec.objectives, findings: rec.findings }).slice(0, 4000)}`);
  assert.equal(rec.status, 'passed');
  assert.equal(rec.scenarioModule, 'data-loss');
  const order = ['restore-point', 'fault-injected', 'data-destroyed', 'restore-started', 'restored', 'verified', 'rolled-back'];
  const at = order.map((m) => markMs(rec, m));
  for (let i = 1; i < at.length; i++) assert.ok(at[i]! >= at[i - 1]!, `${order[i]} (${at[i]} ms) after ${order[i - 1]} (${at[i - 1]} ms)`);
  // Users are served from the repoint on: recovery is not held back by the standby built after it.
  const recovered = markMs(rec, 'recovered');
  assert.ok(recovered >= markMs(rec, 'restore-repoint'), `recovered (${recovered} ms) after the repoint`);
  assert.ok(recovered <= markMs(rec, 'verified'), 'recovered before verification');
  const check = rec.objectives.rto.method as string;
  assert.match(check, /recovery check "users served their data again" \(dated from the evidence it read/);
  for (const step of ['download', 'replay', 'promote', 'repoint', 'standby']) {
    const ms = markMs(rec, `restore-${step}`);
    assert.ok(ms >= markMs(rec, 'restore-started') && ms <= markMs(rec, 'restored'), `restore-${step} inside the restore`);
  }
  const rtoMs = markMs(rec, 'recovered') - markMs(rec, 'fault-injected');
  assert.ok(
    Math.abs(rec.objectives.rto.measuredSeconds * 1000 - rtoMs) < 2,
    `RTO ${rec.objectives.rto.measuredSeconds} s vs marks ${rtoMs} ms`,
  );
  assert.equal(rec.objectives.rto.met, true);
  assert.equal(rec.objectives.verification.met, true, JSON.stringify(rec.objectives.verification));
  assert.deepEqual(
    rec.actions.map((a: { name: string; status: string; rollback: { status: string } }) => [a.name, a.status, a.rollback.status]),
    [
      ['destroy data', 'done', 'done'],
      ['restore from Blob', 'done', 'none'],
    ],
  );
  const breakdown = rec.objectives.verification.probes.find((p: { name: string }) => p.name === 'restore breakdown');
  assert.match(
    breakdown.detail,
    /backup .+ \(taken .+\); download [\d.]+ s, replay [\d.]+ s, promote [\d.]+ s, repoint [\d.]+ s, standby [\d.]+ s;.*kept in \//,
  );
}

/** Until the archive holds the primary's whole position (lag 0): what was written so far survives a lost cluster. */
async function waitForArchive(lab: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const a = (await labStatus({ dir: lab })).archive;
    if (a?.lagSeconds === 0) return;
    if (Date.now() > deadline) assert.fail(`the WAL archive did not catch up: ${JSON.stringify(a)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function amcheckClean(port: number): Promise<void> {
  const r = await runServerBinary('pg_amcheck', [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '--install-missing',
    '--heapallindexed',
    'orders',
  ]);
  assert.equal(r.code, 0, `pg_amcheck: ${r.stdout}${r.stderr}`);
}

test('drop-table under load: the table comes back from Blob as it was just before the DROP, users are served again, the ledger judges the restore', {
  timeout: 600_000,
}, async (t) => {
  const w = workspace('drop');
  await labUp({ dir: w.lab, replicas: 2 });
  const earlier = await seedOrders(await primaryPort(w.lab), 300);
  writeFileSync(w.file, drillYaml('{ fault: drop-table }'));
  const t0 = performance.now();
  const r = await drillCli(['run', w.file, '--results', w.results], w.env).done;
  t.diagnostic(`drill run (drop-table): exit ${r.code} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const [dir] = runFolders(w.results);
  assert.ok(dir, r.stderr + r.stdout);
  const rec = record(dir);
  assertRestoredRun(rec, r.code, r.stderr + r.stdout);
  t.diagnostic(
    `RTO ${rec.objectives.rto.measuredSeconds} s; ${rec.objectives.verification.probes.find((p: { name: string }) => p.name === 'restore breakdown').detail}`,
  );

  // The table really was gone until the restore: requests failed in the fault phase.
  assert.ok(rec.phases.fault.errors > 0, `errors during the fault: ${JSON.stringify(rec.phases.fault)}`);

  const port = await primaryPort(w.lab);
  assert.deepEqual(await query<OrderRow>(port, EARLIER), earlier, 'every earlier order back as it was');
  await amcheckClean(port);

  const outcome = restoreOutcome(dir);
  assert.equal(outcome.replaced, true);
  const damagedPort = await openQuarantine(outcome.quarantine, w.results);
  const j = await judgeByHand(dir, port, damagedPort);
  assert.equal(j.damaged!.size, 0, 'the damaged cluster has no orders table: it was dropped');
  assert.equal(j.mine.lost, 0, 'nothing acknowledged before the restore point is missing');
  assert.equal(j.l.lost, 0);
  assert.equal(j.l.survived, j.mine.survived);
  assert.equal(j.l.discardedByRestore.writes, j.mine.discarded, 'discarded counted exactly');
  assert.equal(j.mine.discardedSeenInDamaged, 0, 'no write was acknowledged on a dropped table');
  t.diagnostic(`ledger: ${j.l.acknowledged} acknowledged, ${j.l.survived} survived, ${j.l.lost} lost, ${j.mine.discarded} discarded`);
});

test('delete-rows under load: the service answers wrongly until restored; writes acknowledged after the DELETE are discarded, counted exactly against the damaged cluster', {
  timeout: 600_000,
}, async (t) => {
  const w = workspace('delete');
  await labUp({ dir: w.lab, replicas: 2 });
  const earlier = await seedOrders(await primaryPort(w.lab), 300);
  writeFileSync(w.file, drillYaml('{ fault: delete-rows }'));
  const r = await drillCli(['run', w.file, '--results', w.results], w.env).done;
  const [dir] = runFolders(w.results);
  assert.ok(dir, r.stderr + r.stdout);
  const rec = record(dir);
  assertRestoredRun(rec, r.code, r.stderr + r.stdout);

  const port = await primaryPort(w.lab);
  assert.deepEqual(await query<OrderRow>(port, EARLIER), earlier, 'every earlier order back as it was');
  await amcheckClean(port);
  const outcome = restoreOutcome(dir);
  const damagedPort = await openQuarantine(outcome.quarantine, w.results);
  assert.equal(
    (await query(damagedPort, "SELECT 1 FROM orders WHERE token LIKE 'earlier-%'")).length,
    0,
    'the DELETE took every earlier order',
  );
  const j = await judgeByHand(dir, port, damagedPort);
  assert.equal(j.mine.lost, 0);
  assert.equal(j.l.lost, 0);
  assert.ok(j.mine.discardedSeenInDamaged > 0, 'the service kept taking writes on the damaged database');
  assert.equal(j.l.discardedByRestore.writes, j.mine.discarded, 'discarded counted exactly');
  const f = rec.findings.find((x: { title: string }) => /discarded by the point-in-time restore/.test(x.title));
  assert.ok(f, `a finding names the discarded writes: ${JSON.stringify(rec.findings)}`);
  assert.equal(f.title, `${j.mine.discarded} acknowledged writes discarded by the point-in-time restore`);
  t.diagnostic(
    `RTO ${rec.objectives.rto.measuredSeconds} s; ${j.mine.discarded} discarded (${j.mine.discardedSeenInDamaged} found in the damaged cluster)`,
  );
});

test('lose-cluster: both nodes and their disks gone; restored to the newest archived WAL, writes lost no older than the archive lag', {
  timeout: 600_000,
}, async (t) => {
  const w = workspace('lose');
  // A 4 s archive lag: what a lost cluster may lose, measured against the ledger below.
  await labUp({ dir: w.lab, replicas: 2, archiveLagMs: 4000 });
  const earlier = await seedOrders(await primaryPort(w.lab), 300);
  // The earlier orders in the archive before the run: a lost cluster keeps only what was archived.
  await waitForArchive(w.lab);
  writeFileSync(w.file, drillYaml('{ fault: lose-cluster }', ''));
  const r = await drillCli(['run', w.file, '--results', w.results], w.env).done;
  const [dir] = runFolders(w.results);
  assert.ok(dir, r.stderr + r.stdout);
  const rec = record(dir);
  assertRestoredRun(rec, r.code, r.stderr + r.stdout);
  const port = await primaryPort(w.lab);
  assert.deepEqual(await query<OrderRow>(port, EARLIER), earlier);
  await amcheckClean(port);
  const j = await judgeByHand(dir, port, null);
  assert.equal(j.l.discardedByRestore, undefined, 'a restore to latest discards nothing on purpose');
  assert.equal(j.l.lost, j.mine.lost);
  const archive = (await labStatus({ dir: w.lab })).archive!;
  assert.ok(archive, 'the lab reports its WAL archive');
  const boundMs = archive.archiveLagSeconds * 1000;
  t.diagnostic(
    `lost ${j.mine.lost} acknowledged writes, RPO ${rec.objectives.rpo.measuredSeconds} s; archive lag now ${archive.lagSeconds} s, bound ${archive.archiveLagSeconds} s`,
  );
  // The archive never lags more than archiveLag: nothing acknowledged longer ago than that before the loss may be missing.
  assert.equal(archive.archiveLagSeconds, 4);
  // 0.5 s: the archiver's own clock and a commit acknowledged just after it was written.
  if (j.l.lostWindow)
    assert.ok(
      j.l.faultMs - j.l.lostWindow.firstAckMs <= boundMs + 500,
      `lost writes reach back ${j.l.faultMs - j.l.lostWindow.firstAckMs} ms`,
    );
  assert.ok(
    rec.objectives.rpo.measuredSeconds * 1000 <= boundMs + 500,
    `RPO ${rec.objectives.rpo.measuredSeconds} s within the archive lag`,
  );
});

test('a segment missing from the WAL archive: exit 1, a SEV1 finding names it, the live database is not replaced', {
  timeout: 600_000,
}, async () => {
  const w = workspace('gap');
  await labUp({ dir: w.lab, replicas: 2, archiveLagMs: 4000 });
  const port = await primaryPort(w.lab);
  await seedOrders(port, 300);
  // Segments written after the base backup lab up took, each closed and archived.
  for (let i = 0; i < 3; i++) {
    await query(port, "INSERT INTO orders (item) SELECT 'filler ' || md5(g::text) FROM generate_series(1, 2000) g");
    await query(port, 'SELECT pg_switch_wal()');
  }
  await waitForArchive(w.lab);
  const r = await resolveBackupStore({ lab: labBlobSource(w.lab), container: LAB_BACKUP_CONTAINER });
  assert.ok(!('missing' in r));
  const sysid = (await query<{ id: string }>(port, 'SELECT system_identifier::text AS id FROM pg_control_system()'))[0]!.id;
  const victim = (await listArchivedWal(r.store, sysid)).filter((f) => parseSegmentName(f)).at(-2)!;
  await r.store.container.getBlockBlobClient(walFolder(r.store.prefix, sysid) + victim).delete();
  const pid = (await labStatus({ dir: w.lab })).database!.nodes.find((n) => n.inRecovery === false)!.pid;

  writeFileSync(w.file, drillYaml('{ fault: drop-table }'));
  const run = await drillCli(['run', w.file, '--results', w.results], w.env).done;
  const [dir] = runFolders(w.results);
  assert.ok(dir, run.stderr + run.stdout);
  const rec = record(dir);
  assert.equal(run.code, 1, run.stderr + run.stdout);
  assert.equal(rec.status, 'failed');
  const f = rec.findings.find(
    (x: { severity: string; title: string }) =>
      x.severity === 'SEV1' && x.title === 'Verification failed: WAL archive complete up to the restore target',
  );
  assert.ok(f, `a SEV1 finding names ${victim}: ${JSON.stringify(rec.findings)}`);
  assert.ok(f.detail.includes(victim), f.detail);
  assert.match(f.detail, /the live database was not replaced/);
  const outcome = restoreOutcome(dir);
  assert.ok(outcome.missingSegments.includes(victim), JSON.stringify(outcome.missingSegments));
  assert.equal(outcome.replaced, false);
  // The same postmaster still serves, and the table is still dropped: nothing was restored to an earlier point.
  const after = (await labStatus({ dir: w.lab })).database!.nodes.find((n) => n.inRecovery === false)!;
  assert.equal(after.pid, pid, 'the damaged primary was not replaced');
  assert.equal((await query<{ t: string | null }>(after.port, "SELECT to_regclass('orders')::text AS t"))[0]!.t, null);
});

test('bad input: exit 2 naming the field, nothing touched; drill plan shows the guard', { timeout: 300_000 }, async () => {
  const w = workspace('bad');
  // Not allowed on this target: refused at validation, before the lab is even started.
  writeFileSync(w.file, drillYaml('{ fault: drop-table }', ''));
  const refused = await drillCli(['run', w.file, '--results', w.results], w.env).done;
  assert.equal(refused.code, 2, refused.stderr + refused.stdout);
  assert.match(
    refused.stderr + refused.stdout,
    /scenarios\[0\]\.params\.fault: fault drop-table destroys data .*target\.allowDataLoss: true/,
  );
  assert.equal((await labStatus({ dir: w.lab })).up, false, 'the lab was not started');
  assert.deepEqual(runFolders(w.results), []);

  writeFileSync(w.file, drillYaml('{ fault: drop-table }'));
  const shown = await drillCli(['plan', w.file], w.env).done;
  assert.equal(shown.code, 0, shown.stderr + shown.stdout);
  assert.match(shown.stdout, /destructive data faults: allowed \(allowDataLoss: true\): test data/);

  // A table that does not exist: found at plan time and before a run, on the live lab.
  await labUp({ dir: w.lab, replicas: 2 });
  const port = await primaryPort(w.lab);
  const before = await query<OrderRow>(port, ALL_ORDERS);
  writeFileSync(w.file, drillYaml('{ fault: drop-table, table: invoices }'));
  const plan = await drillCli(['plan', w.file], w.env).done;
  assert.equal(plan.code, 2, plan.stderr + plan.stdout);
  assert.match(plan.stdout + plan.stderr, /scenarios\[0\]\.params\.table: .*invoices/);
  const run = await drillCli(['run', w.file, '--results', w.results], w.env).done;
  assert.equal(run.code, 2, run.stderr + run.stdout);
  assert.match(run.stderr, /scenarios\[0\]\.params\.table: .*invoices/);
  assert.match(run.stderr, /nothing: no load was sent and no action ran/);
  assert.deepEqual(runFolders(w.results), [], 'no run started');
  assert.deepEqual(await query<OrderRow>(port, ALL_ORDERS), before, 'orders untouched');
});

test('SIGINT during the restore: exit 4, and the rollback finishes the restore', { timeout: 600_000 }, async () => {
  const w = workspace('sigint');
  await labUp({ dir: w.lab, replicas: 2 });
  const earlier = await seedOrders(await primaryPort(w.lab), 300);
  writeFileSync(w.file, drillYaml('{ fault: drop-table }'));
  const run = drillCli(['run', w.file, '--results', w.results], w.env);
  const dir = await waitFor('the run folder', () => runFolders(w.results)[0], 120_000);
  await waitFor(
    'the restore to start',
    () =>
      existsSync(join(dir, 'events.jsonl')) && readEvents(dir).some((e) => e.type === 'action.intent' && e.name === 'restore from Blob'),
    180_000,
  );
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 4, r.stderr + r.stdout);
  const events = readEvents(dir);
  assert.ok(!events.some((e) => e.type === 'action.done' && e.name === 'restore from Blob'), 'the restore was cut short');
  const rb = events.find((e) => e.type === 'rollback.done' && e.name === 'destroy data');
  assert.ok(rb, `the rollback of the fault finished: ${JSON.stringify(events.filter((e) => String(e.type).startsWith('rollback')))}`);
  assert.notEqual(rb.alreadyHeld, true, 'the rollback did the restore, it did not find it done');
  const port = await primaryPort(w.lab);
  assert.deepEqual(await query<OrderRow>(port, EARLIER), earlier, 'the service ends on the restored database');
  await amcheckClean(port);
});

test('drill recover after SIGKILL during the restore ends on the restored database', { timeout: 600_000 }, async () => {
  const w = workspace('sigkill');
  await labUp({ dir: w.lab, replicas: 2 });
  const earlier = await seedOrders(await primaryPort(w.lab), 300);
  writeFileSync(w.file, drillYaml('{ fault: drop-table }'));
  const run = drillCli(['run', w.file, '--results', w.results], w.env);
  const dir = await waitFor('the run folder', () => runFolders(w.results)[0], 120_000);
  // Killed between two steps of the restore: the download done, the rest not.
  await waitFor(
    'the restore download to finish',
    () =>
      existsSync(join(dir, 'events.jsonl')) &&
      readEvents(dir).some((e) => e.type === 'log' && /^restore: download /.test(String(e.message))),
    180_000,
  );
  run.child.kill('SIGKILL');
  await run.done;
  const rec = await drillCli(['recover', '--results', w.results], w.env).done;
  assert.equal(rec.code, 0, rec.stderr + rec.stdout);
  const port = await primaryPort(w.lab);
  assert.deepEqual(await query<OrderRow>(port, EARLIER), earlier, 'the service ends on the restored database');
  await amcheckClean(port);
});
