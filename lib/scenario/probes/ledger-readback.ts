/**
 * The write ledger read back after a fault, as a verification probe: every write the load sent (token,
 * seq, fate) is looked up on the database, and the run's RPO is reported from what survived. Shared by
 * the scenarios whose fault could lose acknowledged writes: a failed-over primary, and a killed replica
 * of a service that might acknowledge before it commits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readBackTokens, type LedgerConnection, type ReadBackOptions } from '../../adapters/postgres/ledger.ts';
import type { WriteLedger } from '../../load/ledger.ts';
import { describeVerdict, judgeReadBack, type ReadBackVerdict } from '../../measure/ledger-readback.ts';
import { ledgerCounts } from '../../measure/ledger.ts';
import { rpoFromLedger } from '../../score/objectives.ts';
import type { Probe, ScenarioContext } from '../define.ts';

export interface LedgerCheck extends ReadBackVerdict {
  /** Writes judged: ledger rows [0, judged). */
  judged: number;
  read: { batches: number; ms: number };
  /** With `lostAckedFromMs`: acknowledged writes acked at or after it that the database lacks (a failback's losses). */
  lostAckedFrom?: number;
}

/**
 * Reads back every write scheduled so far and judges it. The load keeps running: writes from before now
 * are first given until their timeout to settle (a pending write has no fate yet), and rows of writes
 * sent after the cut-off are set aside rather than counted as strangers.
 */
export async function checkLedgerOn(
  conn: LedgerConnection,
  ledger: WriteLedger,
  options: ReadBackOptions & {
    faultMs: number;
    restorePointMs?: number;
    settleTimeoutMs: number;
    signal: AbortSignal;
    lostAckedFromMs?: number;
  },
): Promise<LedgerCheck> {
  const cut = ledger.count;
  const deadline = performance.now() + options.settleTimeoutMs;
  while (ledger.settledPrefix(cut) < cut) {
    if (performance.now() > deadline)
      throw new Error(`${cut - ledger.settledPrefix(cut)} writes still pending after ${options.settleTimeoutMs} ms`);
    await sleep(50, undefined, { signal: options.signal });
  }
  const entries = ledger.entries(0, cut);
  const rows = await readBackTokens(
    conn,
    entries.map((e) => e.token),
    ledger.tag,
    options,
  );
  const later = new Set<string>();
  for (let r = cut; r < ledger.count; r++) later.add(ledger.tokenOf(r));
  const from = options.lostAckedFromMs;
  let lostAckedFrom: number | undefined;
  if (from !== undefined) {
    const scanned = new Set(rows.byScan.map((r) => r.token));
    lostAckedFrom = entries.filter(
      (e) => e.outcome === 'ok' && e.ackMs !== null && e.ackMs >= from && !rows.byToken.has(e.token) && !scanned.has(e.token),
    ).length;
  }
  return {
    ...judgeReadBack(entries, later, rows, options.faultMs, options.restorePointMs),
    judged: cut,
    read: { batches: rows.batches, ms: rows.ms },
    ...(lostAckedFrom === undefined ? {} : { lostAckedFrom }),
  };
}

export interface LedgerFault {
  /** Run-relative ms of the fault: RPO is measured back from it. */
  atMs: number;
  /** The fault in the record's words, e.g. "the kill of the primary (mark primary-killed)". */
  what: string;
  /**
   * Run-relative ms of the point a point-in-time restore went back to (read right before a destructive change):
   * acknowledged writes absent whose ack came after it were discarded by the restore, counted apart from lost.
   */
  restorePointMs?: number;
}

/**
 * `optional`: a run without a ledger (the load sends no `{{token}}` writes) or without a database skips the
 * probe with the reason, instead of failing it; for scenarios where the read-back is extra evidence, not the point.
 */
export function ledgerReadback<P>(
  name: string,
  faultOf: (ctx: ScenarioContext<P>) => LedgerFault | undefined,
  options: { optional?: boolean } = {},
): Probe<P> {
  return {
    name,
    ...(options.optional
      ? {
          skip: (ctx: ScenarioContext<P>) =>
            !ctx.load?.ledger || ctx.load.ledger.count === 0
              ? 'the load sent no writes with a {{token}}, so there is no write ledger to read back; RPO not measured'
              : !ctx.adapters.database
                ? 'the target names no database to read the write ledger back from; RPO not measured'
                : null,
        }
      : {}),
    async check(ctx) {
      const ledger = ctx.load?.ledger;
      const fault = faultOf(ctx);
      const d = ctx.adapters.database;
      if (!ledger || !fault || !d)
        return {
          ok: false,
          detail: `nothing to check against: ${!ledger ? 'no write ledger' : !d ? 'no database' : 'no fault was injected'}`,
        };
      const check = await checkLedgerOn(d.endpoint, ledger, {
        faultMs: fault.atMs,
        ...(fault.restorePointMs === undefined ? {} : { restorePointMs: fault.restorePointMs }),
        settleTimeoutMs: (ctx.drill.load?.timeoutMs ?? 10_000) + 2000,
        signal: ctx.signal,
      });
      const v = check.verdict;
      const m = rpoFromLedger(v);
      ctx.reportRpo({
        ...m,
        method: `${m.method} Fault time: ${fault.what}; ${check.judged} writes read back through ${d.endpoint.host}:${d.endpoint.port} in ${check.read.batches} batches.`,
        ledger: ledgerCounts(v, fault.atMs, fault.restorePointMs),
      });
      const c = check.consistency;
      // A lost acknowledged write fails the RPO objective, not this probe: the probe fails on what the read-back cannot vouch for.
      return {
        ok: c.ok,
        detail: `${describeVerdict(v)}; lookup and scan agree on ${c.rowsByToken} rows${c.problems.length ? `; PROBLEMS: ${c.problems.join('; ')}` : ''}`,
      };
    },
  };
}
