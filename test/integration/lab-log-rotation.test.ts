// The lab's request logs stay bounded without losing a line: with lab.json's logRotateBytes at 16 KiB, replicas
// rotate their log file while orders keep coming; the log shipper ships each rotated file to its last line and
// deletes it. Afterwards every acknowledged order's line is in a shipped segment (read from Azurite here), later
// generations' segments are there, and each live replica has only its newest file left, under the bound.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv } from '../../lib/adapters/blob/index.ts';
import { LAB_LOGS_CONTAINER, labBlobEnv } from '../../lib/lab/azurite.ts';
import { labStatus, labUp } from '../../lib/lab/index.ts';
import { parseLogFileName } from '../../lib/lab/log-ship.ts';
import { shipPendingNow } from '../../lib/lab/log-shipping.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { readConfig } from '../../lib/lab/state.ts';
import { writeJsonAtomic } from '../../lib/util/atomic-file.ts';
import { labFixture } from '../support/lab.ts';

const ROTATE_BYTES = 16 * 1024;

describe('request-log rotation on the lab', { timeout: 240_000 }, () => {
  const lab = labFixture('lab-log-rotation');

  test('rotated files are deleted once shipped, and no acknowledged line is missing from Blob', async () => {
    const info = await labUp({ dir: lab.dir, replicas: 2, logShipIntervalMs: 1000 });
    const p = labPaths(lab.dir);
    writeJsonAtomic(p.config, { ...(await readConfig(p.config))!, logRotateBytes: ROTATE_BYTES });
    // Replicas read the bound when they start: replace both (the supervisor starts new ones at once).
    const before = (await labStatus({ dir: lab.dir })).replicas;
    for (const r of before) if (r.pid) process.kill(r.pid, 'SIGKILL');
    const gone = new Set(before.map((r) => r.name));
    let fresh: string[] = [];
    for (const deadline = Date.now() + 60_000; fresh.length < 2; await sleep(200)) {
      assert.ok(Date.now() < deadline, 'two new replicas ready within 60 s');
      fresh = (await labStatus({ dir: lab.dir })).replicas.filter((r) => r.ready && !gone.has(r.name)).map((r) => r.name);
    }
    const live = new Set(fresh);

    // About 180 bytes a line: 700 orders are 7 or more rotations spread over the two replicas.
    const acked: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 700) {
          const seq = next++;
          const token = crypto.randomUUID();
          const r = await fetch(`${info.serviceUrl}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ item: `rotate-${seq}`, token, seq }),
          });
          await r.arrayBuffer();
          if (r.status === 201) acked.push(token);
        }
      }),
    );
    assert.ok(acked.length > 650, `${acked.length} of 700 orders acknowledged`);
    const shipped = await shipPendingNow(lab.dir, { timeoutMs: 20_000 });
    assert.equal(shipped.shipped, true, shipped.detail);
    // A file closed by a rotation after the last pass's listing goes in the pass after.
    await sleep(2500);

    const blob = (await labBlobEnv(lab.dir))!;
    const c = blobServiceFromEnv(blob.env).getContainerClient(LAB_LOGS_CONTAINER);
    const tokens = new Set<string>();
    const names: string[] = [];
    for await (const b of c.listBlobsFlat()) {
      names.push(b.name);
      for (const raw of (await c.getBlockBlobClient(b.name).downloadToBuffer()).toString('utf8').split('\n'))
        if (raw !== '') tokens.add(JSON.parse(raw).token);
    }
    const missing = acked.filter((t) => !tokens.has(t));
    assert.deepEqual(missing.slice(0, 3), [], `${missing.length} acknowledged lines missing from Blob`);
    const laterGenerations = names.filter((n) => live.has(n.split('/')[0]!) && /\/g\d{6}-/.test(n));
    assert.ok(laterGenerations.length >= 4, `segments of rotated generations: ${laterGenerations.join(', ')}`);

    // On disk: each live replica's newest generation only, under the bound plus one line.
    const left = readdirSync(p.serviceLogs.dir)
      .map((f) => ({ f, parsed: parseLogFileName(f) }))
      .filter((x) => x.parsed && live.has(x.parsed.replica));
    assert.deepEqual(
      [...live].map((name) => left.filter((x) => x.parsed!.replica === name).length),
      [1, 1],
      `files left: ${left.map((x) => x.f).join(', ')}`,
    );
    for (const x of left) {
      assert.ok(x.parsed!.gen >= 1, `${x.f} rotated at least once`);
      assert.ok(statSync(join(p.serviceLogs.dir, x.f)).size < ROTATE_BYTES + 1024, `${x.f} under the bound`);
    }
    assert.match(readFileSync(p.serviceLogs.shipperLog, 'utf8'), /deleted orders-\S+\.jsonl: rotated and shipped through byte \d+/);
  });
});
