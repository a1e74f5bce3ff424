import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { summarize } from '../../lib/measure/summary.ts';
import { profile, readBody, runFor, startServer } from '../support/load-servers.ts';

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  tenant: string | undefined;
  body: string;
  socket: Socket;
}

test('templates by weight, placeholders filled per request: tokens unique, seq = log index, increasing on each connection', async () => {
  const clock = createClock();
  const seen: Seen[] = [];
  const server = await startServer((req, res) => {
    readBody(req).then((body) => {
      seen.push({
        method: req.method!,
        url: req.url!,
        contentType: req.headers['content-type'],
        tenant: req.headers['x-tenant'] as string | undefined,
        body,
        socket: req.socket,
      });
      res.end();
    });
  });
  const gen = new LoadGenerator(
    profile(`${server.url}/api/`, {
      rate: 400,
      requests: [
        {
          method: 'POST',
          path: '/orders',
          weight: 3,
          headers: { 'X-Tenant': 'drill' },
          body: {
            id: '{{token}}',
            seq: '{{seq}}',
            note: 'order {{seq}} of {{token}}',
            items: [{ sku: 'a-{{seq}}' }],
            n: 1,
            '{{seq}}': 'keys stay',
          },
        },
        { method: 'GET', path: '/orders?limit=1', weight: 1 },
        { method: 'PUT', path: '/fixed', weight: 1, body: { fixed: true, list: [1, 2] } },
      ],
    }),
    clock,
  );
  try {
    await runFor(gen, clock, 1000);
    const log = gen.log;
    assert.equal(summarize(log).ok, 400);
    assert.equal(seen.length, 400);

    // Smooth weighted round-robin: exact shares, and the mix repeats every 5 requests.
    const counts = [0, 0, 0];
    for (let i = 0; i < log.count; i++) counts[log.template[i]!]!++;
    assert.deepEqual(counts, [240, 80, 80]);
    for (let i = 5; i < log.count; i++) assert.equal(log.template[i], log.template[i - 5]);

    const posts = seen.filter((s) => s.method === 'POST');
    const gets = seen.filter((s) => s.method === 'GET');
    const puts = seen.filter((s) => s.method === 'PUT');
    assert.equal(posts.length, 240);
    assert.ok(gets.every((s) => s.url === '/api/orders?limit=1' && s.body === '' && s.contentType === undefined));
    assert.ok(
      puts.every((s) => s.url === '/api/fixed' && s.body === '{"fixed":true,"list":[1,2]}' && s.contentType === 'application/json'),
    );

    const tokens = new Set<string>();
    const seqs: number[] = [];
    const perSocket = new Map<Socket, number[]>();
    for (const p of posts) {
      assert.equal(p.url, '/api/orders');
      assert.equal(p.contentType, 'application/json');
      assert.equal(p.tenant, 'drill');
      const b = JSON.parse(p.body) as {
        id: string;
        seq: string;
        note: string;
        items: Array<{ sku: string }>;
        n: number;
        '{{seq}}': string;
      };
      assert.match(b.id, /^[0-9a-f-]{36}$/);
      assert.equal(b.note, `order ${b.seq} of ${b.id}`, 'a placeholder repeated in one string gets the same value');
      assert.deepEqual(b.items, [{ sku: `a-${b.seq}` }]);
      assert.equal(b.n, 1);
      assert.equal(b['{{seq}}'], 'keys stay');
      const seq = Number(b.seq);
      assert.equal(log.template[seq], 0, `seq ${seq} is the log index of a POST`);
      tokens.add(b.id);
      seqs.push(seq);
      if (!perSocket.has(p.socket)) perSocket.set(p.socket, []);
      perSocket.get(p.socket)!.push(seq);
    }
    assert.equal(tokens.size, 240, 'every token unique');
    assert.equal(new Set(seqs).size, 240, 'every seq unique');
    // One request at a time per connection, sent in schedule order: each connection sees seq rise.
    for (const list of perSocket.values()) {
      for (let k = 1; k < list.length; k++) assert.ok(list[k]! > list[k - 1]!, `seq ${list[k]} after ${list[k - 1]} on one connection`);
    }
  } finally {
    await gen.stop();
    await server.close();
  }
});
