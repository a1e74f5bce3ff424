// Pure formatting: no Azurite needed here, unlike the other blob-* files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEta, transferProgress } from '../../lib/adapters/blob/index.ts';

function clock(start = 0) {
  let t = start;
  return {
    now: () => t,
    set: (ms: number) => {
      t = ms;
    },
  };
}

test('the progress line shows amount, rate and ETA', () => {
  const c = clock();
  const p = transferProgress({ label: 'download', totalBytes: 512_000_000, now: c.now });
  c.set(1809);
  p.update(123_400_000);
  // 123.4 MB in 1.809 s = 68.2 MB/s; 388.6 MB left at that rate = 5.7 s, shown rounded up.
  assert.equal(p.line(), 'download  123.4/512.0 MB  68.2 MB/s  ETA 6s');
  assert.equal(p.bytes, 123_400_000);
});

test('before any time has passed the rate and ETA are unknown, not infinite', () => {
  const c = clock(5000);
  const p = transferProgress({ label: 'upload', totalBytes: 10_000_000, now: c.now });
  assert.equal(p.line(), 'upload  0.0/10.0 MB  -- MB/s  ETA --');
});

test('a finished transfer says ETA 0s', () => {
  const c = clock();
  const p = transferProgress({ label: 'x', totalBytes: 2_000_000, now: c.now });
  c.set(500);
  p.update(2_000_000);
  assert.equal(p.line(), 'x  2.0/2.0 MB  4.0 MB/s  ETA 0s');
});

test('an unknown total shows bytes and rate only', () => {
  const c = clock();
  const p = transferProgress({ label: 'pg_dump | upload', now: c.now });
  c.set(4000);
  p.update(12_000_000);
  assert.equal(p.line(), 'pg_dump | upload  12.0 MB  3.0 MB/s');
});

test('the rate follows the last seconds, so a stall shows as 0 MB/s', () => {
  const c = clock();
  const p = transferProgress({ label: 'dl', totalBytes: 1_000_000_000, now: c.now, windowMs: 5000 });
  for (let s = 1; s <= 10; s++) {
    c.set(s * 1000);
    p.update(s * 50_000_000); // 50 MB/s for 10 s
  }
  assert.equal(p.line(), 'dl  500.0/1000.0 MB  50.0 MB/s  ETA 10s');
  for (let s = 11; s <= 20; s++) {
    c.set(s * 1000);
    p.update(500_000_000 + (s - 10) * 10_000_000); // then 10 MB/s
  }
  // The lifetime average would be 30 MB/s; the window sees only the slow part.
  assert.equal(p.line(), 'dl  600.0/1000.0 MB  10.0 MB/s  ETA 40s');
  c.set(40_000);
  assert.equal(p.line(), 'dl  600.0/1000.0 MB  0.0 MB/s  ETA --');
});

test('ETA formatting', () => {
  assert.equal(formatEta(0), '0s');
  assert.equal(formatEta(0.2), '1s');
  assert.equal(formatEta(59), '59s');
  assert.equal(formatEta(60), '1m00s');
  assert.equal(formatEta(605), '10m05s');
  assert.equal(formatEta(3725), '1h02m');
  assert.equal(formatEta(-3), '0s');
});
