// The loss of the primary region on the real lab (PostgreSQL pair, two Azurites, the daemon and its children):
// every part losePrimaryRegion lists is gone when checked through /proc here, the primary Azurite refuses
// connections, the data directories stay; the global front, outside both regions, answers 502 naming the primary.
// Then the secondary's compute, started against a PostgreSQL this test runs (the service makes its orders table),
// serves GET /orders through the global front once switched; an attachment PUT lands in the secondary account
// (read back with the SDK), request-log lines reach the secondary's lab-logs, `lab status` says the secondary
// serves, `lab up` returns the lab as it serves without restarting the primary, and lab down leaves nothing running.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv } from '../../lib/adapters/blob/index.ts';
import { ensureRoleAndDatabase, initCluster, startCluster } from '../../lib/adapters/postgres/cluster.ts';
import { LAB_FILES_CONTAINER, LAB_LOGS_CONTAINER, labAzuriteStatus } from '../../lib/lab/azurite.ts';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { readSegments } from '../../lib/lab/log-ship.ts';
import { labPaths, regionComputePaths } from '../../lib/lab/paths.ts';
import { regionPaths, writeSecondaryDb } from '../../lib/lab/regions/contract.ts';
import { globalFrontStatus, switchGlobalFront } from '../../lib/lab/regions/global-front.ts';
import { losePrimaryRegion, primaryRegionParts } from '../../lib/lab/regions/region-loss.ts';
import { startSecondaryCompute } from '../../lib/lab/regions/secondary-compute.ts';
import { labSecondaryBlobEnv, secondaryAzuriteStatus } from '../../lib/lab/regions/secondary.ts';
import { readDaemonState } from '../../lib/lab/state.ts';
import { freePort } from '../support/ports.ts';
import { isProcessUnder } from '../../lib/util/proc.ts';
import { forgetConfiguredBlobStorage, labFixture } from '../support/lab.ts';

/** Alive as /proc says, read here rather than through the code under test: the state letter after the last ')'. */
async function runsInProc(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function refuses(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve('connected')));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

describe('the loss of the primary region', { timeout: 240_000 }, () => {
  const lab = labFixture('lab-region-loss');
  let secondaryData = '';
  let secondaryPort = 0;
  const everyPid = new Set<number>();
  let secondaryPid = 0;
  // Also when a test failed, whatever order the hooks run in: the cluster this test started gets an immediate
  // shutdown (SIGQUIT) by its PID, checked to still be that postmaster (lab down stops it too, through db.json).
  after(async () => {
    if (secondaryPid && (await isProcessUnder(secondaryPid, secondaryData))) process.kill(secondaryPid, 'SIGQUIT');
  });

  test('losePrimaryRegion SIGKILLs every part of the primary region; its storage refuses connections; data stays', async () => {
    forgetConfiguredBlobStorage();
    const info = await labUp({ dir: lab.dir, replicas: 2, regions: 2, replicationLagMs: 2000, logShipIntervalMs: 2000 });
    // The secondary database, started here beside the lab as a restore would leave it (db.json says what it is).
    secondaryData = join(regionPaths(lab.dir).secondaryPg, 'data');
    secondaryPort = await freePort();
    await initCluster(secondaryData, { port: secondaryPort, socketDir: join(regionPaths(lab.dir).secondaryDir, 'sock') });
    secondaryPid = await startCluster(secondaryData, { logFile: join(regionPaths(lab.dir).secondaryPg, 'postgres.log') });
    await ensureRoleAndDatabase(
      { host: '127.0.0.1', port: secondaryPort, user: 'postgres', database: 'postgres' },
      { role: 'drill', database: 'orders' },
    );
    await writeSecondaryDb(lab.dir, {
      port: secondaryPort,
      dataDir: secondaryData,
      logFile: join(regionPaths(lab.dir).secondaryPg, 'postgres.log'),
      restoredAt: new Date().toISOString(),
      backupFolder: '(none: an empty cluster the test started)',
      reachedLsn: '0/0',
      timeline: 1,
    });

    const parts = await until('every primary part to run', 30_000, async () => {
      const ps = await primaryRegionParts(lab.dir);
      return ps.every((x) => x.alive) ? ps : null;
    });
    const names = parts.map((x) => x.part.replace(/^replica .*/, 'replica'));
    for (const want of [
      'daemon',
      'replica',
      'wal-archiver',
      'pg_receivewal',
      'log-shipper',
      'replicator',
      'postgres:n1',
      'postgres:n2',
      'azurite',
    ])
      assert.ok(names.includes(want), `${want} listed: ${names.join(', ')}`);
    assert.equal(names.filter((n) => n === 'replica').length, 2);
    for (const x of parts) everyPid.add(x.pid!);
    const azuritePort = (await labAzuriteStatus(lab.dir)).azurite!.port;
    const gf = (await globalFrontStatus(lab.dir))!;
    everyPid.add(gf.pid);
    lab.seen.add(gf.pid);

    const tLoss = performance.now();
    const lost = await losePrimaryRegion(lab.dir);
    const lossMs = performance.now() - tLoss;
    const first502 = await fetch(`${info.serviceUrl}/orders?limit=1`);
    const killTo502 = Date.now() - Date.parse(lost.at);
    assert.equal(first502.status, 502);
    assert.equal(((await first502.json()) as { region: string }).region, 'primary');
    process.stdout.write(
      `# region loss: ${lost.killed.length} processes SIGKILLed, all gone in ${lossMs.toFixed(0)} ms; first 502 through the global front ${killTo502} ms after the kill\n`,
    );

    const killed = new Set(lost.killed.map((k) => k.pid));
    for (const x of parts) assert.ok(killed.has(x.pid!), `${x.part} (pid ${x.pid}) was killed`);
    for (const k of lost.killed) {
      everyPid.add(k.pid);
      assert.equal(await runsInProc(k.pid), false, `${k.part} (pid ${k.pid}) is gone from /proc`);
    }
    assert.ok(
      lost.killed.some((k) => k.part === 'postgres:n1 child'),
      "the primary postmaster's backends went with it",
    );
    assert.equal(await refuses(azuritePort), 'ECONNREFUSED', "the primary's storage refuses connections");
    const p = labPaths(lab.dir);
    for (const f of [
      join(p.node('n1').data, 'PG_VERSION'),
      join(p.node('n2').data, 'PG_VERSION'),
      join(lab.dir, 'azurite'),
      p.walArchive.dir,
    ])
      assert.ok(existsSync(f), `${f} kept`);
    assert.ok((await globalFrontStatus(lab.dir))!.alive, 'the global front, outside both regions, still runs');
    assert.deepEqual(await losePrimaryRegion(lab.dir).then((r) => r.killed), [], 'a region already lost: nothing more to kill');
  });

  test("the secondary's compute serves through the global front: orders, files in its account, logs in its lab-logs", async () => {
    const t0 = performance.now();
    const sec = await startSecondaryCompute(lab.dir, { dbPort: secondaryPort, replicas: 2 });
    const startMs = performance.now() - t0;
    lab.seen.add(sec.daemonPid);
    const again = await startSecondaryCompute(lab.dir, { dbPort: secondaryPort, replicas: 2 });
    assert.equal(again.daemonPid, sec.daemonPid, 'started twice, one compute');
    const t1 = performance.now();
    await switchGlobalFront(lab.dir, 'secondary', sec.frontPort);
    const switchMs = performance.now() - t1;
    const url = `http://127.0.0.1:${(await globalFrontStatus(lab.dir))!.port}`;
    const list = await fetch(`${url}/orders?limit=5`);
    assert.equal(list.status, 200);
    assert.equal(list.headers.get('x-drill-region'), 'secondary');
    assert.match(list.headers.get('x-drill-replica') ?? '', /^orders-secondary-/);
    await list.arrayBuffer();
    process.stdout.write(`# secondary compute serving in ${startMs.toFixed(0)} ms; global front switch ${switchMs.toFixed(1)} ms\n`);

    const token = randomUUID();
    const order = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'after-loss', token }),
    });
    assert.equal(order.status, 201);
    const { id } = (await order.json()) as { id: string | number };
    const content = Buffer.from(`attachment of ${token}`);
    const put = await fetch(`${url}/orders/${id}/attachment`, { method: 'PUT', body: content, headers: { 'x-drill-token': token } });
    assert.equal(put.status, 201, await put.clone().text());
    await put.arrayBuffer();
    const env = await labSecondaryBlobEnv(lab.dir);
    assert.ok(env, "the secondary's storage answers");
    const svc = blobServiceFromEnv(env.env);
    const blob = await svc.getContainerClient(LAB_FILES_CONTAINER).getBlockBlobClient(`orders/${id}/attachment`).downloadToBuffer();
    assert.equal(createHash('sha256').update(blob).digest('hex'), createHash('sha256').update(content).digest('hex'));

    const logs = svc.getContainerClient(LAB_LOGS_CONTAINER);
    const shipped = await until("the request-log line to reach the secondary's lab-logs", 30_000, async () => {
      const segments: { name: string; text: string }[] = [];
      for await (const b of logs.listBlobsFlat({ prefix: 'orders-secondary-' }))
        segments.push({ name: b.name, text: (await logs.getBlockBlobClient(b.name).downloadToBuffer()).toString('utf8') });
      const r = readSegments(segments);
      return r.tokens.has(token) ? r : null;
    });
    assert.ok([...shipped.replicas.keys()].every((r) => r.startsWith('orders-secondary-')));
    assert.ok(existsSync(regionComputePaths(lab.dir, 'secondary').serviceLogs.dir));

    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.up, true);
    assert.match(s.regions!.note!, /^serving from the secondary region since .+; primary region down$/);
    assert.deepEqual(s.problems, []);
    assert.equal(s.regions!.secondary.compute.ready, 2);
    assert.equal(s.regions!.secondary.database?.running, true);
    assert.equal(s.info?.regions?.active, 'secondary');
  });

  test('lab up returns the lab as it serves from the secondary; lab down leaves nothing of either region running', async () => {
    const info = await labUp({ dir: lab.dir });
    assert.equal(info.alreadyRunning, true);
    assert.equal(info.regions?.active, 'secondary');
    assert.deepEqual(
      info.db.nodes.map((n) => [n.name, n.role, n.port]),
      [['secondary', 'primary', secondaryPort]],
    );
    assert.ok(
      (await primaryRegionParts(lab.dir)).every((x) => !x.alive),
      'the primary region was not restarted',
    );

    const sec = (await readDaemonState(regionComputePaths(lab.dir, 'secondary').daemonState))!;
    for (const pid of [
      sec.pid,
      ...sec.replicas.map((r) => r.pid),
      sec.logShipper?.pid ?? 0,
      (await secondaryAzuriteStatus(lab.dir)).azurite!.pid,
    ])
      if (pid) everyPid.add(pid);
    const pgPid = Number((await readFile(join(secondaryData, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    everyPid.add(pgPid);
    for (const pid of everyPid) lab.seen.add(pid);
    const down = await labDown({ dir: lab.dir });
    assert.ok(
      down.stopped.some((x) => x.name === 'postgres:secondary' && x.pid === pgPid),
      JSON.stringify(down.stopped),
    );
    const left = [];
    for (const pid of everyPid) if (await runsInProc(pid)) left.push(pid);
    assert.deepEqual(left, [], 'no process of either region, nor the global front, left running');
    assert.ok(existsSync(join(secondaryData, 'PG_VERSION')), "the secondary's database folder stays without --purge");
  });
});
