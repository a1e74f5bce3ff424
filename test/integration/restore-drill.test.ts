import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY, createAccountSasToken } from '../../lib/adapters/blob/index.ts';
import { takeLogicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { tableFacts } from '../../lib/adapters/postgres/backup/facts.ts';
import { stampOf } from '../../lib/backup/naming.ts';
import { makeTempDir, type TempDir } from '../support/tmp.ts';
import { drillCli, runFolders, type CliResult } from '../support/cli.ts';
import { startBackupSource, type BackupSource } from '../support/backup-source.ts';
import { assertRto } from '../support/rto.ts';

/**
 * The monthly restore test through the CLI, as CI runs it, on real Azurite and PostgreSQL: `drill backup`
 * (logical, physical, WAL), then `drill run drills/monthly-restore.yaml --junit`; and the ways a restore
 * fails (corrupted blob, truncated blob, missing manifest, no backup, a stale backup), each exit 1 with
 * a clear message and the source untouched. Secrets are canaries: none may reach output, records or argv.
 */
let tmp: TempDir;
let source: BackupSource;
const PG_CANARY = 'pg-canary-Zq81xvT0aa';
let sas = '';
let sig = '';

before(async () => {
  tmp = await makeTempDir('restore-drill');
  source = await startBackupSource(tmp.path);
  sas = createAccountSasToken({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_ACCOUNT_KEY, permissions: 'rwdlac' });
  sig = new URLSearchParams(sas).get('sig')!;
});
after(async () => {
  await source?.stop();
  await tmp?.remove();
});

/** The drill reads storage through a SAS (its signature is a canary); `drill backup` through the connection string (its key is one). */
const sasEnv = () => ({ AZURE_STORAGE_ACCOUNT_URL: source.az.blobEndpoint, AZURE_STORAGE_SAS_TOKEN: sas, PGPASSWORD: PG_CANARY });
const keyEnv = () => ({ ...source.env, PGPASSWORD: PG_CANARY });

/** Runs the CLI while sampling every process's argv, so a secret passed on a command line is caught. */
async function cliWatchingArgv(args: string[], env: Record<string, string>): Promise<{ r: CliResult; argv: string }> {
  const run = drillCli(args, env);
  let argv = '';
  const timer = setInterval(() => {
    try {
      argv += execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    } catch {
      /* ps raced an exiting process */
    }
  }, 100);
  try {
    return { r: await run.done, argv };
  } finally {
    clearInterval(timer);
  }
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function assertNoSecrets(where: string, text: string): void {
  for (const [name, secret] of [
    ['SAS signature', sig],
    ['encoded SAS signature', encodeURIComponent(sig)],
    ['account key', AZURITE_ACCOUNT_KEY],
    ['PGPASSWORD', PG_CANARY],
  ] as const) {
    assert.equal(text.includes(secret), false, `${name} leaked into ${where}`);
  }
}

const record = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));

async function sourceFacts() {
  const c = new pg.Client({ host: '127.0.0.1', port: source.port, user: 'postgres', database: 'orders' });
  await c.connect();
  try {
    return await tableFacts(c);
  } finally {
    await c.end();
  }
}

test('drill backup (logical, physical, WAL) then the monthly restore drill: exit 0, JUnit per objective, no secret anywhere', {
  timeout: 900_000,
}, async () => {
  const argvSeen: string[] = [];
  const newestRow = async () =>
    (await source.query<{ newest: Date }>('SELECT max(created_at) AS newest FROM orders'))[0]!.newest.toISOString();
  // The newest row the backups can hold: nothing writes to the source between here and the after-backups insert.
  const newestAtBackups = await newestRow();
  for (const kind of ['logical', 'physical']) {
    const { r, argv } = await cliWatchingArgv(
      [
        'backup',
        source.url,
        '--container',
        'pg-backups',
        '--prefix',
        'orders',
        '--kind',
        kind,
        '--freshness',
        'SELECT max(created_at) FROM orders',
      ],
      keyEnv(),
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`${kind} backup of orders done in .* MB/s`));
    assert.match(r.stdout, /manifest {2}orders\/postgres\/\d+\/(logical\/orders|physical)\/\d{8}T\d{9}Z\/manifest\.json/);
    assertNoSecrets(`drill backup ${kind} output`, r.stdout + r.stderr);
    argvSeen.push(argv);
  }
  // T: rows written after both backups, so only the archived WAL carries them. created_at is the server's
  // clock_timestamp() on this machine's clock, so every one of them is at or after T.
  const T = Date.now();
  await source.insertOrders(50, 'after-backups');
  const newestAfterInsert = await newestRow();
  assert.ok(
    Date.parse(newestAfterInsert) >= T,
    `after-backups rows stamped ${newestAfterInsert}, at or after ${new Date(T).toISOString()}`,
  );
  const wal = await cliWatchingArgv(['backup', source.url, '--container', 'pg-backups', '--prefix', 'orders', '--kind', 'wal'], keyEnv());
  assert.equal(wal.r.code, 0, wal.r.stderr);
  assert.match(wal.r.stdout, /WAL archive up to [0-9A-F]+\/[0-9A-F]+: [1-9]\d* segment\(s\) uploaded/);

  const results = join(tmp.path, 'results-ok');
  const junit = join(tmp.path, 'junit-ok.xml');
  const { r, argv } = await cliWatchingArgv(['run', 'drills/monthly-restore.yaml', '--junit', junit, '--results', results], sasEnv());
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stderr, /no load \(no service\)/);
  const dirs = runFolders(results);
  assert.equal(dirs.length, 2);
  for (const dir of dirs) {
    const rec = record(dir);
    assert.equal(rec.status, 'passed', JSON.stringify(rec.objectives));
    assert.equal(rec.target, 'blob:pg-backups/orders/');
    assert.equal(rec.load.reason, 'no load ran');
    assert.deepEqual(rec.objectives.slo, []);
    assert.equal(rec.objectives.rto.met, true);
    // RTO = restore start to verified: download a few hundred kB, initdb (or untar the base backup and replay
    // a few WAL segments), pg_restore 2,550 rows, pg_amcheck and the checksums. The quarterly drill's larger
    // restore measured 4.15 s at load average 6-8 (README); 30 s is 7x that for a loaded 2-core machine, and
    // fails a restore that waits on a slow poll or a timeout. No restore is done in under 0.5 s (initdb alone).
    assertRto(rec, { min: 0.5, max: 30, why: 'initdb or base-backup start, a 2,550-row restore and its verification' });
    assert.equal(rec.objectives.rpo.met, true);
    // RPO = restore point requested − newest data in the restored database, both quoted in the method: the
    // figure must be exactly their difference (the bounds on the newest data are set per kind below).
    const [, requestedAt, newest] = /restore point requested \((\S+)\) - newest data in the restored database \((\S+), /.exec(
      rec.objectives.rpo.method,
    ) ?? [null, '', ''];
    assert.ok(requestedAt && newest, rec.objectives.rpo.method);
    assert.ok(
      Math.abs(rec.objectives.rpo.measuredSeconds - (Date.parse(requestedAt!) - Date.parse(newest!)) / 1000) <= 0.001,
      `RPO ${rec.objectives.rpo.measuredSeconds} s is not ${requestedAt} - ${newest}`,
    );
    assert.equal(rec.objectives.verification.met, true);
    assert.ok(
      rec.objectives.verification.probes.some(
        (p: { name: string; detail: string }) =>
          /rows and checksums/.test(p.name) && /counts and checksums as at backup time|tables present/.test(p.detail),
      ),
    );
    for (const m of ['fault-injected', 'recovered', 'verified'])
      assert.ok(
        rec.marks.some((x: { name: string }) => x.name === m),
        `mark ${m}`,
      );
    assert.equal(rec.actions[0].rollback.status, 'done');
    // The rollback dropped the scratch cluster it had journaled.
    const root = /scratch cluster in (\S+) dropped/.exec(rec.actions[0].rollback.detail)?.[1];
    assert.ok(root && !existsSync(root), `scratch folder ${root} is gone`);
  }
  // The physical run replayed the archived WAL (pointInTime: latest): its newest row is exactly the newest
  // after-backups row, written at or after T, which only the WAL carries. The logical dump's newest row is the
  // source's newest before T. A physical restore that stops at the base backup's end shows the logical one's.
  const newestOf = (rec: { objectives: { rpo: { method: string } } }) =>
    /newest data in the restored database \((\S+), /.exec(rec.objectives.rpo.method)![1]!;
  const requestedOf = (rec: { objectives: { rpo: { method: string } } }) =>
    Date.parse(/restore point requested \((\S+)\)/.exec(rec.objectives.rpo.method)![1]!);
  const physical = record(dirs.find((d) => d.includes('restore-physical'))!);
  const logical = record(dirs.find((d) => d.includes('restore-logical'))!);
  assert.equal(newestOf(physical), newestAfterInsert, 'the physical restore holds the rows written after the backups');
  assert.equal(newestOf(logical), newestAtBackups, 'the logical restore holds what the dump held');
  assert.ok(Date.parse(newestOf(physical)) >= T);
  // So the physical RPO is at most restore start − T (+1 ms for the ISO rounding) ...
  assert.ok(
    physical.objectives.rpo.measuredSeconds <= (requestedOf(physical) - T) / 1000 + 0.001,
    `physical RPO ${physical.objectives.rpo.measuredSeconds} s, restore requested ${(requestedOf(physical) - T) / 1000} s after T`,
  );
  // ... and below the logical RPO once both are taken at the same restore point (the physical entry starts after
  // the logical one has finished, so its raw figure carries that run's length on top).
  const sameInstant = physical.objectives.rpo.measuredSeconds - (requestedOf(physical) - requestedOf(logical)) / 1000;
  assert.ok(
    sameInstant < logical.objectives.rpo.measuredSeconds,
    `physical RPO at the logical restore's point ${sameInstant} s vs logical ${logical.objectives.rpo.measuredSeconds} s`,
  );

  const xml = readFileSync(junit, 'utf8');
  assert.equal(XMLValidator.validate(xml), true, 'JUnit is well-formed XML');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml);
  const suites = [doc.testsuites.testsuite].flat();
  assert.deepEqual(suites.map((s: { name: string }) => s.name).sort(), [
    'monthly-restore / restore-logical',
    'monthly-restore / restore-physical',
  ]);
  for (const s of suites) {
    const cases = [s.testcase].flat();
    assert.deepEqual(
      cases.map((c: { name: string }) => c.name),
      ['RTO', 'RPO', 'verification', 'rollback'],
    );
    assert.equal(Number(s.failures), 0);
    assert.equal(Number(s.errors), 0);
  }

  // Canaries: not on any command line while running, not in any output, file or record.
  assertNoSecrets('the process list', argv + argvSeen.join('') + wal.argv);
  assertNoSecrets('drill run output', r.stdout + r.stderr);
  for (const f of [...filesUnder(results), junit]) assertNoSecrets(f, readFileSync(f, 'utf8'));
});

async function rewriteBlob(name: string, f: (b: Buffer) => Buffer): Promise<void> {
  const store = source.store('faults');
  const blob = store.container.getBlockBlobClient(name);
  const buf = await blob.downloadToBuffer();
  await blob.uploadData(f(buf));
}

test('corrupted, truncated, manifest-less, missing and stale backups: each a failed objective or finding with a clear message, exit 1, nothing live touched', {
  timeout: 600_000,
}, async () => {
  const store = source.store('faults');
  const taken: Record<string, Awaited<ReturnType<typeof takeLogicalBackup>>> = {};
  for (const cluster of ['corrupt', 'truncated', 'nomanifest', 'stale'])
    taken[cluster] = await takeLogicalBackup(source.src, store, { cluster });

  await rewriteBlob(taken.corrupt!.manifest.blob.name, (b) => {
    const c = Buffer.from(b);
    const i = Math.floor(c.length / 2);
    c.writeUInt8(c.readUInt8(i) ^ 0xff, i);
    return c;
  });
  await rewriteBlob(taken.truncated!.manifest.blob.name, (b) => b.subarray(0, Math.floor(b.length / 2)));
  await store.container.deleteBlob(taken.nomanifest!.manifestBlob);
  // A stale backup: the same one moved to a folder stamped 30 hours ago.
  const s = taken.stale!;
  const oldStamp = stampOf(new Date(Date.now() - 30 * 3_600_000).toISOString());
  const oldFolder = s.folder.replace(/\d{8}T\d{9}Z\/$/, `${oldStamp}/`);
  const dump = await store.container.getBlobClient(s.manifest.blob.name).downloadToBuffer();
  await store.container.getBlockBlobClient(`${oldFolder}dump.pgc`).uploadData(dump);
  await store.container
    .getBlockBlobClient(`${oldFolder}manifest.json`)
    .uploadData(Buffer.from(JSON.stringify({ ...s.manifest, blob: { ...s.manifest.blob, name: `${oldFolder}dump.pgc` } })));
  await store.container.deleteBlob(s.manifest.blob.name);
  await store.container.deleteBlob(s.manifestBlob);

  const drillFile = join(tmp.path, 'faults.yaml');
  const entry = (name: string, cluster: string) =>
    `  - { scenario: blob-restore, name: ${name}, timeout: 10m, params: { kind: logical, database: orders, cluster: ${cluster}, smokeQuery: 'SELECT count(*) > 0 FROM orders' } }\n`;
  writeFileSync(
    drillFile,
    'name: restore-faults\nkind: adhoc\ntarget: { kind: blob, container: pg-backups, prefix: faults }\nscenarios:\n' +
      entry('corrupt', 'corrupt') +
      entry('truncated', 'truncated') +
      entry('nomanifest', 'nomanifest') +
      entry('none', 'none') +
      entry('stale', 'stale'),
  );
  const before = await sourceFacts();
  const results = join(tmp.path, 'results-faults');
  const junit = join(tmp.path, 'junit-faults.xml');
  const t0 = performance.now();
  const { r, argv } = await cliWatchingArgv(['run', drillFile, '--results', results, '--junit', junit], sasEnv());
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.ok(performance.now() - t0 < 300_000, 'failed restores do not wait out the 10 min recovery timeout');

  const byName = new Map(runFolders(results).map((d) => [record(d).scenario as string, record(d)]));
  const failedProbes = (name: string) =>
    byName
      .get(name)!
      .objectives.verification.probes.filter((p: { ok: boolean }) => !p.ok)
      .map((p: { name: string; detail: string }) => `${p.name}: ${p.detail}`)
      .join('\n');
  for (const name of ['corrupt', 'truncated', 'nomanifest', 'none', 'stale']) {
    const rec = byName.get(name);
    assert.ok(rec, `run ${name}`);
    assert.equal(rec.status, 'failed', name);
    assert.equal(rec.exitCode, 1, name);
    assert.equal(rec.objectives.verification.met, false, name);
    assert.ok(rec.findings.length > 0, `${name} has findings`);
  }
  assert.match(
    failedProbes('corrupt'),
    /download: size and sha256 match the manifest: .*sha256 [0-9a-f]{64} does not match the expected [0-9a-f]{64}/,
  );
  assert.match(failedProbes('truncated'), /download: size and sha256 match the manifest: .*is truncated: it has \d+ bytes, expected \d+/);
  assert.match(
    failedProbes('nomanifest'),
    /backup found, with its manifest: backup .*nomanifest.* cannot be restored: manifest\.json is missing/,
  );
  assert.match(
    failedProbes('none'),
    /backup found, with its manifest: no logical backups of orders found in blob:devstoreaccount1\/pg-backups\/faults\//,
  );
  assert.match(failedProbes('none'), /newest backup younger than the maximum age: SEV1 no logical backups of orders/);
  // The stale backup restores fine; the policy check is what fails, as a SEV2 finding.
  const stale = byName.get('stale');
  assert.equal(stale.objectives.rto.met, true);
  assert.match(
    failedProbes('stale'),
    /^backup policy: newest backup younger than the maximum age: SEV2 newest of the logical backups of orders is 30\.0 h old/,
  );
  assert.ok(
    stale.findings.some((f: { severity: string; title: string }) => f.severity === 'SEV2' && /newest backup younger/.test(f.title)),
  );
  assert.ok(!failedProbes('stale').includes('restored data verified'));

  // Nothing live touched: the source has the same rows, and every scratch folder is gone.
  assert.deepEqual(await sourceFacts(), before);
  for (const rec of byName.values()) {
    const root = /scratch cluster in (\S+) dropped/.exec(rec.actions[0].rollback.detail ?? '')?.[1];
    if (root) assert.equal(existsSync(root), false, `${root} dropped`);
  }
  const xml = readFileSync(junit, 'utf8');
  assert.equal(XMLValidator.validate(xml), true);
  assert.match(
    xml,
    /<testcase classname="drill\.restore-faults\.corrupt" name="verification">\s*<failure message="measured \d of \d+ probes passed vs target all probes pass"/,
  );
  assertNoSecrets('drill run output', r.stdout + r.stderr + argv);
  for (const f of [...filesUnder(results), junit]) assertNoSecrets(f, readFileSync(f, 'utf8'));
});

// Three CLI starts and no PostgreSQL: the time limit only catches a hang. Each start is 1-2 s on an idle machine but took
// 22-28 s at load average 20 (stress-ng plus other test runs), which a 60 s limit for three starts did not survive.
test('a drill on a blob target with a missing container or no credentials is invalid input: exit 2, nothing run', {
  timeout: 180_000,
}, async () => {
  const drillFile = join(tmp.path, 'nocontainer.yaml');
  writeFileSync(
    drillFile,
    'name: restore-nocontainer\nkind: adhoc\ntarget: { kind: blob, container: no-such-container }\nscenarios:\n  - scenario: blob-restore\n',
  );
  const r = await drillCli(['run', drillFile, '--results', join(tmp.path, 'results-nc')], sasEnv()).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /container "no-such-container" does not exist/);
  const bare = await drillCli(['run', drillFile, '--results', join(tmp.path, 'results-nc2')], {
    AZURE_STORAGE_CONNECTION_STRING: '',
    AZURE_STORAGE_ACCOUNT_URL: '',
  }).done;
  assert.equal(bare.code, 2, bare.stderr);
  assert.match(bare.stderr, /no Blob storage configured/);
  const withLoad = join(tmp.path, 'withload.yaml');
  writeFileSync(
    withLoad,
    'name: restore-load\nkind: adhoc\ntarget: { kind: blob, container: pg-backups }\nload: { rate: 10 }\nscenarios:\n  - scenario: blob-restore\n',
  );
  const v = await drillCli(['validate', withLoad]).done;
  assert.equal(v.code, 2);
  assert.match(v.stdout + v.stderr, /withload\.yaml:4:1: load: unknown key "load"/);
});
