/**
 * Range faults the service does not produce on demand, injected by a loopback proxy in front of
 * Azurite: bodies cut mid-range, a blob replaced between ranges, properties that claim more bytes
 * than the blob holds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  BlobTransferError,
  blobServiceFromEnv,
  downloadToFileParallel,
  startAzurite,
  uploadStream,
  type AzuriteHandle,
  type ContainerClient,
} from '../../lib/adapters/blob/index.ts';

type Decision = 'pass' | 'cut' | 'inflate-length';

interface Proxy {
  port: number;
  /** Range GETs seen, by range header value, in arrival order. */
  ranges: string[];
  decide: (req: IncomingMessage, rangeAttempt: number) => Decision | Promise<Decision>;
  close(): Promise<void>;
}

let dir = '';
let az: AzuriteHandle | undefined;
let proxy: Proxy | undefined;
let direct: ContainerClient;
let viaProxy: ContainerClient;

function rangeOf(req: IncomingMessage): string | undefined {
  const r = req.headers['x-ms-range'] ?? req.headers.range;
  return req.method === 'GET' && typeof r === 'string' ? r : undefined;
}

async function startProxy(upstreamPort: number): Promise<Proxy> {
  const p: Proxy = { port: 0, ranges: [], decide: () => 'pass', close: async () => {} };
  const server: Server = createServer(async (req, res) => {
    const range = rangeOf(req);
    if (range) p.ranges.push(range);
    const decision = await p.decide(req, range ? p.ranges.filter((r) => r === range).length : 0);
    const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (ures) => {
      const headers = { ...ures.headers };
      if (decision === 'inflate-length' && req.method === 'HEAD')
        headers['content-length'] = String(Number(headers['content-length']) + 1_000_000);
      res.writeHead(ures.statusCode ?? 502, headers);
      if (decision !== 'cut') {
        ures.pipe(res);
        return;
      }
      const parts: Buffer[] = [];
      ures.on('data', (c: Buffer) => parts.push(c));
      ures.on('end', () => {
        const body = Buffer.concat(parts);
        // Half the promised body, then a dead connection: what a reset mid-transfer looks like.
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  p.port = typeof addr === 'object' && addr ? addr.port : 0;
  p.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return p;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-blob-faults-'));
  az = await startAzurite({ dir: join(dir, 'azurite') });
  proxy = await startProxy(az.port);
  direct = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: az.connectionString }).getContainerClient('faults');
  await direct.create();
  // Shared-key signing covers path and headers but not the host, so the same key works via the proxy.
  const proxied = az.connectionString.replace(`127.0.0.1:${az.port}`, `127.0.0.1:${proxy.port}`);
  viaProxy = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: proxied }).getContainerClient('faults');
});

after(async () => {
  await proxy?.close();
  await az?.stop();
  await rm(dir, { recursive: true, force: true });
});

function faultProxy(): Proxy {
  assert.ok(proxy, 'proxy did not start');
  proxy.ranges = [];
  return proxy;
}

async function noFileLeft(path: string): Promise<void> {
  await assert.rejects(stat(path), { code: 'ENOENT' });
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.includes('.partial-')),
    [],
  );
}

test('a range whose body is cut every time fails after its attempts, naming the range', async () => {
  await uploadStream(direct, 'cut.bin', Readable.from([randomBytes(1_000_000)]));
  const p = faultProxy();
  p.decide = (req) => (rangeOf(req) ? 'cut' : 'pass');
  const out = join(dir, 'cut.bin');
  await assert.rejects(
    downloadToFileParallel(viaProxy.getBlobClient('cut.bin'), out, { rangeSize: 400_000, concurrency: 1, attempts: 3 }),
    (e: unknown) => {
      assert.ok(e instanceof BlobTransferError);
      assert.equal(e.code, 'range-failed');
      assert.match(e.message, /^bytes 0-399999 of faults\/cut\.bin failed after 3 attempts: connection lost after \d+ of 400000 bytes/);
      return true;
    },
  );
  assert.deepEqual(p.ranges, ['bytes=0-399999', 'bytes=0-399999', 'bytes=0-399999'], 'three attempts at the first range, then stop');
  await noFileLeft(out);
});

test('cut bodies are retried and the result is still exact', async () => {
  const up = await uploadStream(direct, 'flaky.bin', Readable.from([randomBytes(2_000_000)]), { blockSize: 500_000 });
  const p = faultProxy();
  p.decide = (req, attempt) => (rangeOf(req) && attempt <= 2 ? 'cut' : 'pass');
  const out = join(dir, 'flaky.bin');
  const down = await downloadToFileParallel(viaProxy.getBlobClient('flaky.bin'), out, {
    rangeSize: 300_000,
    concurrency: 3,
    attempts: 3,
    expectedSha256: up.sha256,
  });
  assert.equal(down.bytes, 2_000_000);
  assert.equal(down.sha256, up.sha256);
  assert.equal(p.ranges.length, 7 * 3, 'each of the 7 ranges took three attempts');
});

test('a blob replaced mid-download is refused instead of stitched from two versions', async () => {
  await uploadStream(direct, 'replaced.dump', Readable.from([randomBytes(1_200_000)]));
  const p = faultProxy();
  let release: () => void = () => {};
  const replaced = new Promise<void>((r) => (release = r));
  // Every range after the first waits until the blob has been overwritten.
  p.decide = async (req): Promise<Decision> => {
    const r = rangeOf(req);
    if (r && r !== 'bytes=0-299999') await replaced;
    return 'pass';
  };
  let overwriting = false;
  const out = join(dir, 'replaced.dump');
  await assert.rejects(
    downloadToFileParallel(viaProxy.getBlobClient('replaced.dump'), out, {
      rangeSize: 300_000,
      concurrency: 2,
      onProgress: () => {
        if (overwriting) return;
        overwriting = true;
        void uploadStream(direct, 'replaced.dump', Readable.from([randomBytes(700_000)])).then(release, release);
      },
    }),
    (e: unknown) => {
      assert.ok(e instanceof BlobTransferError);
      assert.equal(e.code, 'changed');
      assert.equal(e.statusCode, 412);
      assert.match(e.message, /^faults\/replaced\.dump changed during the download \(ETag no longer .+\); the file was discarded$/);
      return true;
    },
  );
  assert.ok(overwriting, 'the overwrite happened');
  await noFileLeft(out);
});

test('properties claiming more bytes than the blob holds end in a truncation error', async () => {
  await uploadStream(direct, 'liar.dump', Readable.from([randomBytes(500_000)]));
  const p = faultProxy();
  p.decide = (req) => (req.method === 'HEAD' ? 'inflate-length' : 'pass');
  const out = join(dir, 'liar.dump');
  await assert.rejects(
    downloadToFileParallel(viaProxy.getBlobClient('liar.dump'), out, { rangeSize: 400_000, concurrency: 2 }),
    (e: unknown) => {
      assert.ok(e instanceof BlobTransferError);
      assert.equal(e.code, 'truncated');
      assert.match(
        e.message,
        /^faults\/liar\.dump is truncated: bytes \d+-\d+ returned \d+ bytes of a 500000-byte blob, expected 1500000$/,
      );
      return true;
    },
  );
  await noFileLeft(out);
});
