import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../lib/errors.ts';
import { compileTemplates, fillBody, validateProfile, WeightedPicker } from '../../lib/load/templates.ts';
import type { LoadProfile, RequestTemplate } from '../../lib/load/types.ts';

const base: LoadProfile = {
  url: 'http://127.0.0.1:8080',
  rate: 10,
  requests: [{ method: 'GET', path: '/', weight: 1 }],
  timeoutMs: 1000,
  maxInFlight: 10,
  connections: 2,
};
const withRequests = (requests: RequestTemplate[], url = base.url): LoadProfile => ({ ...base, url, requests });

test('smooth weighted round-robin: nginx sequence, exact shares, weight 0 never picked', () => {
  const p = new WeightedPicker([5, 1, 1]);
  // The sequence nginx documents for weights 5, 1, 1.
  assert.deepEqual(
    Array.from({ length: 7 }, () => p.next()),
    [0, 0, 1, 0, 2, 0, 0],
  );
  const q = new WeightedPicker([3, 0, 2]);
  const counts = [0, 0, 0];
  for (let k = 0; k < 5000; k++) counts[q.next()]!++;
  assert.deepEqual(counts, [3000, 0, 2000]);
  const f = new WeightedPicker([0.7, 0.2, 0.1]);
  const fc = [0, 0, 0];
  for (let k = 0; k < 10_000; k++) fc[f.next()]!++;
  assert.deepEqual(fc, [7000, 2000, 1000]);
});

test('invalid profiles are refused with the field named, as invalid input (exit code 2)', () => {
  const cases: Array<[Partial<LoadProfile>, RegExp]> = [
    [{ url: 'not a url' }, /url "not a url" is not a URL/],
    [{ url: 'ftp://host' }, /must be http or https/],
    [{ url: 'http://host/?q=1' }, /must not have a query/],
    [{ rate: -1 }, /rate must be a positive number/],
    [{ rate: Number.NaN }, /rate must be a positive number/],
    [{ timeoutMs: 0 }, /timeoutMs must be a positive number/],
    [{ maxInFlight: 0 }, /maxInFlight must be a positive integer/],
    [{ connections: 2.5 }, /connections must be a positive integer/],
    [{ requests: [] }, /at least one request/],
    [{ requests: Array.from({ length: 257 }, () => ({ method: 'GET' as const, path: '/', weight: 1 })) }, /at most 256/],
    [{ requests: [{ method: 'TRACE' as 'GET', path: '/', weight: 1 }] }, /requests\[0\]\.method "TRACE"/],
    [{ requests: [{ method: 'GET', path: 'x', weight: 1 }] }, /requests\[0\]\.path must start with "\/"/],
    [{ requests: [{ method: 'GET', path: '/', weight: -1 }] }, /requests\[0\]\.weight/],
    [{ requests: [{ method: 'GET', path: '/', weight: 0 }] }, /weights add up to 0/],
    [{ requests: [{ method: 'GET', path: '/', weight: 1, headers: { a: 1 as unknown as string } }] }, /headers\.a must be a string/],
    [{ requests: [{ method: 'GET', path: '/a b', weight: 1 }] }, /path "\/a b" has spaces/],
    [{ requests: [{ method: 'GET', path: '/', weight: 1, headers: { 'bad name': 'x' } }] }, /"bad name" is not a valid header name/],
    [{ requests: [{ method: 'GET', path: '/', weight: 1, headers: { 'x-a': 'one\r\nx-b: two' } }] }, /must not contain line breaks/],
    [{ requests: [{ method: 'GET', path: '/', weight: 1, headers: { 'Transfer-Encoding': 'chunked' } }] }, /manages this header itself/],
  ];
  for (const [over, message] of cases) {
    assert.throws(
      () => validateProfile({ ...base, ...over }),
      (e: unknown) => e instanceof UserError && e.exitCode === 2 && message.test(e.message),
      `${JSON.stringify(over).slice(0, 80)} -> ${message}`,
    );
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const p = withRequests([{ method: 'POST', path: '/', weight: 1, body: cyclic }]);
  assert.throws(() => compileTemplates(p, validateProfile(p)), /requests\[0\]\.body is not JSON/);
});

test('templates compile once: fixed bodies become one shared buffer, paths join the base path, headers lower-cased', () => {
  const p = withRequests(
    [
      { method: 'GET', path: '/health', weight: 1, headers: { Accept: 'text/plain' } },
      { method: 'PUT', path: '/items/1?x=y', weight: 1, body: { a: [1, 'two', null], b: { c: true } } },
      { method: 'POST', path: '/raw', weight: 1, body: 'just a string', headers: { 'Content-Type': 'text/plain' } },
    ],
    'http://127.0.0.1:8080/api/v1/',
  );
  const [get, put, raw] = compileTemplates(p, validateProfile(p));
  assert.equal(get!.path, '/api/v1/health');
  assert.deepEqual(get!.fixed, { path: '/api/v1/health', method: 'GET', headers: { accept: 'text/plain' } });
  assert.equal(put!.path, '/api/v1/items/1?x=y');
  assert.ok(Buffer.isBuffer(put!.fixed!.body));
  assert.equal(String(put!.fixed!.body), '{"a":[1,"two",null],"b":{"c":true}}');
  assert.equal(put!.headers['content-type'], 'application/json');
  assert.equal(String(raw!.fixed!.body), '"just a string"');
  assert.equal(raw!.headers['content-type'], 'text/plain', 'an explicit content type wins');
});

test('placeholders are filled in string values only; one token per request', () => {
  const body = {
    id: '{{token}}',
    copy: 'again {{token}}',
    seq: '{{seq}}',
    label: 'n={{seq}}; "quoted" \\ {{unknown}}',
    list: ['{{seq}}', 7, { deep: 'x{{seq}}y' }],
    '{{token}}': 'keys are data',
    skipped: undefined,
  };
  const p = withRequests([{ method: 'POST', path: '/', weight: 1, body }]);
  const [t] = compileTemplates(p, validateProfile(p));
  assert.equal(t!.fixed, null);
  let calls = 0;
  const filled = JSON.parse(fillBody(t!, 42, () => `tok${++calls}`));
  assert.equal(calls, 1, 'one token per request, however many placeholders');
  assert.deepEqual(filled, {
    id: 'tok1',
    copy: 'again tok1',
    seq: '42',
    label: 'n=42; "quoted" \\ {{unknown}}',
    list: ['42', 7, { deep: 'x42y' }],
    '{{token}}': 'keys are data',
  });
  const again = JSON.parse(fillBody(t!, 43, () => 'other'));
  assert.equal(again.id, 'other');
  assert.equal(again.seq, '43');
});
