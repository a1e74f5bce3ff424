import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { WRITE_NOT_APPLIED_HEADER, WRITE_NOT_APPLIED_VALUE } from '../../lib/load/ledger.ts';
import { Outcome } from '../../lib/measure/request-log.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { profile, readBody, runFor, startServer, unusedPort } from '../support/load-servers.ts';

/**
 * The write ledger as the generator fills it, against a loopback server that answers each write in a
 * way decided by the write's item: every kind of fate a database failover produces, seen from the client.
 */
const BEHAVIOURS = ['ok', 'bad', 'down-not-applied', 'down', 'reset', 'hang'] as const;
type Behaviour = (typeof BEHAVIOURS)[number];
const EXPECTED: Record<Behaviour, 'ok' | 'failed' | 'unknown'> = {
  ok: 'ok',
  bad: 'failed', // 4xx: the service refused it before any commit
  'down-not-applied': 'failed', // 5xx that says the write was not applied
  down: 'unknown', // 5xx: the commit may have happened before the database died
  reset: 'unknown', // connection reset after the request went out
  hang: 'unknown', // timed out after it went out
};

test('every write is in the ledger once, with the token and seq it carried, the ack time and its fate', async () => {
  const clock = createClock();
  const received = new Map<string, { seq: number; item: Behaviour }>();
  const server = await startServer((req, res) => {
    if (req.method !== 'POST') return (void req.resume(), void res.end('[]'));
    readBody(req).then((text) => {
      const b = JSON.parse(text) as { item: Behaviour; token: string; seq: string };
      received.set(b.token, { seq: Number(b.seq), item: b.item });
      switch (b.item) {
        case 'ok':
          res.statusCode = 201;
          return void res.end('{}');
        case 'bad':
          res.statusCode = 400;
          return void res.end('{}');
        case 'down-not-applied':
          res.writeHead(503, { [WRITE_NOT_APPLIED_HEADER]: WRITE_NOT_APPLIED_VALUE });
          return void res.end('{}');
        case 'down':
          res.statusCode = 503;
          return void res.end('{}');
        case 'reset':
          return void req.socket.destroy();
        case 'hang':
          return;
      }
    });
  });
  const gen = new LoadGenerator(
    profile(server.url, {
      rate: 350,
      timeoutMs: 300,
      requests: [
        { method: 'GET', path: '/orders', weight: 1 },
        ...BEHAVIOURS.map((item) => ({
          method: 'POST' as const,
          path: '/orders',
          weight: 1,
          body: { item, token: '{{token}}', seq: '{{seq}}' },
        })),
      ],
    }),
    clock,
  );
  try {
    await runFor(gen, clock, 1000);
    const { ledger, log } = gen;
    assert.equal(ledger.count, log.count - 50, 'every POST and no GET is a ledger row');
    assert.equal(ledger.count, 300);
    assert.equal(ledger.settledPrefix(), ledger.count, 'after stop() no write is pending');
    assert.match(ledger.tag, /^[0-9a-f]{8}$/);

    const seen = new Set<string>();
    const fates = new Map<Behaviour, Set<string>>();
    for (let r = 0; r < ledger.count; r++) {
      const token = ledger.tokenOf(r);
      const i = ledger.request[r]!;
      assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a version-4 UUID');
      assert.ok(token.startsWith(ledger.tag), 'every token starts with the ledger tag');
      assert.ok(!seen.has(token), 'tokens are unique');
      seen.add(token);
      assert.notEqual(log.template[i], 0, 'a ledger row points at a POST');
      if (r > 0) assert.ok(i > ledger.request[r - 1]!, 'seq increases with the row');
      const got = received.get(token);
      assert.ok(got, `token of row ${r} reached the server`);
      assert.equal(got.seq, i, 'the body carried seq = request log index');
      assert.equal(BEHAVIOURS[log.template[i]! - 1], got.item);
      if (!fates.has(got.item)) fates.set(got.item, new Set());
      fates.get(got.item)!.add(ledger.fateOf(r));
      assert.equal(ledger.sentMs(r), log.scheduledMs[i]);
      const ack = ledger.ackMs(r);
      if (ledger.fateOf(r) === 'ok') {
        assert.equal(log.outcome[i], Outcome.ok);
        assert.ok(ack !== null && ack > ledger.sentMs(r) && ack - ledger.sentMs(r) < 300, `ack ${ack}`);
      } else assert.equal(ack, null);
    }
    assert.equal(received.size, ledger.count, 'the server saw exactly the ledger tokens');
    for (const b of BEHAVIOURS) assert.deepEqual([...(fates.get(b) ?? [])], [EXPECTED[b]], `${b} writes are ${EXPECTED[b]}`);

    const c = ledger.counts();
    assert.deepEqual(c, { pending: 0, ok: 50, failed: 100, unknown: 150 });
    const entries = ledger.entries();
    assert.equal(entries.length, 300);
    assert.equal(entries[7]!.token, ledger.tokenOf(7));
    assert.equal(entries[7]!.seq, ledger.request[7]);
    assert.equal(ledger.rowAt(ledger.sentMs(10)), 10);
    assert.equal(ledger.acknowledgedSince(-1), 50);
  } finally {
    await gen.stop();
    await server.close();
  }
});

test('writes that never went out are failed: refused connections, drops at the in-flight cap', async () => {
  const clock = createClock();
  const refused = new LoadGenerator(
    profile(`http://127.0.0.1:${await unusedPort()}`, {
      rate: 100,
      timeoutMs: 500,
      requests: [{ method: 'POST', path: '/orders', weight: 1, body: { item: 'x', token: '{{token}}' } }],
    }),
    clock,
  );
  try {
    await runFor(refused, clock, 500);
    assert.equal(refused.ledger.count, 50);
    assert.deepEqual(refused.ledger.counts(), { pending: 0, ok: 0, failed: 50, unknown: 0 });
  } finally {
    await refused.stop();
  }

  // A server that never answers and a cap of 5: five writes go out and time out (unknown), the rest are dropped (failed).
  const server = await startServer((req) => void req.resume());
  const capped = new LoadGenerator(
    profile(server.url, {
      rate: 100,
      timeoutMs: 2000,
      maxInFlight: 5,
      requests: [{ method: 'POST', path: '/orders', weight: 1, body: { item: 'x', token: '{{token}}' } }],
    }),
    clock,
  );
  try {
    await runFor(capped, clock, 500);
    const dropped = Array.from(capped.log.outcome.subarray(0, capped.log.count)).filter((o) => o === Outcome.dropped).length;
    assert.equal(dropped, 45);
    assert.deepEqual(capped.ledger.counts(), { pending: 0, ok: 0, failed: 45, unknown: 5 });
  } finally {
    await capped.stop();
    await server.close();
  }
});

test('a template without {{token}} writes nothing to the ledger; {{seq}} alone still fills', async () => {
  const clock = createClock();
  const bodies: string[] = [];
  const server = await startServer((req, res) => void readBody(req).then((b) => (bodies.push(b), res.end())));
  const gen = new LoadGenerator(
    profile(server.url, { rate: 100, requests: [{ method: 'POST', path: '/', weight: 1, body: { n: '{{seq}}' } }] }),
    clock,
  );
  try {
    await runFor(gen, clock, 300);
    assert.equal(gen.ledger.count, 0);
    assert.equal(bodies.length, 30);
    assert.deepEqual(
      bodies.map((b) => Number(JSON.parse(b).n)).sort((a, b) => a - b),
      [...Array(30).keys()],
    );
  } finally {
    await gen.stop();
    await server.close();
  }
});
