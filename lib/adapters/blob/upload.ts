/**
 * Streaming block upload: reads the source once, hashes it on the way, and keeps at most
 * `concurrency` blocks staging at a time. Nothing is committed unless the whole source was read and
 * every block staged, so a failed upload never replaces an existing blob of the same name.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { BlobTransferError, describeError, restStatus } from './errors.ts';
import { metadataProblems } from './metadata.ts';

export const MiB = 1024 * 1024;
// Service limits for block blobs (API 2019-12-12 and later).
const MAX_BLOCK_SIZE = 4000 * MiB;
const MAX_BLOCKS = 50_000;

export interface TransferProgressEvent {
  /** Bytes transferred so far (cumulative). */
  bytes: number;
  /** Total when known. */
  totalBytes: number | undefined;
}

export interface UploadStreamOptions {
  /** Default 8 MiB. */
  blockSize?: number;
  /** Blocks staged at once. Default 4. */
  concurrency?: number;
  /** Keys must be C# identifiers (`backup_timestamp`, not `backup-timestamp`). */
  metadata?: Record<string, string>;
  contentType?: string;
  /** Called after each block is staged, with bytes staged so far. */
  onProgress?: (progress: TransferProgressEvent) => void;
  /** Only for the progress events' totalBytes; the byte count returned is always measured. */
  totalBytes?: number;
  signal?: AbortSignal;
}

export interface UploadResult {
  bytes: number;
  /** Hex sha256 of the bytes read from the source. */
  sha256: string;
  blocks: number;
  durationMs: number;
}

function check(container: ContainerClient, blobName: string, cond: boolean, message: string): void {
  if (!cond) throw new BlobTransferError('invalid-argument', container.containerName, blobName, message);
}

export async function uploadStream(
  container: ContainerClient,
  blobName: string,
  readable: AsyncIterable<unknown>,
  options: UploadStreamOptions = {},
): Promise<UploadResult> {
  const started = performance.now();
  const blockSize = options.blockSize ?? 8 * MiB;
  const concurrency = options.concurrency ?? 4;
  const metadata = options.metadata ?? {};
  const where = `${container.containerName}/${blobName}`;
  check(
    container,
    blobName,
    Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= MAX_BLOCK_SIZE,
    `blockSize must be an integer from 1 to ${MAX_BLOCK_SIZE} bytes, got ${blockSize}`,
  );
  check(
    container,
    blobName,
    Number.isInteger(concurrency) && concurrency >= 1,
    `concurrency must be a positive integer, got ${concurrency}`,
  );
  const problems = metadataProblems(metadata);
  check(container, blobName, problems.length === 0, `cannot upload ${where}: ${problems.join('; ')}`);

  const client = container.getBlockBlobClient(blobName);
  // Failing one block cancels the others; a caller's abort does the same.
  const internal = new AbortController();
  const onAbort = () => internal.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  // Block ids must all have the same length within a blob; a per-upload prefix keeps a retried upload
  // from committing blocks staged by an earlier, abandoned attempt.
  const prefix = randomUUID().replace(/-/g, '').slice(0, 16);
  const ids: string[] = [];
  const hash = createHash('sha256');
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let bytes = 0;
  let staged = 0;
  // Block buffers are reused once staged (the SDK is done with a body when stageBlock resolves): a fresh
  // 8 MiB buffer per block made V8 run full GCs for external memory, as it did in the ranged reader.
  const free: Buffer[] = [];
  const newBlock = () => free.pop() ?? Buffer.allocUnsafeSlow(blockSize);

  const stage = (block: Buffer): Promise<void> => {
    const index = ids.length;
    if (index >= MAX_BLOCKS) {
      throw new BlobTransferError(
        'invalid-argument',
        container.containerName,
        blobName,
        `${where}: more than ${MAX_BLOCKS} blocks; use a larger blockSize than ${blockSize}`,
      );
    }
    const id = Buffer.from(`${prefix}-${String(index).padStart(6, '0')}`).toString('base64');
    ids.push(id);
    const p: Promise<void> = client
      .stageBlock(id, block, block.length, { abortSignal: internal.signal })
      .then(
        () => {
          staged += block.length;
          if (block.length === blockSize) free.push(block);
          options.onProgress?.({ bytes: staged, totalBytes: options.totalBytes });
        },
        (e: unknown) => {
          failure ??= e;
          internal.abort();
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
    return p;
  };

  const fail = (e: unknown): BlobTransferError => {
    if (e instanceof BlobTransferError) return e;
    if (options.signal?.aborted)
      return new BlobTransferError('aborted', container.containerName, blobName, `upload of ${where} aborted; nothing was committed`);
    const { status, code } = restStatus(e);
    if (status === 404 && code === 'ContainerNotFound') {
      return new BlobTransferError(
        'not-found',
        container.containerName,
        blobName,
        `cannot upload ${where}: container "${container.containerName}" does not exist`,
        status,
      );
    }
    return new BlobTransferError(
      'upload-failed',
      container.containerName,
      blobName,
      `upload of ${where} failed after ${bytes} bytes read; nothing was committed: ${describeError(e)}`,
      status,
    );
  };

  try {
    let block = newBlock();
    let fill = 0;
    for await (const chunk of readable) {
      if (failure !== undefined) throw failure;
      if (internal.signal.aborted) throw new Error('aborted');
      if (!(chunk instanceof Uint8Array)) {
        throw new BlobTransferError(
          'invalid-argument',
          container.containerName,
          blobName,
          `upload of ${where}: the source must yield bytes (Buffer/Uint8Array), got ${typeof chunk}`,
        );
      }
      hash.update(chunk);
      bytes += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(blockSize - fill, chunk.length - off);
        block.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === blockSize) {
          // Reading pauses here while the window is full: backpressure reaches the source.
          while (inflight.size >= concurrency) await Promise.race(inflight);
          if (failure !== undefined) throw failure;
          void stage(block);
          block = newBlock();
          fill = 0;
        }
      }
    }
    if (fill > 0) {
      while (inflight.size >= concurrency) await Promise.race(inflight);
      void stage(block.subarray(0, fill));
    }
    await Promise.all(inflight);
    if (failure !== undefined) throw failure;
    if (internal.signal.aborted) throw new Error('aborted');
    await client.commitBlockList(ids, {
      metadata,
      blobHTTPHeaders: options.contentType ? { blobContentType: options.contentType } : undefined,
      abortSignal: internal.signal,
    });
  } catch (e) {
    internal.abort();
    await Promise.allSettled(inflight);
    throw fail(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return { bytes, sha256: hash.digest('hex'), blocks: ids.length, durationMs: performance.now() - started };
}
