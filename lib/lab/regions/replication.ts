/**
 * What the replicator decides, without doing it: which blobs of the primary are due for the secondary, when the
 * next one falls due, and how far the secondary lags. Pure, so the rules are tested on their own.
 *
 * A blob is copied once it has existed for `replicationLag`, so the secondary trails the primary by a known
 * amount, as a geo-redundant account trails its primary (Last Sync Time). Deletes are not replicated: a blob
 * removed in the primary stays in the secondary, so a mistaken delete is not carried over.
 */
import type { ReplicaListing } from '../../adapters/blob/replicate.ts';

/** The service's Last-Modified has whole seconds: a blob written at 10:00:00.9 lists as 10:00:00. */
export const LAST_MODIFIED_RESOLUTION_MS = 1000;

/** The earliest moment the blob may be in the secondary: never before it has existed for `lagMs`. */
export const dueAtMs = (lastModifiedMs: number, lagMs: number) => lastModifiedMs + LAST_MODIFIED_RESOLUTION_MS + lagMs;

export interface PassPlan {
  /** Not yet in the secondary (or there as an older version) and due: oldest first. */
  due: ReplicaListing[];
  /** Not yet in the secondary and not due yet. */
  waiting: number;
  /** When the next waiting blob falls due; null when none waits. */
  nextDueMs: number | null;
  /** Last-Modified of the oldest blob the secondary lacks, due or not; null when it lacks none. */
  oldestMissingMs: number | null;
  /** Last-Modified of the oldest blob not due yet; null when none waits. */
  oldestWaitingMs: number | null;
  /** Last-Modified of the newest blob the secondary holds in the version the primary has; null when none. */
  newestCopiedMs: number | null;
}

/** One container's pass: `source` as the primary lists it, `copies` as the secondary does. */
export function planPass(source: readonly ReplicaListing[], copies: readonly ReplicaListing[], nowMs: number, lagMs: number): PassPlan {
  const held = new Map(copies.map((c) => [c.name, c.sourceEtag]));
  const due: ReplicaListing[] = [];
  let waiting = 0;
  let nextDueMs: number | null = null;
  let oldestMissingMs: number | null = null;
  let oldestWaitingMs: number | null = null;
  let newestCopiedMs: number | null = null;
  for (const b of source) {
    if (held.get(b.name) === b.etag) {
      newestCopiedMs = Math.max(newestCopiedMs ?? b.lastModifiedMs, b.lastModifiedMs);
      continue;
    }
    oldestMissingMs = Math.min(oldestMissingMs ?? b.lastModifiedMs, b.lastModifiedMs);
    const at = dueAtMs(b.lastModifiedMs, lagMs);
    if (at <= nowMs) due.push(b);
    else {
      waiting++;
      nextDueMs = Math.min(nextDueMs ?? at, at);
      oldestWaitingMs = Math.min(oldestWaitingMs ?? b.lastModifiedMs, b.lastModifiedMs);
    }
  }
  due.sort((a, b) => a.lastModifiedMs - b.lastModifiedMs || a.name.localeCompare(b.name));
  return { due, waiting, nextDueMs, oldestMissingMs, oldestWaitingMs, newestCopiedMs };
}

/**
 * How far the secondary trails the primary: now minus the Last-Modified of the oldest blob it lacks, 0 when it
 * lacks none. A steady stream of writes keeps it near replicationLag; a stalled replicator makes it grow.
 */
export const measuredLagMs = (oldestMissingMs: number | null, nowMs: number) =>
  oldestMissingMs === null ? 0 : Math.max(0, nowMs - oldestMissingMs);

/**
 * How often the replicator lists the primary: often enough to see every blob before it falls due (at most the
 * lag), not so often that listing costs more than copying. Between listings it wakes when the next blob is due.
 */
export const listIntervalMs = (lagMs: number) => Math.min(30_000, Math.max(1000, Math.floor(lagMs / 2)));

/**
 * Lag beyond replicationLag that is still normal: the resolution of Last-Modified, a listing interval and a copy.
 * More than that, and `drill lab status` calls it a problem.
 */
export const lagMarginMs = (lagMs: number) =>
  Math.max(10_000, Math.round(lagMs / 10)) + LAST_MODIFIED_RESOLUTION_MS + listIntervalMs(lagMs);

/** replication.json, written by the replicator after every pass. */
export interface ReplicationState {
  pid: number;
  startedAt: string;
  /** The lag it ran the pass with (lab.json's replicationLagMs). */
  lagMs: number;
  lastPassAt: string | null;
  lastPassMs: number | null;
  /** Last-Modified (ISO) of the newest blob the secondary holds as the primary has it. */
  newestCopied: string | null;
  /** Last-Modified (ISO) of the oldest blob the secondary lacks; null when it lacks none. Status measures the lag from it. */
  oldestMissing: string | null;
  /** The lag at the end of the last pass, in ms (measuredLagMs). */
  measuredLagMs: number;
  /** Blobs the secondary lacks at the end of the last pass (due ones that failed, and those not yet due). */
  pending: number;
  copiedTotal: number;
  bytesTotal: number;
  /** The newest errors first, at most ERRORS_KEPT: which blob, what went wrong. */
  errors: { at: string; container: string | null; blob: string | null; message: string }[];
}

export const ERRORS_KEPT = 20;
