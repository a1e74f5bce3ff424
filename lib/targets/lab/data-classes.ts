/**
 * The lab's file-storage and logs classes read back after a run (DataClassesAdapter): the log shipper is asked
 * for a pass first, so lines written before the read-back but not yet due are not counted lost; then every
 * file of the ledger is looked up by name in lab-files (sha256 of the bytes stored), and the log segments
 * shipped since the run began are read from lab-logs. Only the ledger's names and this run's segments are
 * read: the containers keep every earlier run's too.
 */
import { createHash } from 'node:crypto';
import type { DataClassesAdapter } from '../../adapters/types.ts';
import { blobServiceFromEnv, type ContainerClient } from '../../adapters/blob/index.ts';
import { LAB_FILES_CONTAINER, LAB_LOGS_CONTAINER, labBlobEnv } from '../../lab/azurite.ts';
import { DEFAULT_LOG_SHIP_INTERVAL_MS, readSegments } from '../../lab/log-ship.ts';
import { shipPendingNow } from '../../lab/log-shipping.ts';
import { labPaths } from '../../lab/paths.ts';
import { readConfig } from '../../lab/state.ts';
import { checkFiles, checkLogs } from '../../measure/data-classes.ts';
import type { ClassMeasurement } from '../../score/rpo-classes.ts';

/** Each small blob is one request; the signal is checked between them (one signal on every request trips Node's listener warning). */
const READ_CONCURRENCY = 16;
/** Blob times have whole seconds, and a segment is uploaded after its lines were written: this much earlier is safe. */
const SEGMENT_TIME_SLACK_MS = 60_000;

async function container(labDir: string, name: string): Promise<ContainerClient> {
  const blob = await labBlobEnv(labDir);
  if (!blob) throw new Error(`the lab's Azurite in ${labDir} is not answering (\`drill lab up\` starts it)`);
  return blobServiceFromEnv(blob.env).getContainerClient(name);
}

async function eachLimited<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

/** Name -> sha256 of the bytes stored now, for each of `names` found in the files container. */
export async function readFilesNamed(labDir: string, names: readonly string[], signal: AbortSignal): Promise<Map<string, string>> {
  const c = await container(labDir, LAB_FILES_CONTAINER);
  const out = new Map<string, string>();
  await eachLimited([...new Set(names)], READ_CONCURRENCY, async (name) => {
    signal.throwIfAborted();
    try {
      const content = await c.getBlockBlobClient(name).downloadToBuffer();
      out.set(name, createHash('sha256').update(content).digest('hex'));
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
  });
  return out;
}

/** Every token in the log segments uploaded since `sinceEpochMs`, and how many segments were read. */
export async function readShippedSince(
  labDir: string,
  sinceEpochMs: number,
  signal: AbortSignal,
): Promise<{ tokens: Set<string>; segments: number; unreadable: number }> {
  const c = await container(labDir, LAB_LOGS_CONTAINER);
  const names: string[] = [];
  if (await c.exists()) {
    for await (const b of c.listBlobsFlat()) {
      const at = b.properties.lastModified?.getTime();
      if (at === undefined || at >= sinceEpochMs - SEGMENT_TIME_SLACK_MS) names.push(b.name);
    }
  }
  const segments: { name: string; text: string }[] = [];
  await eachLimited(names, READ_CONCURRENCY, async (name) => {
    signal.throwIfAborted();
    const text = (await c.getBlockBlobClient(name).downloadToBuffer()).toString('utf8');
    segments.push({ name, text });
  });
  const read = readSegments(segments);
  return { tokens: read.tokens, segments: segments.length, unreadable: read.unreadable };
}

/** How long the read-back waits for the shipper's pass: a pass on a loaded machine can take seconds past its interval. */
export function shipWaitMs(intervalMs: number): number {
  return 2 * intervalMs + 10_000;
}

export function createLabDataClasses(labDir: string): DataClassesAdapter {
  return {
    where: `lab:${labDir} (Azurite ${LAB_FILES_CONTAINER}, ${LAB_LOGS_CONTAINER})`,
    async readBack(r) {
      const out: ClassMeasurement[] = [];
      try {
        const stored = await readFilesNamed(
          labDir,
          r.files.map((f) => f.name),
          r.signal,
        );
        out.push(checkFiles(r.files, stored, r.faultMs));
      } catch (e) {
        out.push({
          dataClass: 'file-storage',
          reason: `attachments could not be read back from the lab's Azurite: ${(e as Error).message}`,
        });
      }
      try {
        const intervalMs = (await readConfig(labPaths(labDir).config))?.logShipIntervalMs ?? DEFAULT_LOG_SHIP_INTERVAL_MS;
        const shipping = await shipPendingNow(labDir, { timeoutMs: shipWaitMs(intervalMs), signal: r.signal });
        r.log?.(`log shipping before the read-back: ${shipping.detail}`);
        const shipped = await readShippedSince(labDir, r.sinceEpochMs, r.signal);
        const v = checkLogs(r.logs, shipped.tokens, r.faultMs);
        // What the read-back found is what reached the log store; when a pass did not finish, the lines it would have
        // shipped count lost, and the record says why.
        v.method += shipping.shipped
          ? ` Read back after asking the log shipper for a pass (${shipping.detail}); ${shipped.segments} segments read.`
          : ` Read back when lines were still unshipped: ${shipping.detail}; ${shipped.segments} segments read.`;
        if (shipped.unreadable > 0) v.method += ` ${shipped.unreadable} shipped lines did not parse.`;
        out.push(v);
      } catch (e) {
        out.push({
          dataClass: 'logs',
          reason: `shipped log segments could not be read back from the lab's Azurite: ${(e as Error).message}`,
        });
      }
      return out;
    },
  };
}
