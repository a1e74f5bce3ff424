/**
 * The lab's log shipper, a child the daemon keeps running like the WAL archiver:
 * `node --import tsx/esm lib/lab/daemon/log-shipper.ts --lab DIR`.
 *
 * Every `logShipIntervalMs` (lab.json) it uploads what each replica appended to its request log since the
 * last pass, complete lines only, as one blob per replica (container lab-logs), then records how far it got
 * in service-logs/shipped.json. Killed between an upload and that record, it uploads the same bytes again
 * under the same name: a segment is never lost nor doubled. It exits (and is restarted) when Azurite moved
 * or the interval changed; on SIGTERM it ships once more.
 */
import { open, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { blobServiceFromEnv, type ContainerClient } from '../../adapters/blob/index.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { LAB_LOGS_CONTAINER, labAzuriteStatus } from '../azurite.ts';
import { completeLinesLength, DEFAULT_LOG_SHIP_INTERVAL_MS, segmentBlobName } from '../log-ship.ts';
import { labPaths } from '../paths.ts';
import { readConfig, readJson } from '../state.ts';

const { values } = parseArgs({ options: { lab: { type: 'string' }, 'db-port': { type: 'string' } } });
if (!values.lab) throw new Error('--lab DIR is required');
const paths = labPaths(values.lab);
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} log-shipper ${line}\n`);

async function shipInterval(): Promise<number> {
  return (await readConfig(paths.config).catch(() => null))?.logShipIntervalMs ?? DEFAULT_LOG_SHIP_INTERVAL_MS;
}

async function logsContainer(): Promise<{ container: ContainerClient; port: number }> {
  for (;;) {
    const a = await labAzuriteStatus(paths.dir);
    if (a.up && a.azurite) {
      const container = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: a.azurite.connectionString }).getContainerClient(
        LAB_LOGS_CONTAINER,
      );
      await container.createIfNotExists();
      return { container, port: a.azurite.port };
    }
    await sleep(200);
  }
}

const intervalMs = await shipInterval();
const { container, port: azuritePort } = await logsContainer();
const shipped: Record<string, number> = (await readJson<Record<string, number>>(paths.serviceLogs.shipState)) ?? {};
log(`shipping ${paths.serviceLogs.dir}/*.jsonl into ${LAB_LOGS_CONTAINER} on Azurite port ${azuritePort} every ${intervalMs} ms`);

/** One pass: every replica's new complete lines, one segment each. */
async function shipOnce(): Promise<void> {
  const names = (await readdir(paths.serviceLogs.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.jsonl')).sort();
  for (const file of names) {
    const replica = basename(file, '.jsonl');
    const from = shipped[file] ?? 0;
    const fh = await open(join(paths.serviceLogs.dir, file), 'r');
    let chunk: Buffer;
    try {
      const size = (await fh.stat()).size;
      if (size <= from) continue;
      chunk = Buffer.alloc(size - from);
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, from);
      chunk = chunk.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
    const n = completeLinesLength(chunk);
    if (n === 0) continue;
    const name = segmentBlobName(replica, from);
    await container.getBlockBlobClient(name).uploadData(chunk.subarray(0, n));
    shipped[file] = from + n;
    writeJsonAtomic(paths.serviceLogs.shipState, shipped);
    log(`shipped ${name} (${n} bytes)`);
  }
}

let stopping = false;
const wake = new AbortController();
process.on('SIGTERM', () => {
  stopping = true;
  wake.abort();
});
process.on('SIGINT', () => {
  stopping = true;
  wake.abort();
});
process.on('SIGHUP', () => log('SIGHUP ignored'));

for (;;) {
  await sleep(intervalMs, undefined, { signal: wake.signal }).catch(() => {});
  try {
    await shipOnce();
  } catch (e) {
    // Azurite down or a file gone: the offsets did not move, so the next pass ships the same lines.
    log(`pass failed: ${(e as Error).message}`);
  }
  if (stopping) break;
  const a = await labAzuriteStatus(paths.dir);
  if ((a.up && a.azurite && a.azurite.port !== azuritePort) || (await shipInterval()) !== intervalMs) {
    log('Azurite or the ship interval changed: stopping to be restarted with the new settings');
    break;
  }
}
log('stopped');
process.exit(0);
