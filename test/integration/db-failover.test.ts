import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

/**
 * db-failover end to end on the real lab (a PostgreSQL primary and streaming standby, the orders service,
 * the load), through `drill run` as a person runs it. The lab is brought up by each test, so the run leaves
 * it up and the test can look at the database itself afterwards; every lab is taken down at the end.
 */
const scratch: string[] = [];
after(async () => {
  for (const dir of scratch) {
    await labDown({ dir }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

function workspace(name: string) {
  const lab = scratchDir(`lab-${name}`);
  const results = scratchDir(`results-${name}`);
  scratch.push(lab, results);
  return { lab, results, env: { DRILL_LAB_DIR: lab } };
}

function record(runDir: string) {
  return JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
}

/**
 * RTO, RPO and verification met. On a machine shared with other test runs a latency or availability SLO
 * can still miss at baseline (exit 1): that is the machine, not the failover, so only SLO misses are allowed.
 */
function assertFailoverObjectivesMet(rec: any, code: number | null, output: string): void {
  assert.equal(rec.objectives.rto.met, true, `RTO: ${JSON.stringify(rec.objectives.rto)}`);
  assert.equal(rec.objectives.rpo.met, true, `RPO: ${JSON.stringify(rec.objectives.rpo)}`);
  assert.equal(rec.objectives.verification.met, true, JSON.stringify(rec.objectives.verification));
  if (code === 0) {
    assert.equal(rec.status, 'passed');
    return;
  }
  assert.equal(code, 1, output);
  assert.ok(
    rec.objectives.slo.some((x: { met: boolean }) => x.met === false),
    `exit 1 only for a missed SLO: ${output.slice(-3000)}`,
  );
}

async function database(lab: string) {
  const s = await labStatus({ dir: lab });
  assert.ok(s.database, `lab ${lab} has a database status`);
  return s.database;
}

/** The lab has one primary and one standby that streams from it. */
async function assertPair(
  lab: string,
): Promise<{ primary: { name: string; port: number; pid: number | null }; standby: { name: string; pid: number | null } }> {
  const db = await database(lab);
  const primaries = db.nodes.filter((n) => n.alive && n.inRecovery === false);
  const standbys = db.nodes.filter((n) => n.alive && n.inRecovery === true && n.streaming === true);
  assert.equal(primaries.length, 1, `one primary: ${JSON.stringify(db.nodes)}`);
  assert.equal(standbys.length, 1, `one streaming standby: ${JSON.stringify(db.nodes)}`);
  return { primary: primaries[0]!, standby: standbys[0]! };
}

interface Row {
  seq: number;
  token: string;
  ackMs: number | null;
  outcome: string;
}

/**
 * The test's own read-back, independent of the harness's checker: writes.tsv parsed by hand, the tokens read
 * straight from the primary's port (not through the endpoint), every write put in its class here, and the
 * counts compared with what the record says.
 */
async function checkIndependently(runDir: string, primaryPort: number) {
  const rec = record(runDir);
  const l = rec.objectives.rpo.ledger;
  const lines = readFileSync(join(runDir, 'writes.tsv'), 'utf8').trim().split('\n');
  assert.equal(lines[0], 'seq\ttoken\tsent_ms\tack_ms\toutcome');
  const all: Row[] = lines.slice(1).map((line) => {
    const [seq, token, , ack, outcome] = line.split('\t');
    return { seq: Number(seq), token: token!, ackMs: ack === '' ? null : Number(ack), outcome: outcome! };
  });
  // The harness judged the writes sent before its read-back; the rest went out during cool-down.
  const judged = all.slice(0, l.total);
  const tag = all[0]!.token.slice(0, 8);
  assert.ok(
    all.every((r) => r.token.startsWith(tag)),
    'every token carries the run tag',
  );

  const c = new pg.Client({ host: '127.0.0.1', port: primaryPort, user: 'postgres', database: 'orders' });
  await c.connect();
  let rows: Array<{ token: string; seq: string }>;
  try {
    rows = (await c.query<{ token: string; seq: string }>('SELECT token, seq::text FROM orders WHERE token LIKE $1', [`${tag}%`])).rows;
  } finally {
    await c.end();
  }
  const present = new Map(rows.map((r) => [r.token, Number(r.seq)]));
  assert.equal(present.size, rows.length, 'no token stored twice');

  const mine = { survived: 0, lost: 0, unknownPresent: 0, unknownAbsent: 0, failedPresent: 0, failedAbsent: 0 };
  const lost: Row[] = [];
  for (const w of judged) {
    const here = present.has(w.token);
    if (here) assert.equal(present.get(w.token), w.seq, `row ${w.token} keeps the seq its write carried`);
    if (w.outcome === 'ok') {
      if (here) mine.survived++;
      else {
        mine.lost++;
        lost.push(w);
      }
    } else if (w.outcome === 'unknown') here ? mine.unknownPresent++ : mine.unknownAbsent++;
    else if (w.outcome === 'failed') here ? mine.failedPresent++ : mine.failedAbsent++;
    else assert.fail(`write ${w.seq} has outcome ${w.outcome}`);
  }
  const sent = new Set(all.map((r) => r.token));
  const strangers = rows.filter((r) => !sent.has(r.token)).length;
  const classes = mine.survived + mine.lost + mine.unknownPresent + mine.unknownAbsent + mine.failedPresent + mine.failedAbsent;
  assert.equal(classes, judged.length, 'every write in exactly one class');
  assert.deepEqual(
    {
      survived: l.survived,
      lost: l.lost,
      unknownPresent: l.unknownPresent,
      unknownAbsent: l.unknownAbsent,
      failedPresent: l.failedPresent,
      failedAbsent: l.failedAbsent,
      unexpected: l.unexpected,
    },
    { ...mine, unexpected: strangers },
    'the record counts what the database holds',
  );
  assert.equal(rec.objectives.rpo.lostWrites, mine.lost);
  assert.equal(rec.objectives.rpo.unknownWrites, mine.unknownAbsent);
  assert.deepEqual(
    l.lostSample,
    lost.slice(0, 20).map((w) => w.token),
  );

  // RPO by hand: the newest acknowledged write whose every predecessor by ack time survived.
  if (lost.length > 0) {
    const acked = judged.filter((w) => w.outcome === 'ok').sort((a, b) => a.ackMs! - b.ackMs! || a.seq - b.seq);
    const firstLost = acked.findIndex((w) => !present.has(w.token));
    assert.ok(firstLost > 0, 'some acknowledged writes survived before the loss');
    // A lost write acknowledged after the fault (the old primary still answering) extends the window to its ack.
    const lastLostAck = Math.max(...lost.map((w) => w.ackMs!));
    const rpo = Math.max(1, Math.max(l.faultMs, lastLostAck) - acked[firstLost - 1]!.ackMs!) / 1000;
    assert.ok(
      Math.abs(rec.objectives.rpo.measuredSeconds - rpo) < 0.002,
      `RPO ${rec.objectives.rpo.measuredSeconds} s vs ${rpo} s by hand`,
    );
    assert.equal(l.lostWindow.firstAckMs.toFixed(3), Math.min(...lost.map((w) => w.ackMs!)).toFixed(3));
  } else assert.equal(rec.objectives.rpo.measuredSeconds, 0);
  return { rec, counts: mine, judged: judged.length };
}

test('async, 1 s replication stall: acknowledged writes are lost and each write is in exactly one class; then a second failover in a row', {
  timeout: 420_000,
}, async (t) => {
  const w = workspace('fo-async');
  await labUp({ dir: w.lab, replicas: 2, replication: 'async' });
  const before = await assertPair(w.lab);

  const r = await drillCli(['run', 'test/fixtures/drills/failover-async-stall.yaml', '--results', w.results, '--json'], w.env).done;
  const [dir] = runFolders(w.results);
  assert.ok(dir, r.stderr);
  const rec = record(dir);
  assertFailoverObjectivesMet(rec, r.code, r.stderr + r.stdout);
  assert.equal(rec.scenarioModule, 'db-failover');
  for (const m of ['fault-injected', 'primary-killed', 'failover-writable', 'recovered', 'verified', 'rolled-back']) {
    assert.ok(
      rec.marks.some((x: { name: string }) => x.name === m),
      `mark ${m}`,
    );
  }
  assert.deepEqual(
    rec.actions.map((a: { name: string; status: string }) => [a.name, a.status]),
    [
      ['stall replication', 'done'],
      ['kill primary', 'done'],
      ['fail over', 'done'],
    ],
  );
  assert.deepEqual(
    rec.actions.map((a: { rollback: { status: string } }) => a.rollback.status),
    ['done', 'done', 'none'],
  );
  assert.equal(rec.objectives.rpo.targetSeconds, 900);
  assert.equal(rec.objectives.rpo.met, true);

  // After the run the pair is whole again, roles swapped: the old primary streams from the promoted standby.
  const afterRun = await assertPair(w.lab);
  assert.equal(afterRun.primary.name, before.standby.name);
  assert.equal(afterRun.standby.name, before.primary.name);
  assert.notEqual(afterRun.standby.pid, before.primary.pid, 'the old primary was killed and restarted');

  const { counts, judged } = await checkIndependently(dir!, afterRun.primary.port);
  t.diagnostic(
    `async with a 1 s stall: ${judged} writes judged, ${JSON.stringify(counts)}, RPO ${rec.objectives.rpo.measuredSeconds} s, RTO ${rec.objectives.rto.measuredSeconds} s`,
  );
  assert.ok(counts.lost > 0, 'a stalled async standby loses acknowledged writes');
  assert.equal(counts.failedPresent, 0);

  // A second failover in a row, on the pair the rollback rebuilt: no stall, pg_ctl stop -m immediate.
  const again = await drillCli(['run', 'test/fixtures/drills/failover-async-nostall.yaml', '--results', w.results, '--json'], w.env).done;
  const second = runFolders(w.results).find((d) => d !== dir)!;
  assert.ok(second, again.stderr);
  const rec2 = record(second);
  assertFailoverObjectivesMet(rec2, again.code, again.stderr + again.stdout);
  assert.deepEqual(
    rec2.actions.map((a: { targets: string[] }) => a.targets.length),
    [0, 1, 1],
    'no stall: the stall action hit nothing',
  );
  const back = await assertPair(w.lab);
  assert.equal(back.primary.name, before.primary.name, 'failed back over to the first node');
  const second2 = await checkIndependently(second, back.primary.port);
  t.diagnostic(
    `async, no stall, stop -m immediate: ${second2.judged} writes judged, ${JSON.stringify(second2.counts)}, RTO ${rec2.objectives.rto.measuredSeconds} s`,
  );
});

test('sync, three failovers in a row with a stall before each kill: no acknowledged write lost', { timeout: 600_000 }, async (t) => {
  const w = workspace('fo-sync');
  await labUp({ dir: w.lab, replicas: 2, replication: 'sync' });
  const r = await drillCli(['run', 'test/fixtures/drills/failover-sync-repeated.yaml', '--results', w.results, '--json'], w.env).done;
  const dirs = runFolders(w.results);
  assert.equal(dirs.length, 3, r.stderr);
  const pair = await assertPair(w.lab);
  const db = await database(w.lab);
  assert.equal(db.replication, 'sync');
  assert.equal(db.nodes.find((n) => n.name === pair.standby.name)!.syncState, 'sync', 'the rejoined standby is synchronous again');
  for (const dir of dirs) {
    const rec = record(dir);
    assertFailoverObjectivesMet(rec, rec.exitCode, `${rec.scenario}: ${rec.status}; ${r.stderr.slice(-2000)}`);
    assert.deepEqual(
      rec.actions.map((a: { status: string }) => a.status),
      ['done', 'done', 'done'],
      rec.scenario,
    );
    assert.deepEqual(
      rec.actions.map((a: { rollback: { status: string } }) => a.rollback.status),
      ['done', 'done', 'none'],
      rec.scenario,
    );
    const l = rec.objectives.rpo.ledger;
    assert.equal(rec.objectives.rpo.lostWrites, 0, `${rec.scenario}: ${JSON.stringify(l)}`);
    assert.equal(rec.objectives.rpo.measuredSeconds, 0);
    assert.ok(l.acknowledged > 0);
    assert.equal(l.survived + l.lost + l.unknownPresent + l.unknownAbsent + l.failedPresent + l.failedAbsent, l.total);
    t.diagnostic(
      `${rec.scenario}: ${JSON.stringify({ total: l.total, acknowledged: l.acknowledged, lost: l.lost, unknownPresent: l.unknownPresent, unknownAbsent: l.unknownAbsent })}, RTO ${rec.objectives.rto.measuredSeconds} s`,
    );
  }
  // The last run's ledger, checked by hand against the primary the third failover left.
  const last = await checkIndependently(dirs[2]!, pair.primary.port);
  assert.equal(last.counts.lost, 0);
});

test('a standby that lags or is down blocks the failover: exit 3, nothing stalled or killed', { timeout: 300_000 }, async () => {
  const w = workspace('fo-nostandby');
  await labUp({ dir: w.lab, replicas: 2, replication: 'async' });
  const { primary, standby } = await assertPair(w.lab);

  // Lagging: the test freezes the walsender itself before the run, so the baseline's writes pile up
  // unreplayed; a drill whose limit is 1 s of replay lag must refuse to inject.
  const c = new pg.Client({ host: '127.0.0.1', port: primary.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  // The standby's walsender, not the lab's WAL archiver (it streams from its own slot).
  const senders = (
    await c.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_replication
        WHERE pid IS DISTINCT FROM (SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'drill_wal_archive')`,
    )
  ).rows.map((x) => x.pid);
  await c.end();
  assert.equal(senders.length, 1);
  process.kill(senders[0]!, 'SIGSTOP');
  let lagging: Awaited<ReturnType<typeof drillCli>['done']>;
  try {
    lagging = await drillCli(['run', 'test/fixtures/drills/failover-lag-limit.yaml', '--results', w.results], w.env).done;
  } finally {
    process.kill(senders[0]!, 'SIGCONT');
  }
  assert.equal(lagging.code, 3, lagging.stderr + lagging.stdout);
  assert.match(lagging.stderr, /steady state not met: replay lag below the limit \(.*replay lag \d+ ms.*limit 1000 ms: \S+ over it\)/);
  assert.equal((await database(w.lab)).nodes.find((n) => n.name === primary.name)!.pid, primary.pid, 'the primary was not touched');
  await assertPair(w.lab);

  // Down: the standby's server is stopped.
  const standbyDir = (await database(w.lab)).nodes.find((n) => n.name === standby.name)!.dataDir;
  await stopCluster(standbyDir, 'fast');

  const r = await drillCli(['run', 'test/fixtures/drills/failover-async-stall.yaml', '--results', w.results], w.env).done;
  assert.equal(r.code, 3, r.stderr + r.stdout);
  assert.match(r.stdout + r.stderr, /steady state not met: .*standby streaming \(primary \S+; 0\/1 streaming standby needed/);
  const dirs = runFolders(w.results);
  assert.equal(dirs.length, 2);
  for (const d of dirs) assert.equal(readEvents(d).filter((e) => e.type === 'action.intent').length, 0, `${d}: no action journaled`);
  const dir = dirs.find((d) => /-async-stall-/.test(d));
  assert.equal(readEvents(dir!).filter((e) => e.type === 'action.intent').length, 0, 'no action journaled');
  const rec = record(dir!);
  assert.equal(rec.status, 'aborted');
  assert.ok(rec.actions.every((a: { status: string }) => a.status === 'not-run'));
  const db = await database(w.lab);
  const still = db.nodes.find((n) => n.name === primary.name)!;
  assert.equal(still.pid, primary.pid, 'the same primary postmaster');
  assert.equal(still.inRecovery, false, 'still the primary');
});

test('SIGINT during the replication stall: the walsender is resumed, nothing is killed, exit 4', { timeout: 240_000 }, async () => {
  const w = workspace('fo-sigint');
  await labUp({ dir: w.lab, replicas: 2, replication: 'async' });
  const before = await assertPair(w.lab);
  const run = drillCli(['run', 'test/fixtures/drills/failover-long-stall.yaml', '--results', w.results], w.env);
  await waitFor('the stall to start', () => /replication stalled/.test(run.output()), 120_000);
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 4, r.stderr + r.stdout);
  const [dir] = runFolders(w.results);
  const rec = record(dir!);
  assert.equal(rec.status, 'aborted');
  assert.deepEqual(
    rec.actions.map((a: { status: string }) => a.status),
    ['failed', 'not-run', 'not-run'],
  );
  assert.equal(rec.actions[0].rollback.status, 'done');
  assert.match(
    rec.actions[0].rollback.detail,
    /^found walsender pid \d+ on n1 stopped \(state T\): the standby receives no WAL; SIGCONT to 1 of the 1 walsenders the stall stopped; now no walsender stopped$/,
  );
  // The same primary, and its standby streams again: the frozen walsender was woken, not left stopped.
  const after = await assertPair(w.lab);
  assert.equal(after.primary.name, before.primary.name);
  assert.equal(after.primary.pid, before.primary.pid);
});
