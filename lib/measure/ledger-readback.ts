/**
 * Judging a write ledger's read-back: the checker's classes plus the consistency of what the database
 * returned. Pure, so the same ledger and the same rows always give the same verdict.
 *
 * The read-back takes one snapshot and reads it two ways: every token of the ledger by index lookup,
 * and every row carrying the ledger's tag by a scan of the table. The two must agree, no token may have
 * two rows, and a row's stored seq must be the seq its write carried. A row with the tag that the ledger
 * never sent is `unexpected`; a row of a write sent after the cut-off (the load keeps running while the
 * harness reads) belongs to a later part of the ledger and is set aside, not counted as a stranger.
 */
import { checkLedger, type LedgerEntry, type LedgerVerdict } from './ledger.ts';

/** What the database returned, from one snapshot. Values are the stored seq (null when the column is empty or absent). */
export interface ReadBackRows {
  /** Ledger tokens found by index lookup. */
  byToken: ReadonlyMap<string, number | null>;
  /** Every row whose token starts with the ledger's tag, from a table scan; a token seen twice has two entries. */
  byScan: ReadonlyArray<{ token: string; seq: number | null }>;
}

export interface ReadBackConsistency {
  /** Rows of checked writes found by lookup and by scan. */
  rowsByToken: number;
  rowsByScan: number;
  /** Tokens one access path found and the other did not (index and heap disagree). */
  onlyByToken: number;
  onlyByScan: number;
  /** Tokens with more than one row. */
  duplicates: number;
  /** Rows whose stored seq differs from the seq the write carried. */
  seqMismatches: number;
  /** Rows of writes scheduled after the cut-off: present, but not judged in this read-back. */
  later: number;
  /** Every write classified once, and lookup and scan agree. */
  ok: boolean;
  problems: string[];
}

export interface ReadBackVerdict {
  verdict: LedgerVerdict;
  consistency: ReadBackConsistency;
}

/**
 * `entries` are the writes judged (every one settled); `laterTokens` are the ledger's tokens sent after
 * them. `faultMs` is when the primary died: RPO is measured back from it. `restorePointMs`, after a
 * point-in-time restore: acknowledged writes absent whose ack came after it were discarded, not lost.
 */
export function judgeReadBack(
  entries: readonly LedgerEntry[],
  laterTokens: ReadonlySet<string>,
  rows: ReadBackRows,
  faultMs: number,
  restorePointMs?: number,
): ReadBackVerdict {
  const judged = new Map<string, LedgerEntry>();
  for (const e of entries) judged.set(e.token, e);

  const scanCount = new Map<string, number>();
  const present = new Set<string>();
  let later = 0;
  let seqMismatches = 0;
  for (const r of rows.byScan) {
    const n = (scanCount.get(r.token) ?? 0) + 1;
    scanCount.set(r.token, n);
    if (n > 1) continue;
    if (laterTokens.has(r.token)) {
      later++;
      continue;
    }
    present.add(r.token);
    const e = judged.get(r.token);
    if (e && r.seq !== null && r.seq !== e.seq) seqMismatches++;
  }
  let onlyByToken = 0;
  let rowsByToken = 0;
  for (const [token, seq] of rows.byToken) {
    if (!judged.has(token)) continue;
    rowsByToken++;
    if (!scanCount.has(token)) {
      onlyByToken++;
      present.add(token);
      const e = judged.get(token)!;
      if (seq !== null && seq !== e.seq) seqMismatches++;
    }
  }
  let onlyByScan = 0;
  let rowsByScan = 0;
  for (const token of scanCount.keys()) {
    if (!judged.has(token)) continue;
    rowsByScan++;
    if (!rows.byToken.has(token)) onlyByScan++;
  }
  let duplicates = 0;
  for (const n of scanCount.values()) if (n > 1) duplicates++;

  const verdict = checkLedger(entries, present, faultMs, restorePointMs);
  const classified =
    verdict.survived +
    verdict.lost +
    verdict.discarded +
    verdict.unknownPresent +
    verdict.unknownAbsent +
    verdict.failedPresent +
    verdict.failedAbsent;
  const problems: string[] = [];
  if (classified !== verdict.total) problems.push(`${classified} writes classified of ${verdict.total}`);
  if (onlyByToken > 0) problems.push(`${onlyByToken} tokens found by index lookup but not by a table scan`);
  if (onlyByScan > 0) problems.push(`${onlyByScan} tokens found by a table scan but not by index lookup`);
  if (duplicates > 0) problems.push(`${duplicates} tokens stored more than once`);
  if (seqMismatches > 0) problems.push(`${seqMismatches} rows whose seq differs from the one their write carried`);
  if (verdict.failedPresent > 0) problems.push(`${verdict.failedPresent} writes the service refused are present`);
  if (verdict.unexpected > 0) problems.push(`${verdict.unexpected} rows carry this run's tag but no token it sent`);
  return {
    verdict,
    consistency: {
      rowsByToken,
      rowsByScan,
      onlyByToken,
      onlyByScan,
      duplicates,
      seqMismatches,
      later,
      ok: problems.length === 0,
      problems,
    },
  };
}

/** One line for the journal and the verify probe: every class with its count, and the lost window. */
export function describeVerdict(v: LedgerVerdict): string {
  const parts = [
    `${v.total} writes: ${v.acknowledged} acknowledged (${v.survived} survived, ${v.lost} lost${v.discarded > 0 ? `, ${v.discarded} discarded by the point-in-time restore` : ''})`,
    `unknown ${v.unknownPresent} present / ${v.unknownAbsent} absent`,
    `failed ${v.failedAbsent} absent / ${v.failedPresent} present`,
    `${v.unexpected} unexpected`,
  ];
  if (v.lostWindow) parts.push(`lost acks from ${fmt(v.lostWindow.firstAckMs)} to ${fmt(v.lostWindow.lastAckMs)}`);
  return parts.join('; ');
}

function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
