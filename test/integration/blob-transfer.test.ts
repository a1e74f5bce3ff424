import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  BlobTransferError,
  blobServiceFromEnv,
  downloadToFileParallel,
  listBackups,
  startAzurite,
  uploadStream,
  type AzuriteHandle,
  type BlobServiceClient,
  type ContainerClient,
} from '../../lib/adapters/blob/index.ts';

let dir = '';
let az: AzuriteHandle | undefined;
let service: BlobServiceClient;
let container: ContainerClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-blob-transfer-'));
  az = await startAzurite({ dir: join(dir, 'azurite') });
  service = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: az.connectionString });
  container = service.getContainerClient('transfer');
  await container.create();
});

after(async () => {
  await az?.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Random bytes in irregular chunk sizes (so block boundaries fall mid-chunk), hashed as produced:
 * the expected sha256 comes from the source, not from the code under test.
 */
function generated(totalBytes: number, onChunk: (generatedSoFar: number) => void = () => {}) {
  const hash = createHash('sha256');
  let produced = 0;
  async function* chunks() {
    for (let i = 0; produced < totalBytes; i++) {
      const size = Math.min(totalBytes - produced, 60_000 + ((i * 7919) % 13_000));
      const chunk = randomBytes(size);
      hash.update(chunk);
      produced += size;
      onChunk(produced);
      yield chunk;
    }
  }
  return { stream: Readable.from(chunks()), digest: () => hash.digest('hex') };
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.partial-'));
}

test('a 40 MB stream uploads in parallel blocks and downloads in parallel ranges, byte for byte', async () => {
  const total = 40 * 1_000_000;
  const blockSize = 1_000_003; // odd on purpose: the last block is short and chunks straddle blocks
  const concurrency = 4;
  let staged = 0;
  let maxLead = 0;
  const src = generated(total, (produced) => {
    maxLead = Math.max(maxLead, produced - staged);
  });
  const uploadEvents: number[] = [];
  const takenAt = new Date().toISOString();
  const up = await uploadStream(container, 'db/orders/2026-11-23T10-00-00Z.dump', src.stream, {
    blockSize,
    concurrency,
    metadata: { backup_timestamp: takenAt, kind: 'logical', database: 'orders' },
    onProgress: (p) => {
      staged = p.bytes;
      uploadEvents.push(p.bytes);
    },
  });
  const expected = src.digest();
  assert.equal(up.bytes, total);
  assert.equal(up.sha256, expected);
  assert.equal(up.blocks, Math.ceil(total / blockSize));
  assert.ok(up.durationMs > 0);
  assert.deepEqual(
    uploadEvents,
    [...uploadEvents].sort((a, b) => a - b),
    'progress only grows',
  );
  assert.equal(uploadEvents.at(-1), total);
  // Streaming with backpressure: the source never runs further ahead than the blocks in flight, the
  // one being filled, and the 16 chunks Readable.from buffers (measured lead: about 5.1 MB of 40).
  assert.ok(maxLead <= (concurrency + 1) * blockSize + 16 * 73_000, `source ran ${maxLead} bytes ahead of staged blocks`);

  const out = join(dir, 'orders.dump');
  const downloadEvents: number[] = [];
  const down = await downloadToFileParallel(container.getBlobClient('db/orders/2026-11-23T10-00-00Z.dump'), out, {
    rangeSize: 3 * 1024 * 1024 + 17,
    concurrency: 4,
    onProgress: (p) => {
      assert.equal(p.totalBytes, total);
      downloadEvents.push(p.bytes);
    },
  });
  assert.equal(down.bytes, total);
  assert.equal(down.sha256, expected);
  assert.equal((await stat(out)).size, total);
  assert.equal(await sha256File(out), expected, 'the hash computed while downloading matches the file on disk');
  assert.equal(downloadEvents.at(-1), total);
  assert.deepEqual(await leftovers(), []);

  const props = await container.getBlobClient('db/orders/2026-11-23T10-00-00Z.dump').getProperties();
  assert.deepEqual(props.metadata, { backup_timestamp: takenAt, kind: 'logical', database: 'orders' });
  const listed = await listBackups(container, 'db/orders/');
  assert.equal(listed.length, 1);
  assert.equal(listed[0]?.takenAt, takenAt, 'full-precision time comes from metadata');
  assert.equal(listed[0]?.size, total);
  assert.equal(listed[0]?.lastModified.slice(-5), '.000Z', 'lastModified has whole seconds only');
});

test('the parallel reader and the SDK downloadToFile give identical files', async () => {
  const src = generated(5_500_000);
  const up = await uploadStream(container, 'compare.bin', src.stream, { blockSize: 512 * 1024 });
  const blob = container.getBlobClient('compare.bin');
  const a = join(dir, 'compare-parallel.bin');
  const b = join(dir, 'compare-sdk.bin');
  const res = await downloadToFileParallel(blob, a, {
    rangeSize: 700_001,
    concurrency: 3,
    expectedSha256: up.sha256,
    expectedBytes: up.bytes,
  });
  await blob.downloadToFile(b);
  const [fa, fb] = await Promise.all([readFile(a), readFile(b)]);
  assert.equal(fa.length, 5_500_000);
  assert.ok(fa.equals(fb), 'files differ');
  assert.equal(res.sha256, src.digest());
});

test('empty blobs round-trip', async () => {
  const up = await uploadStream(container, 'empty.bin', Readable.from([]));
  assert.deepEqual({ bytes: up.bytes, blocks: up.blocks }, { bytes: 0, blocks: 0 });
  const out = join(dir, 'empty.bin');
  const down = await downloadToFileParallel(container.getBlobClient('empty.bin'), out);
  assert.equal(down.bytes, 0);
  assert.equal(down.sha256, createHash('sha256').digest('hex'));
  assert.equal((await stat(out)).size, 0);
});

test('a hyphenated metadata key is refused before anything is sent', async () => {
  await assert.rejects(
    uploadStream(container, 'hyphen.bin', Readable.from([Buffer.from('x')]), {
      metadata: { 'backup-timestamp': new Date().toISOString() },
    }),
    (e: unknown) => {
      assert.ok(e instanceof BlobTransferError);
      assert.equal(e.code, 'invalid-argument');
      assert.match(e.message, /metadata key "backup-timestamp" is not a C# identifier/);
      assert.match(e.message, /no hyphens/);
      assert.match(e.message, /use "backup_timestamp"/);
      return true;
    },
  );
  assert.equal(await container.getBlobClient('hyphen.bin').exists(), false);
});

test('a failing source commits nothing and leaves the previous blob as it was', async () => {
  const first = await uploadStream(container, 'nightly.dump', Readable.from([randomBytes(300_000)]), { blockSize: 100_000 });
  async function* broken() {
    yield randomBytes(250_000);
    throw new Error('pg_dump exited with code 1');
  }
  await assert.rejects(uploadStream(container, 'nightly.dump', Readable.from(broken()), { blockSize: 100_000 }), (e: unknown) => {
    assert.ok(e instanceof BlobTransferError);
    assert.equal(e.code, 'upload-failed');
    assert.match(
      e.message,
      /upload of transfer\/nightly\.dump failed after 250000 bytes read; nothing was committed: pg_dump exited with code 1/,
    );
    return true;
  });
  const out = join(dir, 'nightly.dump');
  const down = await downloadToFileParallel(container.getBlobClient('nightly.dump'), out);
  assert.equal(down.sha256, first.sha256);
});

test('an aborted upload commits nothing', async () => {
  const ac = new AbortController();
  await assert.rejects(
    uploadStream(container, 'aborted-upload.bin', generated(8_000_000).stream, {
      blockSize: 1_000_000,
      concurrency: 2,
      signal: ac.signal,
      onProgress: () => ac.abort(),
    }),
    (e: unknown) =>
      e instanceof BlobTransferError &&
      e.code === 'aborted' &&
      e.message === 'upload of transfer/aborted-upload.bin aborted; nothing was committed',
  );
  assert.equal(await container.getBlobClient('aborted-upload.bin').exists(), false);
});

test('uploading into a missing container names the container', async () => {
  const missing = service.getContainerClient('no-such-container');
  await assert.rejects(uploadStream(missing, 'a.bin', Readable.from([Buffer.from('abc')])), (e: unknown) => {
    assert.ok(e instanceof BlobTransferError);
    assert.equal(e.code, 'not-found');
    assert.match(e.message, /container "no-such-container" does not exist/);
    return true;
  });
});

test('a missing blob, container or target folder is a clear error naming it', async () => {
  const out = join(dir, 'missing.bin');
  await assert.rejects(downloadToFileParallel(container.getBlobClient('db/none.dump'), out), (e: unknown) => {
    assert.ok(e instanceof BlobTransferError);
    assert.equal(e.code, 'not-found');
    assert.equal(e.message, 'cannot download transfer/db/none.dump: blob "db/none.dump" not found in container "transfer"');
    return true;
  });
  await assert.rejects(
    downloadToFileParallel(service.getContainerClient('ghost').getBlobClient('x.dump'), out),
    /container "ghost" does not exist/,
  );
  await assert.rejects(stat(out), { code: 'ENOENT' });
  await assert.rejects(
    downloadToFileParallel(container.getBlobClient('compare.bin'), join(dir, 'no-such-dir', 'x.bin')),
    /^BlobTransferError: cannot download transfer\/compare\.bin to .*no-such-dir\/x\.bin: ENOENT/,
  );
});

test('a blob shorter than its manifest says is reported as truncated and no file is left', async () => {
  const up = await uploadStream(container, 'short.dump', Readable.from([randomBytes(1_000_000)]));
  const out = join(dir, 'short.dump');
  await assert.rejects(
    downloadToFileParallel(container.getBlobClient('short.dump'), out, { expectedBytes: up.bytes + 4096 }),
    (e: unknown) => {
      assert.ok(e instanceof BlobTransferError);
      assert.equal(e.code, 'truncated');
      assert.equal(e.message, 'transfer/short.dump is truncated: it has 1000000 bytes, expected 1004096');
      return true;
    },
  );
  await assert.rejects(stat(out), { code: 'ENOENT' });
  assert.deepEqual(await leftovers(), []);
});

test('a sha256 mismatch is an error and the file is discarded', async () => {
  await uploadStream(container, 'corrupt.dump', Readable.from([randomBytes(2_000_000)]));
  const out = join(dir, 'corrupt.dump');
  const wrong = 'ab'.repeat(32);
  await assert.rejects(
    downloadToFileParallel(container.getBlobClient('corrupt.dump'), out, { rangeSize: 300_000, expectedSha256: wrong }),
    (e: unknown) => {
      assert.ok(e instanceof BlobTransferError);
      assert.equal(e.code, 'checksum-mismatch');
      assert.match(e.message, new RegExp(`transfer/corrupt\\.dump: sha256 [0-9a-f]{64} does not match the expected ${wrong}`));
      return true;
    },
  );
  await assert.rejects(stat(out), { code: 'ENOENT' });
  assert.deepEqual(await leftovers(), []);
});

test('an aborted download stops and leaves no file', async () => {
  await uploadStream(container, 'abort.bin', generated(6_000_000).stream);
  const out = join(dir, 'abort.bin');
  const ac = new AbortController();
  await assert.rejects(
    downloadToFileParallel(container.getBlobClient('abort.bin'), out, {
      rangeSize: 200_000,
      concurrency: 1,
      signal: ac.signal,
      onProgress: () => ac.abort(),
    }),
    (e: unknown) => e instanceof BlobTransferError && e.code === 'aborted' && /download of transfer\/abort\.bin aborted/.test(e.message),
  );
  await assert.rejects(stat(out), { code: 'ENOENT' });
  assert.deepEqual(await leftovers(), []);
});

test('listBackups returns metadata times and null when a blob has none', async () => {
  const c = service.getContainerClient('listing');
  await c.create();
  const t1 = '2026-11-23T10:00:00.123Z';
  const t2 = '2026-11-23T10:00:00.456Z';
  await uploadStream(c, 'pg/orders/a.dump', Readable.from([Buffer.from('a')]), { metadata: { backup_timestamp: t1 } });
  await uploadStream(c, 'pg/orders/b.dump', Readable.from([Buffer.from('bb')]), { metadata: { backup_timestamp: t2, kind: 'logical' } });
  await uploadStream(c, 'pg/orders/c.dump', Readable.from([Buffer.from('ccc')]));
  await uploadStream(c, 'pg/other/d.dump', Readable.from([Buffer.from('d')]));
  const list = await listBackups(c, 'pg/orders/');
  assert.deepEqual(
    list.map((b) => [b.name, b.size, b.takenAt, b.metadata]),
    [
      ['pg/orders/a.dump', 1, t1, { backup_timestamp: t1 }],
      ['pg/orders/b.dump', 2, t2, { backup_timestamp: t2, kind: 'logical' }],
      ['pg/orders/c.dump', 3, null, {}],
    ],
  );
  for (const b of list) assert.ok(!Number.isNaN(Date.parse(b.lastModified)));
  await assert.rejects(
    listBackups(service.getContainerClient('nobackups'), 'pg/'),
    /cannot list backups under "pg\/" in nobackups: container "nobackups" does not exist/,
  );
});
