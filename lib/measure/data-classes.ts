/**
 * RPO per data class (DESIGN.md: database, file storage, logs), each from a ledger of its own and by the
 * write ledger's rule: an item acknowledged and absent after recovery is lost; RPO = fault time − ack time
 * of the newest acknowledged item such that it and every acknowledged item before it survived.
 *
 * - files: an acknowledged upload, identified by blob name and the sha256 of what the load sent; present
 *   only when a blob of that name holds exactly those bytes (a truncated or older copy is not the file);
 * - logs: a line the service wrote for an acknowledged request, identified by the request's token; present
 *   when a shipped segment holds it. Per replica, the newest surviving line tells how far its shipping got.
 *
 * Pure: the same ledgers and read-backs always give the same answer.
 */
import { checkLedger, type LedgerEntry } from './ledger.ts';

export type DataClass = 'database' | 'file-storage' | 'logs';

/** One acknowledged (or not) upload, as files.tsv holds it. */
export interface FileLedgerEntry {
  seq: number;
  /** Blob name inside the files container. */
  name: string;
  sha256: string;
  sentMs: number;
  ackMs: number | null;
  outcome: LedgerEntry['outcome'];
}

/** One request whose log line the service should have written, as logs.tsv holds it. */
export interface LogLedgerEntry {
  seq: number;
  token: string;
  /** The replica that answered (its x-drill-replica header); '' when no answer said. */
  replica: string;
  sentMs: number;
  ackMs: number | null;
  outcome: LedgerEntry['outcome'];
}

export interface ClassVerdict {
  dataClass: DataClass;
  acknowledged: number;
  survived: number;
  lost: number;
  /** Not acknowledged (timed out, reset): neither counted lost nor safe. */
  unknown: number;
  rpoSeconds: number;
  lostSample: string[];
  method: string;
}

const fileKey = (name: string, sha256: string) => `${name}\u0000${sha256}`;

/** `stored`: every blob in the files container with the sha256 of its content. */
export function checkFiles(entries: readonly FileLedgerEntry[], stored: ReadonlyMap<string, string>, faultMs: number): ClassVerdict {
  const present = new Set<string>();
  for (const [name, sha] of stored) present.add(fileKey(name, sha));
  const v = checkLedger(
    entries.map((e) => ({ seq: e.seq, token: fileKey(e.name, e.sha256), sentMs: e.sentMs, ackMs: e.ackMs, outcome: e.outcome })),
    present,
    faultMs,
  );
  return {
    dataClass: 'file-storage',
    acknowledged: v.acknowledged,
    survived: v.survived,
    lost: v.lost,
    unknown: v.unknownPresent + v.unknownAbsent,
    rpoSeconds: v.rpoSeconds,
    lostSample: v.lostSample.map((k) => k.split('\u0000')[0]!),
    method:
      'file ledger: every acknowledged upload by blob name and sha256; after recovery each is looked up in storage and counts as present only with the same bytes. ' +
      'RPO = fault time − ack time of the newest acknowledged file whose every predecessor (by ack time) survived.',
  };
}

export interface LogVerdict extends ClassVerdict {
  /** Per replica: acknowledged lines, lost lines, and the ack time (run-relative ms) of its newest surviving line. */
  replicas: Array<{ replica: string; acknowledged: number; lost: number; newestSurvivingAckMs: number | null }>;
}

/** `shippedTokens`: every token found in the shipped log segments. */
export function checkLogs(entries: readonly LogLedgerEntry[], shippedTokens: ReadonlySet<string>, faultMs: number): LogVerdict {
  const v = checkLedger(entries, shippedTokens, faultMs);
  const byReplica = new Map<string, LogVerdict['replicas'][number]>();
  for (const e of entries) {
    if (e.outcome !== 'ok') continue;
    let r = byReplica.get(e.replica);
    if (!r) {
      r = { replica: e.replica, acknowledged: 0, lost: 0, newestSurvivingAckMs: null };
      byReplica.set(e.replica, r);
    }
    r.acknowledged++;
    if (!shippedTokens.has(e.token)) r.lost++;
    else if (r.newestSurvivingAckMs === null || e.ackMs! > r.newestSurvivingAckMs) r.newestSurvivingAckMs = e.ackMs;
  }
  return {
    dataClass: 'logs',
    acknowledged: v.acknowledged,
    survived: v.survived,
    lost: v.lost,
    unknown: v.unknownPresent + v.unknownAbsent,
    rpoSeconds: v.rpoSeconds,
    lostSample: v.lostSample,
    replicas: [...byReplica.values()].sort((a, b) => a.replica.localeCompare(b.replica)),
    method:
      'log ledger: every acknowledged request by its token and the replica that answered; after recovery the shipped segments are read back. ' +
      'RPO = fault time − ack time of the newest acknowledged line whose every predecessor (by ack time) was shipped.',
  };
}
