/**
 * The lab's replicator, a child the daemon keeps running on a two-region lab like the WAL archiver:
 * `node --import tsx/esm lib/lab/daemon/replicator.ts --lab DIR`.
 *
 * Copies every blob of the primary's containers (REPLICATED_CONTAINERS) to the secondary region's account once
 * it has existed for replicationLag (lab.json), each copy checked (adapters/blob/replicate.ts), and writes what
 * it did to secondary/replication.json after every pass. A copy names its source version in its metadata, so a
 * replicator killed mid-pass finds on restart what the secondary holds and copies only what it lacks. Either
 * account not answering is an error of the pass, recorded; the next pass tries again. On SIGTERM it finishes the
 * copies in flight and stops.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  blobServiceFromEnv,
  type BlobServiceClient,
  copyBlobVerified,
  listForReplication,
  type ReplicaListing,
} from '../../adapters/blob/index.ts';
import { DEFAULT_REPLICATION_LAG_MS } from '../../config/defaults.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { labAzuriteStatus } from '../azurite.ts';
import { labPaths } from '../paths.ts';
import { ERRORS_KEPT, listIntervalMs, measuredLagMs, planPass, type ReplicationState } from '../regions/replication.ts';
import { REPLICATED_CONTAINERS, secondaryAzuriteStatus, secondaryPaths } from '../regions/secondary.ts';
import { readConfig, readJson } from '../state.ts';

const { values } = parseArgs({ options: { lab: { type: 'string' }, 'db-port': { type: 'string' } } });
if (!values.lab) throw new Error('--lab DIR is required');
const paths = labPaths(values.lab);
const region = secondaryPaths(paths.dir);
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} replicator ${line}\n`);
/**
 * One retry, soon: the SDK's default (4 tries, backing off from 4 s) held a pass for 40 s on a secondary Azurite
 * that had died, while the next pass would have found it restarted on another port.
 */
const RETRY = { retryOptions: { maxTries: 2, retryDelayInMs: 500, maxRetryDelayInMs: 1000 } };
/** Copies at once: a large base backup does not hold up the small files and WAL segments behind it. */
const COPIES_AT_ONCE = 4;

const previous = await readJson<ReplicationState>(region.replication).catch(() => null);
const state: ReplicationState = {
  pid: process.pid,
  startedAt: new Date().toISOString(),
  lagMs: DEFAULT_REPLICATION_LAG_MS,
  lastPassAt: null,
  lastPassMs: null,
  newestCopied: previous?.newestCopied ?? null,
  oldestMissing: previous?.oldestMissing ?? null,
  measuredLagMs: previous?.measuredLagMs ?? 0,
  pending: previous?.pending ?? 0,
  copiedTotal: previous?.copiedTotal ?? 0,
  bytesTotal: previous?.bytesTotal ?? 0,
  errors: previous?.errors ?? [],
};

const startedMs = Date.now();
/** The lab's start brings both Azurites up beside the daemon: storage not answering yet is no error then. */
const START_GRACE_MS = 30_000;

function recordError(container: string | null, blob: string | null, message: string): void {
  log(`error${container ? ` ${container}${blob ? `/${blob}` : ''}` : ''}: ${message}`);
  state.errors = [{ at: new Date().toISOString(), container, blob, message }, ...state.errors].slice(0, ERRORS_KEPT);
}

async function lagFromConfig(): Promise<number> {
  return (await readConfig(paths.config).catch(() => null))?.replicationLagMs ?? DEFAULT_REPLICATION_LAG_MS;
}

/** Clients for both accounts, made again when either Azurite moved to another port (restarted). */
let clients: { primary: BlobServiceClient; secondary: BlobServiceClient; key: string } | null = null;
async function accounts(): Promise<{ primary: BlobServiceClient; secondary: BlobServiceClient } | string> {
  const [p, s] = await Promise.all([labAzuriteStatus(paths.dir), secondaryAzuriteStatus(paths.dir)]);
  if (!p.up || !p.azurite) return "the primary region's storage (the lab's Azurite) does not answer";
  if (!s.up || !s.azurite) return "the secondary region's storage does not answer";
  const key = `${p.azurite.port}/${s.azurite.port}`;
  if (clients?.key !== key) {
    const secondary = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: s.azurite.connectionString }, RETRY);
    // The secondary holds every replicated container from the start, empty or not, as a paired account does.
    for (const c of REPLICATED_CONTAINERS) await secondary.getContainerClient(c).createIfNotExists();
    clients = { primary: blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: p.azurite.connectionString }, RETRY), secondary, key };
    log(`replicating ${REPLICATED_CONTAINERS.join(', ')} from Azurite port ${p.azurite.port} to the secondary's on port ${s.azurite.port}`);
  }
  return clients;
}

let stopping = false;
const wake = new AbortController();

/** One pass over every container; returns when the next blob falls due (null: none waits). */
async function pass(lagMs: number): Promise<number | null> {
  const t0 = performance.now();
  const a = await accounts();
  if (typeof a === 'string') {
    if (state.lastPassAt === null && Date.now() - startedMs < START_GRACE_MS) log(`waiting: ${a}`);
    else recordError(null, null, a);
    return Date.now() + 1000;
  }
  let nextDue: number | null = null;
  let oldestMissing: number | null = null;
  let newestCopied = state.newestCopied ? Date.parse(state.newestCopied) : null;
  let pending = 0;
  for (const name of REPLICATED_CONTAINERS) {
    const from = a.primary.getContainerClient(name);
    const to = a.secondary.getContainerClient(name);
    let plan: ReturnType<typeof planPass>;
    try {
      const [source, copies] = await Promise.all([listForReplication(from), listForReplication(to)]);
      plan = planPass(source, copies, Date.now(), lagMs);
    } catch (e) {
      recordError(name, null, (e as Error).message);
      continue;
    }
    const failed: ReplicaListing[] = [];
    const queue = [...plan.due];
    const worker = async () => {
      while (!stopping) {
        const b = queue.shift();
        if (!b) return;
        try {
          const c = await copyBlobVerified(from, to, b);
          state.copiedTotal++;
          state.bytesTotal += c.bytes;
          newestCopied = Math.max(newestCopied ?? b.lastModifiedMs, b.lastModifiedMs);
          log(`copied ${name}/${b.name} (${c.bytes} bytes, ${c.verifiedBy} checked, ${c.ms.toFixed(0)} ms)`);
        } catch (e) {
          failed.push(b);
          recordError(name, b.name, (e as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: COPIES_AT_ONCE }, worker));
    // Not copied: failed, or left when a stop came. Both still count against the lag.
    const missed = [...failed, ...queue];
    for (const b of missed) oldestMissing = Math.min(oldestMissing ?? b.lastModifiedMs, b.lastModifiedMs);
    if (plan.oldestWaitingMs !== null) oldestMissing = Math.min(oldestMissing ?? plan.oldestWaitingMs, plan.oldestWaitingMs);
    if (plan.newestCopiedMs !== null) newestCopied = Math.max(newestCopied ?? plan.newestCopiedMs, plan.newestCopiedMs);
    pending += missed.length + plan.waiting;
    if (plan.nextDueMs !== null) nextDue = Math.min(nextDue ?? plan.nextDueMs, plan.nextDueMs);
    if (missed.length > 0) nextDue = Date.now() + 1000;
  }
  const now = Date.now();
  Object.assign(state, {
    lagMs,
    lastPassAt: new Date(now).toISOString(),
    lastPassMs: Math.round(performance.now() - t0),
    newestCopied: newestCopied === null ? null : new Date(newestCopied).toISOString(),
    oldestMissing: oldestMissing === null ? null : new Date(oldestMissing).toISOString(),
    measuredLagMs: measuredLagMs(oldestMissing, now),
    pending,
  });
  return nextDue;
}

process.on('SIGTERM', () => {
  stopping = true;
  wake.abort();
});
process.on('SIGINT', () => {
  stopping = true;
  wake.abort();
});
process.on('SIGHUP', () => log('SIGHUP ignored'));

log(`started (pid ${process.pid}), secondary storage state in ${region.dir}`);
while (!stopping) {
  const lagMs = await lagFromConfig();
  let nextDue: number | null = null;
  try {
    nextDue = await pass(lagMs);
  } catch (e) {
    // Whatever failed is retried by the next pass: the secondary's listing says what it still lacks.
    recordError(null, null, `pass failed: ${(e as Error).message}`);
  }
  try {
    writeJsonAtomic(region.replication, state);
  } catch (e) {
    log(`cannot write ${region.replication}: ${(e as Error).message}`);
  }
  if (stopping) break;
  const until = Math.min(nextDue ?? Number.POSITIVE_INFINITY, Date.now() + listIntervalMs(lagMs));
  await sleep(Math.max(50, until - Date.now()), undefined, { signal: wake.signal }).catch(() => {});
}
log('stopped');
process.exit(0);
