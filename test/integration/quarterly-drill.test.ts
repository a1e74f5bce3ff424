import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AZURITE_ACCOUNT_KEY } from '../../lib/adapters/blob/index.ts';
import { labDown } from '../../lib/lab/index.ts';
import { quarterOfInstant } from '../../lib/record/quarterly/quarter.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

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

test('drills/quarterly.yaml on the lab: pod-kill, db-failover, backup and restore pass with RTO and RPO, and the record covers all three', {
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
    ['kill-one-replica', 'fail-over-primary', 'take-backup', 'restore-from-backup'],
  );
  for (const { rec } of runs) {
    t.diagnostic(
      `${rec.scenario}: ${rec.status}, RTO ${rec.objectives.rto.measuredSeconds} s, RPO ${rec.objectives.rpo.measuredSeconds ?? `null (${rec.objectives.rpo.reason})`}`,
    );
    assert.equal(rec.status, 'passed', rec.scenario);
    assert.equal(typeof rec.objectives.rto.measuredSeconds, 'number', `${rec.scenario}: RTO measured`);
    assert.equal(rec.objectives.rto.met, true);
    assert.equal(rec.objectives.rpo.targetSeconds, 900, `${rec.scenario}: RPO scored against the 15 min database target`);
    // An RPO is measured where data can be lost (the write ledger after the replica kill and the failover,
    // the restore's newest row); the backup step says why not, never a guess.
    if (rec.scenario !== 'take-backup') {
      assert.equal(typeof rec.objectives.rpo.measuredSeconds, 'number', `${rec.scenario}: RPO measured`);
      assert.equal(rec.objectives.rpo.met, true);
    } else {
      assert.equal(rec.objectives.rpo.measuredSeconds, null);
      assert.ok(rec.objectives.rpo.reason, `${rec.scenario}: an unmeasured RPO says why`);
    }
  }
  const failover = runs[1]!.rec;
  assert.ok(failover.objectives.rpo.ledger, 'the failover RPO comes from the write ledger');
  const restore = runs[3]!.rec;
  assert.match(restore.objectives.rpo.method, /newest data in the restored database/);
  assert.ok(
    restore.objectives.rpo.measuredSeconds < 600,
    `the backup was taken minutes before the restore at most: ${restore.objectives.rpo.measuredSeconds} s`,
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
  const quarter = quarterOfInstant(runs[0]!.rec.startedAt)!.id;
  const rec = await drillCli(['record', '--quarter', quarter, '--results', results], env).done;
  assert.ok(rec.code === 0 || rec.code === 1, rec.stderr);
  const record = JSON.parse(readFileSync(join(results, 'records', quarter, 'record.json'), 'utf8'));
  const mine = record.coverage.items.filter((i: { drill: string }) => i.drill === 'quarterly');
  assert.deepEqual(
    mine.map((i: { scenario: string; status: string; cadence: string }) => [i.scenario, i.cadence, i.status]),
    [
      ['kill-one-replica', 'quarterly', 'ran'],
      ['fail-over-primary', 'quarterly', 'ran'],
      ['take-backup', 'quarterly', 'ran'],
      ['restore-from-backup', 'quarterly', 'ran'],
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
