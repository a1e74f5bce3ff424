/**
 * Ranged parallel download into a file. The SDK's downloadToFile reads one stream; here N ranges are
 * in flight at once, each written at its offset, while the sha256 is fed strictly in order from a
 * bounded window of finished ranges (so no second pass over the file and bounded memory).
 *
 * Every range is requested with If-Match on the ETag read at the start: a blob replaced mid-download
 * fails loudly instead of producing a file stitched from two versions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type { BlobClient } from '@azure/storage-blob';
import { BlobTransferError, describeError, restStatus } from './errors.ts';
import { MiB, type TransferProgressEvent } from './upload.ts';

export interface DownloadOptions {
  /** Default 8 MiB. */
  rangeSize?: number;
  /** Ranges in flight. Default 4. */
  concurrency?: number;
  /** Attempts per range (a cut body or a network error is retried). Default 4. */
  attempts?: number;
  /** The size the caller expects (from a manifest): a shorter blob is reported as truncated. */
  expectedBytes?: number;
  /** Hex sha256 the caller expects; a mismatch is an error and no file is left behind. */
  expectedSha256?: string;
  onProgress?: (progress: TransferProgressEvent) => void;
  signal?: AbortSignal;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
  durationMs: number;
}

/** A body that ended before its range did; worth another attempt. */
class ShortRead extends Error {}

async function readExactly(body: NodeJS.ReadableStream, count: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(count);
  let got = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (got + chunk.length > count) throw new ShortRead(`range body longer than requested (${got + chunk.length} > ${count})`);
      chunk.copy(buf, got);
      got += chunk.length;
    }
  } catch (e) {
    if (e instanceof ShortRead) throw e;
    // The SDK reports a connection reset mid-body as "The operation was aborted", which reads like
    // a cancellation; say what happened.
    throw new ShortRead(`connection lost after ${got} of ${count} bytes (${(e as Error).message})`);
  }
  if (got !== count) throw new ShortRead(`range body ended after ${got} of ${count} bytes`);
  return buf;
}

/** Drop a body we will not read; the abort that follows would otherwise surface as an uncaught error. */
function discard(body: NodeJS.ReadableStream | undefined): void {
  if (!body) return;
  body.on('error', () => {});
  (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

export async function downloadToFileParallel(blob: BlobClient, path: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const started = performance.now();
  const container = blob.containerName;
  const name = blob.name;
  const where = `${container}/${name}`;
  const rangeSize = options.rangeSize ?? 8 * MiB;
  const concurrency = options.concurrency ?? 4;
  const attempts = options.attempts ?? 4;
  const err = (code: ConstructorParameters<typeof BlobTransferError>[0], message: string, status?: number) =>
    new BlobTransferError(code, container, name, message, status);
  if (!Number.isInteger(rangeSize) || rangeSize < 1) throw err('invalid-argument', `rangeSize must be a positive integer, got ${rangeSize}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw err('invalid-argument', `concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isInteger(attempts) || attempts < 1) throw err('invalid-argument', `attempts must be a positive integer, got ${attempts}`);

  const internal = new AbortController();
  const onAbort = () => internal.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = () => err('aborted', `download of ${where} aborted; no file was written at ${path}`);

  let total: number;
  let etag: string;
  try {
    const props = await blob.getProperties({ abortSignal: internal.signal });
    total = props.contentLength ?? 0;
    etag = props.etag ?? '';
  } catch (e) {
    options.signal?.removeEventListener('abort', onAbort);
    if (options.signal?.aborted) throw aborted();
    const { status, code } = restStatus(e);
    if (status === 404) {
      const what = code === 'ContainerNotFound' ? `container "${container}" does not exist` : `blob "${name}" not found in container "${container}"`;
      throw err('not-found', `cannot download ${where}: ${what}`, status);
    }
    throw err('request-failed', `cannot read properties of ${where}: ${describeError(e)}`, status);
  }
  if (options.expectedBytes !== undefined && total !== options.expectedBytes) {
    options.signal?.removeEventListener('abort', onAbort);
    const kind = total < options.expectedBytes ? 'truncated' : 'length-mismatch';
    const word = total < options.expectedBytes ? 'truncated' : 'longer than expected';
    throw err(kind, `${where} is ${word}: it has ${total} bytes, expected ${options.expectedBytes}`);
  }

  // Written beside the target and renamed at the end, so `path` only ever holds a complete, verified file.
  const partial = `${path}.partial-${randomBytes(4).toString('hex')}`;
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(partial, 'w');
  } catch (e) {
    options.signal?.removeEventListener('abort', onAbort);
    throw err('invalid-argument', `cannot download ${where} to ${path}: ${(e as Error).message}`);
  }
  const hash = createHash('sha256');
  const n = Math.ceil(total / rangeSize);
  const window = concurrency * 2;
  const done = new Map<number, Buffer>();
  let next = 0;
  let hashed = 0;
  let written = 0;
  let failure: unknown;
  let wake: () => void = () => {};
  let advanced = new Promise<void>((r) => (wake = r));
  const signalAdvance = () => {
    wake();
    advanced = new Promise<void>((r) => (wake = r));
  };

  const fetchRange = async (i: number): Promise<Buffer> => {
    const offset = i * rangeSize;
    const count = Math.min(rangeSize, total - offset);
    const range = `bytes ${offset}-${offset + count - 1}`;
    let last: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (internal.signal.aborted) throw internal.signal.reason ?? new Error('aborted');
      try {
        const res = await blob.download(offset, count, { abortSignal: internal.signal, conditions: { ifMatch: etag } });
        // A short answer announced in the headers is the blob's shape, not a network hiccup: no retry.
        // (Azurite answers a range past the end with 200 and zero bytes where Azure says 416.)
        const size = Number(/\/(\d+)$/.exec(res.contentRange ?? '')?.[1] ?? total);
        if (size < total || (res.contentLength !== undefined && res.contentLength < count)) {
          discard(res.readableStreamBody);
          throw err('truncated', `${where} is truncated: ${range} returned ${res.contentLength ?? 0} bytes of a ${size}-byte blob, expected ${total}`, res._response.status);
        }
        if (!res.readableStreamBody) throw new ShortRead('response has no body');
        return await readExactly(res.readableStreamBody, count);
      } catch (e) {
        if (e instanceof BlobTransferError) throw e;
        const { status } = restStatus(e);
        if (status === 412) throw err('changed', `${where} changed during the download (ETag no longer ${etag}); the file was discarded`, status);
        if (status === 416) throw err('truncated', `${where} is truncated: ${range} of ${total} is no longer there`, status);
        if (status === 404) throw err('not-found', `${where} was deleted during the download`, status);
        if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
          throw err('range-failed', `${range} of ${where} failed: ${describeError(e)}`, status);
        }
        last = e;
        if (attempt < attempts) await sleep(100 * 2 ** (attempt - 1), internal.signal);
      }
    }
    throw err('range-failed', `${range} of ${where} failed after ${attempts} attempts: ${describeError(last)}`, restStatus(last).status);
  };

  const worker = async (): Promise<void> => {
    while (failure === undefined && next < n) {
      // Range `hashed` is always in flight here, so waiting for it to land cannot deadlock.
      if (next >= hashed + window) {
        await advanced;
        continue;
      }
      const i = next++;
      const buf = await fetchRange(i);
      await fh.write(buf, 0, buf.length, i * rangeSize);
      written += buf.length;
      done.set(i, buf);
      for (let b = done.get(hashed); b !== undefined; b = done.get(hashed)) {
        hash.update(b);
        done.delete(hashed++);
      }
      signalAdvance();
      options.onProgress?.({ bytes: written, totalBytes: total });
    }
  };

  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, Math.max(n, 1)) }, () =>
        worker().catch((e: unknown) => {
          failure ??= e;
          internal.abort();
          signalAdvance();
        }),
      ),
    );
    if (options.signal?.aborted) throw aborted();
    if (failure !== undefined) throw failure;
    const size = (await fh.stat()).size;
    if (written !== total || size !== total || hashed !== n) {
      throw err('truncated', `${where}: wrote ${written} bytes (file ${size}), expected ${total}`);
    }
    const sha256 = hash.digest('hex');
    if (options.expectedSha256 !== undefined && sha256 !== options.expectedSha256.toLowerCase()) {
      throw err('checksum-mismatch', `${where}: sha256 ${sha256} does not match the expected ${options.expectedSha256}`);
    }
    await fh.close();
    await rename(partial, path);
    return { bytes: total, sha256, durationMs: performance.now() - started };
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(partial, { force: true });
    if (e instanceof BlobTransferError) throw e;
    if (options.signal?.aborted) throw aborted();
    throw err('range-failed', `download of ${where} failed: ${describeError(e)}`, restStatus(e).status);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
