import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ensureRoleAndDatabase, initCluster, startCluster, stopCluster, waitReady } from '../../lib/adapters/postgres/cluster.ts';
import { readBackTokens } from '../../lib/adapters/postgres/ledger.ts';
import { checkLedgerOn } from '../../lib/scenario/probes/ledger-readback.ts';
import { procState, childrenOf } from '../../lib/util/proc.ts';
import { ensureSchema } from '../../lib/lab/daemon/orders-db.ts';
import { WriteFate, WriteLedger } from '../../lib/load/ledger.ts';
import { createRequestLog, Outcome } from '../../lib/measure/request-log.ts';
import { freePort } from '../support/ports.ts';
import { makeTempDir, type TempDir } from '../support/tmp.ts';

/**
 * The ledger read-back against a real PostgreSQL: the tokens a ledger holds, some rows written, some not,
 * and what the harness concludes from one snapshot read by index lookup and by scan.
 */
describe('write ledger read-back on PostgreSQL', () => {
  let tmp: TempDir;
  let dataDir: string;
  let conn: pg.ClientConfig;
  let pids: number[] = [];

  before(async () => {
    tmp = await makeTempDir('readback');
    dataDir = join(tmp.path, 'data');
    const port = await freePort();
    await initCluster(dataDir, { port, socketDir: join(tmp.path, 'sock') });
    const pid = await startCluster(dataDir, { logFile: join(tmp.path, 'pg.log') });
    pids = [pid, ...(await childrenOf(pid))];
    const admin = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
    await waitReady(admin, { timeoutMs: 10_000 });
    await ensureRoleAndDatabase(admin, { role: 'drill', database: 'orders' });
    conn = { host: '127.0.0.1', port, user: 'drill', database: 'orders' };
    const pool = new pg.Pool(conn);
    await ensureSchema(pool);
    await pool.end();
  });

  after(async () => {
    try {
      await stopCluster(dataDir, 'immediate', { timeoutMs: 10_000 });
    } finally {
      for (const pid of pids) if ((await procState(pid)) === 'alive') process.kill(pid, 'SIGKILL');
      await tmp.remove();
    }
  });

  async function exec(sql: string, params: unknown[] = []): Promise<void> {
    const c = new pg.Client(conn);
    await c.connect();
    try {
      await c.query(sql, params);
    } finally {
      await c.end();
    }
  }

  /** A settled ledger of n writes, one every 10 ms, with the given fates; acks 3 ms after the send. */
  function ledgerOf(n: number, fate: (i: number) => number): WriteLedger {
    const log = createRequestLog(16);
    const ledger = new WriteLedger(log);
    for (let i = 0; i < n; i++) {
      const idx = log.push(i * 10, 0);
      const f = fate(i);
      log.outcome[idx] = f === WriteFate.ok ? Outcome.ok : Outcome.timeout;
      log.latencyMs[idx] = 3;
      ledger.settle(ledger.push(idx), f as 1 | 2 | 3);
    }
    return ledger;
  }

  test('12,000 writes read back in batches: lost, unknowns, failures and a stranger, each counted once', async () => {
    // 0-8999 ok, committed; 9000-9499 ok but missing (lost); 9500-9999 unknown, even ones committed;
    // 10000-10999 failed, absent; 11000-11999 ok, committed (the new primary's writes).
    const ledger = ledgerOf(12_000, (i) =>
      i >= 9500 && i < 10_000 ? WriteFate.unknown : i >= 10_000 && i < 11_000 ? WriteFate.failed : WriteFate.ok,
    );
    const write = (i: number) => !(i >= 9000 && i < 9500) && !(i >= 9500 && i < 10_000 && i % 2 === 1) && !(i >= 10_000 && i < 11_000);
    const tokens: string[] = [];
    const seqs: number[] = [];
    for (let r = 0; r < ledger.count; r++) {
      if (write(r)) {
        tokens.push(ledger.tokenOf(r));
        seqs.push(ledger.request[r]!);
      }
    }
    tokens.push(`${ledger.tag}-0000-4000-8000-000000000000`);
    seqs.push(424242);
    await exec(`INSERT INTO orders (item, token, seq) SELECT 'widget', t, s FROM unnest($1::text[], $2::bigint[]) AS u(t, s)`, [
      tokens,
      seqs,
    ]);
    // Another run's rows must not count as strangers.
    await exec(`INSERT INTO orders (item, token, seq) VALUES ('widget', 'ffffffff-other-run', 1)`);

    const check = await checkLedgerOn(conn, ledger, {
      faultMs: 95_000,
      settleTimeoutMs: 1000,
      signal: AbortSignal.timeout(30_000),
      batchSize: 5000,
    });
    const v = check.verdict;
    assert.equal(check.judged, 12_000);
    assert.equal(check.read.batches, 3, '12,000 tokens in batches of 5,000');
    assert.equal(v.total, 12_000);
    assert.equal(v.acknowledged, 10_500);
    assert.equal(v.survived, 10_000);
    assert.equal(v.lost, 500);
    assert.equal(v.unknownPresent, 250);
    assert.equal(v.unknownAbsent, 250);
    assert.equal(v.failedAbsent, 1000);
    assert.equal(v.failedPresent, 0);
    assert.equal(v.unexpected, 1);
    // Write 8999 was acked at 89,993 ms; the fault at 95,000 ms.
    assert.ok(Math.abs(v.rpoSeconds - (95_000 - 89_993) / 1000) < 1e-6, String(v.rpoSeconds));
    assert.deepEqual(v.lostWindow, { firstAckMs: 90_003, lastAckMs: 94_993 });
    assert.equal(check.consistency.rowsByToken, 10_250);
    assert.equal(check.consistency.rowsByScan, 10_250);
    assert.equal(check.consistency.duplicates, 0);
    assert.equal(check.consistency.seqMismatches, 0);
    assert.deepEqual(check.consistency.problems, ["1 rows carry this run's tag but no token it sent"]);
  });

  test('a table without a unique token: a duplicate row and a wrong seq are caught by the scan', async () => {
    await exec('CREATE TABLE loose (token text, seq bigint)');
    const ledger = ledgerOf(100, () => WriteFate.ok);
    const tokens = Array.from({ length: 100 }, (_, r) => ledger.tokenOf(r));
    const seqs = Array.from({ length: 100 }, (_, r) => (r === 7 ? 999 : ledger.request[r]!));
    await exec('INSERT INTO loose SELECT * FROM unnest($1::text[], $2::bigint[])', [tokens, seqs]);
    await exec('INSERT INTO loose VALUES ($1, $2)', [tokens[3], 3]);
    const table = { table: 'loose', tokenColumn: 'token', seqColumn: 'seq' };
    const check = await checkLedgerOn(conn, ledger, { faultMs: 2000, settleTimeoutMs: 1000, signal: AbortSignal.timeout(30_000), table });
    assert.equal(check.verdict.lost, 0);
    assert.equal(check.consistency.duplicates, 1);
    assert.equal(check.consistency.seqMismatches, 1);
    assert.equal(check.consistency.ok, false);

    // Without a seq column the stored seq is not compared.
    const noSeq = await readBackTokens(conn, tokens, ledger.tag, { table: { ...table, seqColumn: null } });
    assert.equal(noSeq.byToken.size, 100);
    assert.ok(noSeq.byScan.every((r) => r.seq === null));
    assert.equal(noSeq.byScan.length, 101);
  });

  test('a pending write is waited for, then refused; an unreachable database fails the read-back', async () => {
    const log = createRequestLog(16);
    const ledger = new WriteLedger(log);
    ledger.push(log.push(0, 0));
    await assert.rejects(
      checkLedgerOn(conn, ledger, { faultMs: 0, settleTimeoutMs: 200, signal: AbortSignal.timeout(5000) }),
      /1 writes still pending after 200 ms/,
    );
    ledger.settle(0, WriteFate.ok);
    const port = await freePort();
    await assert.rejects(
      checkLedgerOn({ ...conn, port }, ledger, { faultMs: 0, settleTimeoutMs: 200, signal: AbortSignal.timeout(5000) }),
      /ECONNREFUSED/,
    );
  });
});
