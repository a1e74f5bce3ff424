import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errors } from 'undici';
import { classifyError, classifyStatus, TIMED_OUT } from '../../lib/load/outcome.ts';
import { Outcome } from '../../lib/measure/request-log.ts';

test('status codes: 2xx and 3xx ok, 4xx and 5xx their own errors', () => {
  const table: Array<[number, number]> = [
    [200, Outcome.ok],
    [204, Outcome.ok],
    [301, Outcome.ok],
    [304, Outcome.ok],
    [400, Outcome.http4xx],
    [429, Outcome.http4xx],
    [499, Outcome.http4xx],
    [500, Outcome.http5xx],
    [503, Outcome.http5xx],
    [599, Outcome.http5xx],
  ];
  for (const [status, outcome] of table) assert.equal(classifyStatus(status), outcome, `HTTP ${status}`);
});

test('errors: refused and reset, timeouts ours and undici, everything else other', () => {
  const sysErr = (code: string): Error => Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
  const table: Array<[unknown, number, string]> = [
    [sysErr('ECONNREFUSED'), Outcome.refused, 'nobody listening'],
    [sysErr('ECONNRESET'), Outcome.refused, 'peer reset'],
    [sysErr('EPIPE'), Outcome.refused, 'broken pipe'],
    [new errors.SocketError('other side closed'), Outcome.refused, 'undici socket error'],
    [new Error('other side closed'), Outcome.refused, 'message only'],
    [TIMED_OUT, Outcome.timeout, 'our timeout'],
    [new errors.HeadersTimeoutError(), Outcome.timeout, 'undici headers timeout'],
    [new errors.BodyTimeoutError(), Outcome.timeout, 'undici body timeout'],
    [new errors.ConnectTimeoutError(), Outcome.timeout, 'undici connect timeout'],
    [new errors.RequestAbortedError(), Outcome.timeout, 'aborted'],
    [new DOMException('The operation was aborted', 'AbortError'), Outcome.timeout, 'AbortSignal'],
    [new DOMException('The operation timed out', 'TimeoutError'), Outcome.timeout, 'AbortSignal.timeout'],
    [new TypeError('fetch failed', { cause: sysErr('ECONNRESET') }), Outcome.refused, 'wrapped'],
    [sysErr('ENOTFOUND'), Outcome.other, 'DNS'],
    [sysErr('ERR_TLS_CERT_ALTNAME_INVALID'), Outcome.other, 'TLS'],
    [new errors.ResponseExceededMaxSizeError(), Outcome.other, 'undici, unclassified'],
    [new Error('surprise'), Outcome.other, 'plain error'],
    ['a string', Outcome.other, 'not an error'],
    [null, Outcome.other, 'null'],
  ];
  for (const [err, outcome, what] of table) assert.equal(classifyError(err), outcome, what);
});
