/**
 * Which failed queries leave the lab service's database connection fit for the next one: a statement's own error
 * keeps it (the lab integration test shows what dropping it cost), anything that says the connection or the server
 * is in doubt drops it so the next query reconnects through the endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepsSession } from '../../lib/lab/daemon/orders-db.ts';

const withCode = (code: unknown) => Object.assign(new Error('from the server'), { code });

test('a statement error keeps the connection: missing table, unique token, bad input, deadlock', () => {
  for (const code of ['42P01', '23505', '22P02', '40P01', '40001', '0A000', '21000'])
    assert.equal(keepsSession(withCode(code)), true, code);
});

test('a connection, server-state or client-side failure drops it', () => {
  // 08006 connection failure, 25006 read-only (a demoted node), 53300 too many connections, 57P01 admin shutdown,
  // 58030 I/O error, XX000 internal error.
  for (const code of ['08006', '25006', '53300', '57P01', '58030', 'XX000']) assert.equal(keepsSession(withCode(code)), false, code);
  assert.equal(keepsSession(new Error('Connection terminated unexpectedly')), false, 'no SQLSTATE: the socket');
  assert.equal(keepsSession(new Error('Query read timeout')), false, "the client's query timeout");
  assert.equal(keepsSession(withCode('ECONNRESET')), false, 'a Node socket code is not a SQLSTATE');
  assert.equal(keepsSession(null), false);
});
