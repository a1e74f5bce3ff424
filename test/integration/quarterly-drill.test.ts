import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AZURITE_ACCOUNT_KEY } from '../../lib/adapters/blob/index.ts';
import { labDown } from '../../lib/lab/index.ts';
import { quarterOfInstant } from '../../lib/record/quarterly/quarter.ts';
import { drillCli, readEvents, REPO, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';
import { assertRto } from '../support/rto.ts';

/**
 * drills/quarterly.yaml end to end through the CLI, the way CI or an SRE runs it: the lab (with its Azurite)
 * comes up, a replica is killed, the primary fails over, a backup is taken of the new primary by the
 * runbook step `drill backup lab`, and restored into a scratch cluster and verified. Every entry's run
 * record carries RTO and RPO; `drill record` then covers all three kinds. No storage variable is set: the
 * lab's Azurite is the backup store, and its key (public, but a key) shows up nowhere.
 */
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) {
    await labDown({ dir: join(d, 'lab') }).catch(() => undefined);
    rmSync(d, { recursive: true, force: true });
  }
});

const KEYS = [AZURITE_ACCOUNT_KEY, encodeURIComponent(AZURITE_ACCOUNT_KEY)];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/** Every process's argv, sampled while the drill runs: a key passed on a command line would show here. */
function watchArgv(): { stop(): string[] } {
  const seen: string[] = [];
  const timer = setInterval(() => {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (KEYS.some((k) => argv.includes(k))) seen.push(argv.split('\0').join(' '));
      } catch {
        // gone meanwhile
      }
    }
  }, 250);
  return { stop: () => (clearInterval(timer), seen) };
}

test('drills/quarterly.yaml on the lab: pod-kill, db-failover, backup, restore and data loss pass with RTO and RPO, and the record covers every entry', {
  timeout: 600_000,
}, async (t) => {
  const root = scratchDir('quarterly');
  dirs.push(root);
  const results = join(root, 'results');
  const env = {
    DRILL_LAB_DIR: join(root, 'lab'),
    AZURE_STORAGE_CONNECTION_STRING: '',
    AZURE_STORAGE_ACCOUNT_URL: '',
    AZURE_STORAGE_SAS_TOKEN: '',
    AZURE_STORAGE_ACCOUNT: '',
    AZURE_STORAGE_KEY: '',
    DRILL_BACKUP_CONTAINER: '',
  };
  const argv = watchArgv();
  const t0 = performance.now();
  const r = await drillCli(['run', 'drills/quarterly.yaml', '--results', results], env).done;
  const wallS = (performance.now() - t0) / 1000;
  const keyInArgv = argv.stop();
  t.diagnostic(`drill run drills/quarterly.yaml: exit ${r.code} in ${wallS.toFixed(1)} s`);
  // On failure, say which entry failed and why: the verdict lines and the steady-state or abort reasons.
  const verdicts = (r.stdout + r.stderr)
    .split('\n')
    .filter((l) => /^\s*(PASSED|FAILED|ABORTED|ERROR|NOT INJECTED|STEADY)|not injecting|aborting|not recovered|SEV[12]/.test(l));
  assert.equal(
    r.code,
    0,
    `exit ${r.code} (load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}):\n${verdicts.join('\n')}`,
  );
  assert.match(
    r.stdout + r.stderr,
    /backups: blob:devstoreaccount1\/lab-backups\/ on the lab's Azurite http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1/,
  );

  const runs = runFolders(results).map((d) => ({ dir: d, rec: JSON.parse(readFileSync(join(d, 'run.json'), 'utf8')) }));
  assert.deepEqual(
    runs.map((x) => x.rec.scenario),
    ['kill-one-replica', 'fail-over-primary', 'take-backup', 'restore-from-backup', 'delete-all-orders'],
  );
  for (const { rec } of runs) {
    t.diagnostic(
      `${rec.scenario}: ${rec.status}, RTO ${rec.objectives.rto.measuredSeconds} s, RPO ${rec.objectives.rpo.measuredSeconds ?? `null (${rec.objectives.rpo.reason})`}`,
    );
    assert.equal(rec.status, 'passed', rec.scenario);
    assert.equal(rec.objectives.rto.met, true);
    assert.equal(rec.objectives.rpo.targetSeconds, 900, `${rec.scenario}: RPO scored against the 15 min database target`);
    // An RPO is measured where data can be lost (the write ledger after the replica kill and the failover,
    // the restore's newest row); the backup step says why not, never a guess.
    if (rec.scenario !== 'take-backup') assert.equal(rec.objectives.rpo.met, true);
    else {
      assert.equal(rec.objectives.rpo.measuredSeconds, null);
      assert.ok(rec.objectives.rpo.reason, `${rec.scenario}: an unmeasured RPO says why`);
    }
  }
  // Each entry's RTO is recovered − fault-injected on its own marks (assertRto), in a range set by what it is made
  // of; the measured figures are the README's (once, load average 6-8). The policy's recovery window is 5 s here.
  const [kill, failover, backup, restore, deleted] = runs.map((x) => x.rec);
  // The DELETE without WHERE restored away: nothing acknowledged before it lost; the writes the service took on the
  // emptied table until the restore are counted apart, and a finding asks the runbook what becomes of them.
  assert.equal(deleted.objectives.rpo.lostWrites, 0, JSON.stringify(deleted.objectives.rpo.ledger));
  const discarded = deleted.objectives.rpo.ledger.discardedByRestore;
  assert.ok(discarded, 'the record counts the writes the restore discarded');
  assert.equal(
    deleted.findings.some(
      (f: { title: string }) => f.title === `${discarded.writes} acknowledged writes discarded by the point-in-time restore`,
    ),
    discarded.writes > 0,
    JSON.stringify(deleted.findings),
  );
  // The DELETE until users are served their orders again: download, replay, promote, checks, repoint (12.2 s
  // measured at load average 8; the standby is rebuilt after). No restore is quicker than a base backup's download.
  assertRto(deleted, { min: 1, max: 90, why: 'a point-in-time restore of the lab database (12.2 s measured)' });
  // A replacement replica serving (Node start-up and its first readiness, README 1.35 s), under the 5 s window,
  // so an RTO with the window added fails.
  assertRto(kill, { min: 0.1, max: 4, why: 'a replacement replica starting and serving (1.35 s measured), under the 5 s window' });
  // The pod kill loses nothing: the service answers a write after it commits, and the database is untouched.
  assert.equal(kill.objectives.rpo.measuredSeconds, 0, JSON.stringify(kill.objectives.rpo));
  assert.equal(kill.objectives.rpo.lostWrites, 0);
  // The kill, pg_promote and the repoint (0.1-0.7 s in pg-promote.test.ts), then the SLOs back: 1.80 s measured,
  // 2.81 s the worst of 10 failovers at load average up to 11 (README); under the 5 s window.
  assertRto(failover, { max: 4.5, why: 'kill, promotion, repoint and the SLOs back (1.80 s measured, 2.81 s worst)' });
  assert.ok(failover.objectives.rpo.ledger, 'the failover RPO comes from the write ledger');
  // No replication stall in this entry: the walsender ships each commit within milliseconds of it, so at most a
  // commit or two in flight at the kill is lost (README: 0 lost in 10 of 10 async failovers without a stall).
  assert.ok(failover.objectives.rpo.measuredSeconds < 1, `failover RPO ${failover.objectives.rpo.measuredSeconds} s`);
  assert.ok(failover.objectives.rpo.lostWrites <= 5, `lost ${failover.objectives.rpo.lostWrites} writes without a stall`);
  // The runbook step's RTO: recovered is where the SLOs held again after the backup started; 0 when they never
  // broke (hence min −1 ms), else up to the backup's length (tsx start-up, pg_dump, upload: 6.2 s measured).
  assertRto(backup, { min: -0.001, max: 30, why: 'a logical backup of the lab database (6.2 s measured) at most' });
  // Restore start to verified: initdb, pg_restore, pg_amcheck, checksums (4.15 s measured).
  assertRto(restore, { min: 0.5, max: 30, why: 'initdb, pg_restore, pg_amcheck and checksums (4.15 s measured)' });
  assert.match(restore.objectives.rpo.method, /newest data in the restored database/);
  // The restored backup is the one take-backup made (the lab is new, so there was none younger than 10 min): its
  // newest row was written after that entry's fault started, less the gap between two writes (5 a second), and
  // before that entry ended. So the RPO lies between restore point − take-backup's end and restore point − its start.
  const requested = Date.parse(/restore point requested \((\S+)\)/.exec(restore.objectives.rpo.method)![1]!);
  const backupStart = Date.parse(backup.marks.find((m: { name: string }) => m.name === 'fault-injected').at);
  const rpo = restore.objectives.rpo.measuredSeconds;
  assert.ok(
    rpo >= (requested - Date.parse(backup.endedAt)) / 1000 && rpo <= (requested - backupStart) / 1000 + 2,
    `restore RPO ${rpo} s: restore point ${(requested - Date.parse(backup.endedAt)) / 1000} s after take-backup ended, ${(requested - backupStart) / 1000} s after its backup began`,
  );
  const probes = readEvents(runs[3]!.dir).filter((e) => e.type === 'probe') as unknown as Array<{
    name: string;
    ok: boolean;
    detail: string;
  }>;
  for (const name of [
    'download: size and sha256 match the manifest',
    'restored data verified (pg_amcheck, rows and checksums, smoke query)',
    'backup policy: newest backup younger than the maximum age',
    'backup policy: backups reach back over the coverage, without gaps',
    'backup policy: nothing older than the retention',
  ]) {
    const p = probes.find((x) => x.name === name);
    assert.equal(p?.ok, true, `${name}: ${p?.detail ?? 'not run'}`);
  }
  assert.match(
    probes.find((x) => x.name.startsWith('restored data verified'))!.detail,
    /pg_amcheck: no corruption found in orders; rows match the manifest/,
  );
  assert.equal(restore.environment.target.backups.container, 'lab-backups');
  assert.equal(restore.environment.target.backups.scratchParent, join(root, 'lab', 'restores'));

  // The quarter's record: every entry of the quarterly drill ran this quarter.
  // The policy is this drill alone, so nothing else can be a coverage gap: every entry ran and passed, and
  // `drill record` exits 0 (1 would mean a failed run or a gap, which this quarter does not have).
  const quarter = quarterOfInstant(runs[0]!.rec.startedAt)!.id;
  const policy = join(root, 'policy');
  mkdirSync(policy, { recursive: true });
  copyFileSync(join(REPO, 'drills/quarterly.yaml'), join(policy, 'quarterly.yaml'));
  const rec = await drillCli(['record', '--quarter', quarter, '--results', results, '--drills', policy], env).done;
  const record = JSON.parse(readFileSync(join(results, 'records', quarter, 'record.json'), 'utf8'));
  assert.equal(record.coverage.gaps, 0, JSON.stringify(record.coverage.items));
  assert.equal(rec.code, 0, rec.stderr + rec.stdout);
  const mine = record.coverage.items.filter((i: { drill: string }) => i.drill === 'quarterly');
  assert.deepEqual(
    mine.map((i: { scenario: string; status: string; cadence: string }) => [i.scenario, i.cadence, i.status]),
    [
      ['kill-one-replica', 'quarterly', 'ran'],
      ['fail-over-primary', 'quarterly', 'ran'],
      ['take-backup', 'quarterly', 'ran'],
      ['restore-from-backup', 'quarterly', 'ran'],
      ['delete-all-orders', 'quarterly', 'ran'],
    ],
  );

  assert.deepEqual(keyInArgv, [], 'no process had the account key in its argv');
  for (const f of filesUnder(results)) {
    const text = readFileSync(f, 'utf8');
    assert.ok(!KEYS.some((k) => text.includes(k)), `the key is in ${f}`);
  }
  for (const f of filesUnder(join(root, 'lab', 'logs')))
    assert.ok(!KEYS.some((k) => readFileSync(f, 'utf8').includes(k)), `the key is in ${f}`);
  assert.ok(!KEYS.some((k) => r.stdout.includes(k) || r.stderr.includes(k) || rec.stdout.includes(k)), 'the key is in the CLI output');
});
