/**
 * The lab's log shipper, a child the daemon keeps running like the WAL archiver:
 * `node --import tsx/esm lib/lab/daemon/log-shipper.ts --lab DIR`.
 *
 * Every `logShipIntervalMs` (lab.json) it uploads what each replica appended to its request log since the
 * last pass, complete lines only, as one blob per replica (container lab-logs), then records how far it got
 * in service-logs/shipped.json. Killed between an upload and that record, it uploads the same bytes again
 * under the same name: a segment is never lost nor doubled. It exits (and is restarted) when Azurite moved
 * or the interval changed; on SIGTERM it ships once more.
 *
 * SIGUSR2 asks for a pass now (a drill measuring the logs class after recovery ships what is pending instead
 * of waiting out the interval; see lib/lab/log-shipping.ts). A replica rotates its file (log-ship.ts): an
 * older generation, shipped to its last complete line, is deleted here, so the request logs stay bounded
 * and no unshipped line is ever dropped. service-logs/shipper.json says when the last pass ran and shipped.
 */
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { blobServiceFromEnv, type ContainerClient } from '../../adapters/blob/index.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { LAB_LOGS_CONTAINER, labAzuriteStatus } from '../azurite.ts';
import { closedLogFiles, completeLinesLength, DEFAULT_LOG_SHIP_INTERVAL_MS, parseLogFileName, segmentBlobName } from '../log-ship.ts';
import { shipperStatePath, type ShipperState } from '../log-shipping.ts';
import { labPaths } from '../paths.ts';
import { readConfig, readJson } from '../state.ts';

// Before anything slow: a SIGUSR2 that came during start-up must ask for a pass, not end the process.
let passAsked = false;
let wake = new AbortController();
process.on('SIGUSR2', () => {
  passAsked = true;
  wake.abort();
});

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

const state: ShipperState = {
  pid: process.pid,
  intervalMs: 0,
  startedAt: new Date().toISOString(),
  lastPassAt: null,
  lastPassOk: null,
  lastShippedAt: null,
  lastError: null,
  rotatedAway: 0,
};
const saveState = () => writeJsonAtomic(shipperStatePath(paths.dir), state);

/** One pass: every replica's new complete lines, one segment per file; closed generations shipped out are deleted. */
async function shipOnce(): Promise<void> {
  const names = (await readdir(paths.serviceLogs.dir).catch(() => [] as string[])).filter((n) => parseLogFileName(n) !== null).sort();
  const closed = closedLogFiles(names);
  for (const file of names) {
    const { replica, gen } = parseLogFileName(file)!;
    const from = shipped[file] ?? 0;
    const fh = await open(join(paths.serviceLogs.dir, file), 'r');
    let chunk: Buffer;
    try {
      const size = (await fh.stat()).size;
      chunk = Buffer.alloc(Math.max(0, size - from));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, from);
      chunk = chunk.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
    const n = completeLinesLength(chunk);
    if (n > 0) {
      const name = segmentBlobName(replica, from, gen);
      await container.getBlockBlobClient(name).uploadData(chunk.subarray(0, n));
      shipped[file] = from + n;
      writeJsonAtomic(paths.serviceLogs.shipState, shipped);
      state.lastShippedAt = new Date().toISOString();
      log(`shipped ${name} (${n} bytes)`);
    }
    // A closed file's every complete line is in Blob now (what follows its last newline is a write torn by a
    // kill, never a line): the file goes, then its offset. Killed in between, the next pass finds no file.
    if (closed.has(file)) {
      await rm(join(paths.serviceLogs.dir, file), { force: true });
      delete shipped[file];
      writeJsonAtomic(paths.serviceLogs.shipState, shipped);
      state.rotatedAway++;
      log(`deleted ${file}: rotated and shipped through byte ${from + n}`);
    }
  }
}

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
  wake.abort();
});
process.on('SIGINT', () => {
  stopping = true;
  wake.abort();
});
process.on('SIGHUP', () => log('SIGHUP ignored'));

state.intervalMs = intervalMs;
saveState();
for (;;) {
  if (!passAsked && !stopping) await sleep(intervalMs, undefined, { signal: wake.signal }).catch(() => {});
  // Asked during the pass below, the next one runs at once: the ask came after this pass read the files.
  passAsked = false;
  wake = new AbortController();
  const passAt = new Date().toISOString();
  try {
    await shipOnce();
    Object.assign(state, { lastPassAt: passAt, lastPassOk: true, lastError: null });
  } catch (e) {
    // Azurite down or a file gone: the offsets did not move, so the next pass ships the same lines.
    log(`pass failed: ${(e as Error).message}`);
    Object.assign(state, { lastPassAt: passAt, lastPassOk: false, lastError: (e as Error).message });
  }
  try {
    saveState();
  } catch (e) {
    log(`cannot write ${shipperStatePath(paths.dir)}: ${(e as Error).message}`);
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
