// The file-storage and logs data classes on the real lab (PostgreSQL, Azurite, the orders service, its log
// shipper): orders and attachments sent through the front are ledgered as the client saw them; after shipping,
// every acknowledged file is found by name and sha256 and every acknowledged request's log line in a shipped
// segment (0 lost, RPO 0). Then one shipped segment is deleted from Blob: the lines lost are exactly the
// acknowledged requests whose lines that segment held (read independently from the replica's own log file),
// and the logs RPO runs from the newest line before them to the fault.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv } from '../../lib/adapters/blob/index.ts';
import { LAB_LOGS_CONTAINER, labBlobEnv } from '../../lib/lab/azurite.ts';
import { readShippedLogs, readStoredFiles } from '../../lib/lab/data-readback.ts';
import { labUp } from '../../lib/lab/index.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { readJson } from '../../lib/lab/state.ts';
import { attachmentBlobName, attachmentBody, FileLedger, LogLedger, sha256Hex } from '../../lib/load/class-ledgers.ts';
import { checkFiles, checkLogs } from '../../lib/measure/data-classes.ts';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { labFixture } from '../support/lab.ts';

const SHIP_MS = 2000;

describe('the lab data classes', { timeout: 180_000 }, () => {
  const lab = labFixture('lab-data-classes');

  test('files and log lines acknowledged are all read back; a deleted segment is counted exactly', async () => {
    const info = await labUp({ dir: lab.dir, replicas: 2, logShipIntervalMs: SHIP_MS });
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const files = new FileLedger();
    const logs = new LogLedger();
    for (let seq = 0; seq < 60; seq++) {
      const token = crypto.randomUUID();
      const sentMs = now();
      const row = logs.push({ seq, token, replica: '', sentMs });
      const r = await fetch(`${info.serviceUrl}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: `classes-${seq}`, token, seq }),
      });
      await r.arrayBuffer();
      logs.rows[row]!.replica = r.headers.get('x-drill-replica') ?? '';
      logs.settle(row, r.status === 201 ? 'ok' : 'failed', now());
      if (seq % 3 === 0) {
        // An id of its own: its log line then carries a token no order's line does, so a lost order line is never
        // found again in the attachment's line.
        const fileToken = crypto.randomUUID();
        const body = attachmentBody(fileToken, seq);
        const f = files.push({ seq, name: attachmentBlobName(fileToken), sha256: sha256Hex(body), sentMs: now() });
        const p = await fetch(`${info.serviceUrl}/orders/${fileToken}/attachment`, { method: 'PUT', body: new Uint8Array(body) });
        await p.arrayBuffer();
        files.settle(f, p.status === 201 ? 'ok' : 'failed', now());
      }
      await sleep(50);
    }
    const faultMs = now();
    const acked = logs.entries().filter((e) => e.outcome === 'ok').length;
    assert.equal(acked, 60, 'every order acknowledged on a healthy lab');
    assert.equal(files.entries().filter((e) => e.outcome === 'ok').length, 20);
    // Two passes of the shipper: everything written before the last one is shipped.
    await sleep(SHIP_MS * 2 + 1000);

    const fv = checkFiles(files.entries(), await readStoredFiles(lab.dir), faultMs);
    assert.deepEqual([fv.acknowledged, fv.survived, fv.lost, fv.rpoSeconds], [20, 20, 0, 0]);
    const shipped = await readShippedLogs(lab.dir);
    const lv = checkLogs(logs.entries(), shipped.tokens, faultMs);
    assert.deepEqual([lv.acknowledged, lv.survived, lv.lost, lv.rpoSeconds], [60, 60, 0, 0]);
    assert.equal(lv.replicas.length, 2, 'both replicas answered and shipped');

    // Cut the shipping: delete one replica's newest segment from Blob.
    const victim = shipped.segments
      .filter((s) => s.startsWith(`${lv.replicas[0]!.replica}/`))
      .sort()
      .at(-1)!;
    const offset = Number(victim.split('/')[1]!.replace('.jsonl', ''));
    const state = (await readJson<Record<string, number>>(labPaths(lab.dir).serviceLogs.shipState))!;
    const file = `${lv.replicas[0]!.replica}.jsonl`;
    // The segment's lines, read from the replica's own log file, not from Blob.
    const local = readFileSync(join(labPaths(lab.dir).serviceLogs.dir, file))
      .subarray(offset, state[file])
      .toString('utf8');
    const inSegment = new Set(
      local
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l).token as string | null),
    );
    const expectedLost = logs.entries().filter((e) => e.outcome === 'ok' && inSegment.has(e.token));
    assert.ok(expectedLost.length > 0, `segment ${victim} holds acknowledged lines`);
    const blob = (await labBlobEnv(lab.dir))!;
    await blobServiceFromEnv(blob.env).getContainerClient(LAB_LOGS_CONTAINER).deleteBlob(victim);

    const cut = checkLogs(logs.entries(), (await readShippedLogs(lab.dir)).tokens, faultMs);
    assert.equal(cut.lost, expectedLost.length);
    // RPO: from the newest acknowledged line acked before the first lost one, to the fault.
    const firstLostAck = Math.min(...expectedLost.map((e) => e.ackMs!));
    const anchor = Math.max(
      ...logs
        .entries()
        .filter((e) => e.outcome === 'ok' && e.ackMs! < firstLostAck)
        .map((e) => e.ackMs!),
    );
    assert.equal(cut.rpoSeconds, (faultMs - anchor) / 1000);
    assert.ok(cut.rpoSeconds > 0);
  });

  test('the load generator uploads attachments at its share and ledgers files and log lines the read-back finds', async () => {
    const info = await labUp({ dir: lab.dir, replicas: 2, logShipIntervalMs: SHIP_MS });
    const clock = createClock();
    const gen = new LoadGenerator(
      {
        url: info.serviceUrl,
        rate: 40,
        requests: [{ method: 'POST', path: '/orders', body: { item: 'gen', token: '{{token}}', seq: '{{seq}}' }, weight: 1 }],
        timeoutMs: 2000,
        maxInFlight: 100,
        connections: 8,
        attachments: { share: 0.25 },
      },
      clock,
    );
    gen.start(3000);
    // The duration counts from the end of the client's warm-up: wait past it before stopping.
    await sleep(4000);
    await gen.stop();
    const faultMs = clock.now();
    const { files, logs } = gen.classLedgers();
    // 120 requests, a quarter of them uploads (smooth weighted round-robin: exactly 30).
    assert.equal(files.length, 30);
    assert.equal(logs.length, 120);
    assert.equal(files.filter((f) => f.outcome === 'ok').length, 30);
    await sleep(SHIP_MS * 2 + 1000);
    const fv = checkFiles(files, await readStoredFiles(lab.dir), faultMs);
    assert.deepEqual([fv.acknowledged, fv.lost, fv.rpoSeconds], [30, 0, 0]);
    const lv = checkLogs(logs, (await readShippedLogs(lab.dir)).tokens, faultMs);
    assert.deepEqual([lv.acknowledged, lv.lost, lv.rpoSeconds], [120, 0, 0]);
  });
});
