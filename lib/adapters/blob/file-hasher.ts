/**
 * sha256 of a file being written out of order, computed in order on a worker thread from what is on disk.
 * The writer says which byte ranges are written, in file order; the worker reads each back (from the page
 * cache) and hashes it. The hash so covers the bytes of the file itself, and costs the download's thread
 * nothing: hashing 593 MB inline took 1.2-2 s of the event loop, time in which no range body was read.
 */
import { Worker } from 'node:worker_threads';

// Plain CommonJS for `eval: true`: no loader (tsx) needed in the worker.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const fd = openSync(workerData.path, 'r');
const hash = createHash('sha256');
const buf = Buffer.allocUnsafe(1 << 20);
let next = 0;
parentPort.on('message', (m) => {
  try {
    if (m.end) {
      closeSync(fd);
      parentPort.postMessage({ sha256: hash.digest('hex'), bytes: next });
      return;
    }
    if (m.offset !== next) throw new Error('range at ' + m.offset + ' arrived before ' + next);
    let left = m.length;
    while (left > 0) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, left), next);
      if (n === 0) throw new Error('file ends at ' + next + ', expected ' + (next + left) + ' bytes');
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
      next += n;
      left -= n;
    }
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message || e) });
  }
});
`;

export interface FileHasher {
  /** Bytes [offset, offset + length) are on disk; call in file order, without gaps. */
  written(offset: number, length: number): void;
  /** The hex sha256 of everything reported, once the worker has read it all. */
  digest(): Promise<{ sha256: string; bytes: number }>;
  /** Stops the worker; safe after digest and on failure. */
  stop(): Promise<void>;
}

export function startFileHasher(path: string): FileHasher {
  const worker = new Worker(WORKER, { eval: true, workerData: { path } });
  let failure: Error | null = null;
  let settle: ((r: { sha256: string; bytes: number }) => void) | null = null;
  let reject: ((e: Error) => void) | null = null;
  worker.on('message', (m: { sha256?: string; bytes?: number; error?: string }) => {
    if (m.error) {
      failure = new Error(`hashing ${path}: ${m.error}`);
      reject?.(failure);
    } else if (m.sha256 !== undefined) settle?.({ sha256: m.sha256, bytes: m.bytes ?? 0 });
  });
  worker.on('error', (e) => {
    failure = e;
    reject?.(e);
  });
  worker.on('exit', (code) => {
    failure ??= new Error(`hashing ${path}: the hash worker exited (code ${code})`);
    reject?.(failure);
  });
  return {
    written(offset, length) {
      worker.postMessage({ offset, length });
    },
    digest() {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, rej) => {
        settle = resolve;
        reject = rej;
        worker.postMessage({ end: true });
      });
    },
    async stop() {
      await worker.terminate();
    },
  };
}
