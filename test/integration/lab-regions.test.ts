// The lab with two regions, on real processes: two Azurite instances (the primary's dev account, the secondary's
// own account) and the replicator the daemon keeps running between them. A blob written to the primary is absent
// from the secondary until replicationLag has passed, then there with the same bytes; a replicator killed by PID
// is restarted and catches up on every blob; a hung one is a problem in `lab status`; lab down, even after the
// daemon was SIGKILLed, leaves no Azurite and no replicator running.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv, type ContainerClient, listForReplication } from '../../lib/adapters/blob/index.ts';
import { AZURITE_ACCOUNT, azuriteEndpoint } from '../../lib/adapters/blob/azurite.ts';
import { LAB_FILES_CONTAINER, labAzuriteStatus, labBlobEnv } from '../../lib/lab/azurite.ts';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { lagMarginMs, listIntervalMs } from '../../lib/lab/regions/replication.ts';
import {
  labSecondaryBlobEnv,
  REPLICATED_CONTAINERS,
  SECONDARY_ACCOUNT,
  secondaryAzuriteStatus,
  secondaryPaths,
} from '../../lib/lab/regions/secondary.ts';
import { readDaemonState } from '../../lib/lab/state.ts';
import { cmdlineOf, isProcessUnder, procState, signal } from '../../lib/util/proc.ts';
import { forgetConfiguredBlobStorage, labFixture } from '../support/lab.ts';

const LAG_MS = 3000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function replicatorPid(dir: string): Promise<number | null> {
  return (await readDaemonState(labPaths(dir).daemonState))?.replicator?.pid ?? null;
}

describe('the lab with two regions', { timeout: 300_000 }, () => {
  const lab = labFixture('lab-regions');
  let files: { from: ContainerClient; to: ContainerClient };

  test('lab up starts a second Azurite with its own account, port and data folder, and the replicator', async () => {
    forgetConfiguredBlobStorage();
    const info = await labUp({ dir: lab.dir, replicas: 1, regions: 2, replicationLagMs: LAG_MS });
    assert.ok(info.azurite && info.secondary, JSON.stringify(info));
    assert.equal(info.secondary.account, SECONDARY_ACCOUNT);
    assert.notEqual(info.secondary.port, info.azurite.port);
    assert.equal(info.secondary.url, `http://127.0.0.1:${info.secondary.port}/${SECONDARY_ACCOUNT}`);
    assert.deepEqual(info.secondary.containers, ['lab-backups', 'lab-files', 'lab-logs']);
    const sec = (await secondaryAzuriteStatus(lab.dir)).azurite!;
    lab.seen.add(sec.pid);
    assert.ok((await cmdlineOf(sec.pid))!.includes(secondaryPaths(lab.dir).azuriteData), 'its data folder is under the lab dir');
    // Its own account: the dev account's well-known key opens nothing there.
    const devOnSecondary = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: azuriteEndpoint(sec.port).connectionString });
    await assert.rejects(devOnSecondary.getContainerClient('probe').create(), /./, `${AZURITE_ACCOUNT} is not served`);

    const pid = await until('the replicator to run', 20_000, () => replicatorPid(lab.dir));
    lab.seen.add(pid);
    const s = await until('a replication pass', 20_000, async () => {
      const st = await labStatus({ dir: lab.dir });
      return st.replication?.lastPassAt ? st : null;
    });
    const names = s.components.map((c) => `${c.name}:${c.alive}`);
    assert.ok(names.includes('azurite-secondary:true') && names.includes('replicator:true'), names.join(' '));
    assert.equal(s.replication!.state, 'running');
    assert.equal(s.replication!.pid, pid);
    assert.equal(s.replication!.lagSeconds, 3);
    assert.deepEqual(
      s.problems.filter((p) => p.part === 'replication' || p.part === 'azurite-secondary'),
      [],
    );

    // Changing the number of regions of a running lab is refused, and the lab runs on as it was.
    await assert.rejects(labUp({ dir: lab.dir, replicas: 1, regions: 1 }), /runs 2 region\(s\), not 1/);
    assert.equal(await replicatorPid(lab.dir), pid);

    const p = (await labBlobEnv(lab.dir))!;
    const q = (await labSecondaryBlobEnv(lab.dir))!;
    files = {
      from: blobServiceFromEnv(p.env).getContainerClient(LAB_FILES_CONTAINER),
      to: blobServiceFromEnv(q.env).getContainerClient(LAB_FILES_CONTAINER),
    };
    await files.from.createIfNotExists();
  });

  test('a blob reaches the secondary after replicationLag, not before, with the same bytes and metadata', async () => {
    const written: { name: string; body: Buffer; at: number }[] = [];
    // Small ones stored in one piece (the service keeps their MD5) and one of 6 MiB, uploaded in blocks.
    const sizes = [100, 2048, 6 * 1024 * 1024, 10, 4096];
    const seen = new Map<string, { lastAbsentStart: number; firstPresentEnd: number | null }>();
    let writing = true;
    const watcher = (async () => {
      while (writing || [...seen.values()].some((v) => v.firstPresentEnd === null)) {
        const start = Date.now();
        const there = new Set((await listForReplication(files.to)).map((b) => b.name));
        const end = Date.now();
        for (const [name, v] of seen) {
          if (v.firstPresentEnd !== null) continue;
          if (there.has(name)) v.firstPresentEnd = end;
          else v.lastAbsentStart = start;
        }
        if (Date.now() - (written.at(-1)?.at ?? Date.now()) > LAG_MS + 15_000) break;
        await sleep(100);
      }
    })();
    for (const [i, size] of sizes.entries()) {
      const body = randomBytes(size);
      const name = `lag/${i}-${sha(body).slice(0, 8)}`;
      const at = Date.now();
      seen.set(name, { lastAbsentStart: at, firstPresentEnd: null });
      await files.from
        .getBlockBlobClient(name)
        .uploadData(body, { metadata: { sha256: sha(body) }, blobHTTPHeaders: { blobContentType: 'application/x-test' } });
      written.push({ name, body, at });
      await sleep(700);
    }
    writing = false;
    await watcher;
    for (const w of written) {
      const v = seen.get(w.name)!;
      assert.ok(v.firstPresentEnd !== null, `${w.name} never reached the secondary`);
      // Absent in a listing that started within a second of the lag (listings are slow on a busy machine); present
      // within the lag plus Last-Modified's second, a listing and a copy.
      assert.ok(
        v.lastAbsentStart - w.at >= LAG_MS - 1000,
        `${w.name} was in the secondary ${v.lastAbsentStart - w.at} ms after it was written`,
      );
      assert.ok(
        v.firstPresentEnd - w.at <= LAG_MS + 4500,
        `${w.name} reached the secondary only ${v.firstPresentEnd - w.at} ms after it was written`,
      );
      const copy = files.to.getBlobClient(w.name);
      const bytes = await copy.downloadToBuffer();
      assert.equal(sha(bytes), sha(w.body), `${w.name}: the copy's bytes differ`);
      const props = await copy.getProperties();
      assert.equal(props.metadata?.sha256, sha(w.body));
      assert.equal(props.contentType, 'application/x-test');
      assert.equal(Buffer.from(props.contentMD5!).toString('hex'), createHash('md5').update(w.body).digest('hex'));
      const source = await files.from.getBlobClient(w.name).getProperties();
      assert.equal(props.metadata?.drillsourceetag, source.etag!.replace(/"/g, ''));
      // By the storage's own clock, whole seconds: the copy was made at least the lag after the source was written.
      const apart = props.lastModified!.getTime() - source.lastModified!.getTime();
      assert.ok(apart >= LAG_MS + 1000, `${w.name}: copied ${apart} ms after it was last modified`);
    }
  });

  test('a replicator killed by PID is restarted by the daemon and catches up on every blob of every container', async () => {
    const before = (await replicatorPid(lab.dir))!;
    const restartsBefore = (await readDaemonState(labPaths(lab.dir).daemonState))!.replicator!.restarts;
    const names: string[] = [];
    const writer = (async () => {
      for (let i = 0; i < 20; i++) {
        const body = randomBytes(512 + i);
        const name = `kill/${i}`;
        await files.from.getBlockBlobClient(name).uploadData(body);
        names.push(name);
        await sleep(200);
      }
    })();
    await sleep(1000);
    assert.ok(signal(before, 'SIGKILL'));
    const after = await until('the daemon to start a new replicator', 15_000, async () => {
      const pid = await replicatorPid(lab.dir);
      return pid !== null && pid !== before && (await isProcessUnder(pid, lab.dir)) ? pid : null;
    });
    lab.seen.add(after);
    await writer;
    // Every blob of every replicated container that has existed for the lag and a margin is in the secondary,
    // as the version the primary holds (WAL segments, the base backup, log segments and these files alike).
    const p = (await labBlobEnv(lab.dir))!;
    const q = (await labSecondaryBlobEnv(lab.dir))!;
    const primary = blobServiceFromEnv(p.env);
    const secondary = blobServiceFromEnv(q.env);
    const settle = LAG_MS + 1000 + listIntervalMs(LAG_MS) + 3000;
    await sleep(settle);
    const checkedAt = Date.now();
    let checked = 0;
    for (const c of REPLICATED_CONTAINERS) {
      const [source, copies] = await Promise.all([
        listForReplication(primary.getContainerClient(c)),
        listForReplication(secondary.getContainerClient(c)),
      ]);
      const held = new Map(copies.map((b) => [b.name, b]));
      for (const b of source) {
        if (checkedAt - b.lastModifiedMs < settle) continue;
        const copy = held.get(b.name);
        assert.ok(copy, `${c}/${b.name} (last modified ${new Date(b.lastModifiedMs).toISOString()}) is missing from the secondary`);
        assert.equal(copy.sourceEtag, b.etag, `${c}/${b.name}: the secondary holds another version`);
        assert.equal(copy.contentLength, b.contentLength, `${c}/${b.name}: lengths differ`);
        checked++;
      }
    }
    for (const n of names) assert.ok((await files.to.getBlobClient(n).exists()) === true, `${n} missing`);
    assert.ok(checked >= names.length + 5, `only ${checked} blobs checked`);
    const s = await labStatus({ dir: lab.dir });
    assert.ok(s.replication!.restarts > restartsBefore, JSON.stringify(s.replication));
    assert.equal(s.replication!.pid, after);
  });

  test('a hung replicator is a replication problem in lab status, gone once it runs again', async () => {
    const pid = (await replicatorPid(lab.dir))!;
    assert.ok(signal(pid, 'SIGSTOP'));
    try {
      await files.from.getBlockBlobClient('hung/one').uploadData(randomBytes(64));
      const limit = LAG_MS + lagMarginMs(LAG_MS) + listIntervalMs(LAG_MS) + 10_000;
      const problem = await until('a replication problem', limit, async () => {
        const s = await labStatus({ dir: lab.dir });
        return s.problems.find((p) => p.part === 'replication');
      });
      assert.match(problem.detail, new RegExp(`replicator \\(pid ${pid}\\) last finished a pass \\d+s ago`));
    } finally {
      signal(pid, 'SIGCONT');
    }
    await until('the problem to clear', 20_000, async () => {
      const s = await labStatus({ dir: lab.dir });
      return s.problems.every((p) => p.part !== 'replication') && (await files.to.getBlobClient('hung/one').exists());
    });
  });

  test('lab down, even after the daemon was SIGKILLed, leaves no Azurite and no replicator running; the data stays', async () => {
    const daemon = (await readDaemonState(labPaths(lab.dir).daemonState))!;
    const rep = daemon.replicator!.pid!;
    const pri = (await labAzuriteStatus(lab.dir)).azurite!.pid;
    const sec = (await secondaryAzuriteStatus(lab.dir)).azurite!.pid;
    // The daemon dies without stopping its children: the replicator is left for lab down to find by its PID.
    assert.ok(signal(daemon.pid, 'SIGKILL'));
    await until('the daemon to die', 5000, async () => (await procState(daemon.pid)) !== 'alive');
    assert.equal(await isProcessUnder(rep, lab.dir), true, 'the replicator outlives its daemon');
    const r = await labDown({ dir: lab.dir });
    const stopped = r.stopped.map((s) => `${s.name}:${s.pid}`);
    for (const want of [`replicator:${rep}`, `azurite:${pri}`, `azurite-secondary:${sec}`])
      assert.ok(stopped.includes(want), stopped.join(' '));
    for (const pid of [rep, pri, sec]) assert.notEqual(await procState(pid), 'alive', `pid ${pid} still runs`);
    assert.ok(existsSync(secondaryPaths(lab.dir).azuriteData), "the secondary's blob data is kept");
    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.up, false);
    assert.equal(s.stale, false, JSON.stringify(s.problems));
  });
});
