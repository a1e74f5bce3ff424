import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { AZURITE_ACCOUNT_KEY, startAzurite, type AzuriteHandle } from '../../lib/adapters/blob/index.ts';
import { isProcessUnder } from '../../lib/util/proc.ts';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { LAB_BACKUP_CONTAINER, labAzuriteStateFile, startLabAzurite } from '../../lib/lab/azurite.ts';
import type { LabInfo } from '../../lib/lab/types.ts';
import { alive, drillCli } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

/**
 * The lab's Azurite through the lab's own lifecycle: `lab up` starts it (detached, data in the lab dir),
 * `lab status` shows it, `drill backup` on a machine with a lab up uses it (explicit storage variables still
 * win), and `lab down` stops it by PID, after a crash too. One lab for the file: each lab up costs seconds.
 */
const dirs: string[] = [];
const others: AzuriteHandle[] = [];
after(async () => {
  for (const a of others) await a.stop();
  for (const d of dirs) {
    await labDown({ dir: join(d, 'lab') }).catch(() => undefined);
    rmSync(d, { recursive: true, force: true });
  }
});

const root = scratchDir('lab-azurite');
dirs.push(root);
const dir = join(root, 'lab');
/** No storage variable of the machine's own may leak in: blank ones count as unset. */
const noStorageEnv = {
  AZURE_STORAGE_CONNECTION_STRING: '',
  AZURE_STORAGE_ACCOUNT_URL: '',
  AZURE_STORAGE_SAS_TOKEN: '',
  AZURE_STORAGE_ACCOUNT: '',
  AZURE_STORAGE_KEY: '',
  DRILL_BACKUP_CONTAINER: '',
};
let info: LabInfo;
const KEYS = [AZURITE_ACCOUNT_KEY, encodeURIComponent(AZURITE_ACCOUNT_KEY)];

function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

test('lab up starts Azurite beside PostgreSQL and the daemon, detached, with its data in the lab dir', { timeout: 180_000 }, async (t) => {
  const phases: Array<[string, number]> = [];
  const t0 = performance.now();
  info = await labUp({ dir, replicas: 1, onPhase: (name, ms) => phases.push([name, ms]) });
  const upMs = performance.now() - t0;
  t.diagnostic(`labUp ${upMs.toFixed(0)} ms; phases: ${phases.map(([n, ms]) => `${n} ${ms.toFixed(0)}`).join(', ')}`);
  assert.ok(info.azurite, 'labUp reports Azurite');
  const az = info.azurite!;
  assert.match(az.url, /^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
  assert.equal(az.container, LAB_BACKUP_CONTAINER);
  assert.ok(
    phases.some(([n]) => n === 'azurite ready'),
    'Azurite was started by this lab up',
  );
  assert.ok(await isProcessUnder(az.pid, join(dir, 'azurite')), 'Azurite runs with its --location in the lab dir');
  assert.ok(!KEYS.some((k) => cmdline(az.pid).includes(k)), "no key in Azurite's argv");
  assert.ok(!JSON.stringify(info).includes(AZURITE_ACCOUNT_KEY), 'no key in what lab up returns (and prints with --json)');
  // Started at low priority so it takes no core from the lab's start, then serving at normal priority.
  assert.equal(Number(readFileSync(`/proc/${az.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]), 0, 'nice back to 0 once it answers');

  const s = await labStatus({ dir });
  assert.equal(s.up, true);
  assert.deepEqual(s.problems, []);
  assert.deepEqual(
    s.components.find((c) => c.name === 'azurite'),
    { name: 'azurite', pid: az.pid, port: az.port, alive: true },
  );

  const again = await labUp({ dir, replicas: 1 });
  assert.equal(again.alreadyRunning, true);
  assert.equal(again.azurite?.pid, az.pid, 'a second lab up keeps the running Azurite');
});

test("`drill lab status` shows Azurite's URL and container; `--json` carries no key", { timeout: 60_000 }, async () => {
  const human = await drillCli(['lab', 'status', '--dir', dir]).done;
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`azurite +${info.azurite!.url.replace(/[./]/g, '\\$&')}, container ${LAB_BACKUP_CONTAINER}`));
  assert.match(human.stdout, new RegExp(`azurite +pid ${info.azurite!.pid} +port ${info.azurite!.port} +alive`));
  const json = await drillCli(['lab', 'status', '--dir', dir, '--json']).done;
  assert.equal(JSON.parse(json.stdout).info.azurite.url, info.azurite!.url);
  assert.ok(!KEYS.some((k) => json.stdout.includes(k) || human.stdout.includes(k)));
});

test("`drill backup lab` without storage variables backs the lab primary up into the lab's Azurite, and says so", {
  timeout: 120_000,
}, async () => {
  const env = { ...noStorageEnv, DRILL_LAB_DIR: dir };
  const r = await drillCli(['backup', 'lab', '--kind', 'logical'], env).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stderr, new RegExp(`using the lab's Azurite at ${info.azurite!.url.replace(/[./]/g, '\\$&')}`));
  assert.match(
    r.stderr,
    new RegExp(
      `backup logical of postgres://postgres@127\\.0\\.0\\.1:${info.db.port}/orders into ${info.azurite!.url.replace(/[./]/g, '\\$&')}/${LAB_BACKUP_CONTAINER}/`,
    ),
  );
  assert.match(r.stdout, /logical backup of orders done/);
  const svc = BlobServiceClient.fromConnectionString(
    `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${info.azurite!.url};`,
  );
  const names: string[] = [];
  for await (const b of svc.getContainerClient(LAB_BACKUP_CONTAINER).listBlobsFlat()) names.push(b.name);
  assert.equal(names.filter((n) => /\/logical\/orders\/\d{8}T\d{9}Z\/manifest\.json$/.test(n)).length, 1, names.join(', '));

  const skip = await drillCli(['backup', 'lab', '--kind', 'logical', '--if-older-than', '10m'], env).done;
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(skip.stdout, /a logical backup of orders taken \d+s ago is newer than 10m: none taken/);
  for (const out of [r.stdout, r.stderr, skip.stdout, skip.stderr]) assert.ok(!KEYS.some((k) => out.includes(k)));
});

test("explicit storage variables win over the lab's Azurite", { timeout: 120_000 }, async () => {
  const other = await startAzurite({ dir: join(root, 'other-azurite') });
  others.push(other);
  const r = await drillCli(['backup', 'lab', '--kind', 'logical'], {
    ...noStorageEnv,
    DRILL_LAB_DIR: dir,
    AZURE_STORAGE_CONNECTION_STRING: other.connectionString,
  }).done;
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /lab's Azurite/);
  assert.match(r.stderr, new RegExp(`into ${other.blobEndpoint.replace(/[./]/g, '\\$&')}/${LAB_BACKUP_CONTAINER}/`));
  const svc = BlobServiceClient.fromConnectionString(other.connectionString);
  let manifests = 0;
  for await (const b of svc.getContainerClient(LAB_BACKUP_CONTAINER).listBlobsFlat()) if (b.name.endsWith('manifest.json')) manifests++;
  assert.equal(manifests, 1);
  assert.ok(!KEYS.some((k) => r.stdout.includes(k) || r.stderr.includes(k)), 'the key from the environment is not echoed');
});

test('after a crash (daemon SIGKILLed) the leftover Azurite is cleaned by lab down like the rest, by PID', {
  timeout: 120_000,
}, async () => {
  const azPid = info.azurite!.pid;
  process.kill(info.pids.daemon, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  const s = await labStatus({ dir });
  assert.equal(s.stale, true);
  assert.equal(s.components.find((c) => c.name === 'azurite')?.alive, true, 'Azurite outlives the daemon');
  const down = await labDown({ dir });
  assert.equal(down.wasStale, true);
  assert.ok(
    down.stopped.some((x) => x.name === 'azurite' && x.pid === azPid),
    JSON.stringify(down.stopped),
  );
  assert.equal(alive(azPid), false);
  assert.equal(existsSync(labAzuriteStateFile(dir)), false);
  assert.ok(readdirSync(join(dir, 'azurite')).length > 0, 'blob data is kept in the lab dir for the next lab up');
  const after = await labStatus({ dir });
  assert.equal(after.stale, false);
});

test('an Azurite left alone by a lab up that died early is stale, and lab down stops it', { timeout: 60_000 }, async () => {
  const half = join(root, 'half-lab');
  const a = await startLabAzurite(half);
  const s = await labStatus({ dir: half });
  assert.equal(s.up, false);
  assert.equal(s.stale, true);
  const down = await labDown({ dir: half });
  assert.equal(down.wasStale, true);
  assert.deepEqual(down.stopped, [{ name: 'azurite', pid: a.pid }]);
  assert.equal(alive(a.pid), false);
});
