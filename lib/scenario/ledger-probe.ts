/**
 * The write ledger read back after a fault, as a verification probe: every write the load sent (token,
 * seq, fate) is looked up on the database, and the run's RPO is reported from what survived. Shared by
 * the scenarios whose fault could lose acknowledged writes: a failed-over primary, and a killed replica
 * of a service that might acknowledge before it commits.
 */
import { checkLedgerOn } from '../adapters/postgres/ledger.ts';
import { describeVerdict } from '../measure/ledger-readback.ts';
import { ledgerCounts } from '../measure/ledger.ts';
import { rpoFromLedger } from '../score/objectives.ts';
import type { Probe, ScenarioContext } from './define.ts';

export interface LedgerFault {
  /** Run-relative ms of the fault: RPO is measured back from it. */
  atMs: number;
  /** The fault in the record's words, e.g. "the kill of the primary (mark primary-killed)". */
  what: string;
}

/**
 * `optional`: a run without a ledger (the load sends no `{{token}}` writes) or without a database skips the
 * probe with the reason, instead of failing it; for scenarios where the read-back is extra evidence, not the point.
 */
export function ledgerReadback<P>(name: string, faultOf: (ctx: ScenarioContext<P>) => LedgerFault | undefined, options: { optional?: boolean } = {}): Probe<P> {
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
      if (!ledger || !fault || !d) return { ok: false, detail: `nothing to check against: ${!ledger ? 'no write ledger' : !d ? 'no database' : 'no fault was injected'}` };
      const check = await checkLedgerOn(d.endpoint, ledger, {
        faultMs: fault.atMs,
        settleTimeoutMs: (ctx.drill.load?.timeoutMs ?? 10_000) + 2000,
        signal: ctx.signal,
      });
      const v = check.verdict;
      const m = rpoFromLedger(v);
      ctx.reportRpo({
        ...m,
        method: `${m.method} Fault time: ${fault.what}; ${check.judged} writes read back through ${d.endpoint.host}:${d.endpoint.port} in ${check.read.batches} batches.`,
        ledger: ledgerCounts(v, fault.atMs),
      });
      const c = check.consistency;
      // A lost acknowledged write fails the RPO objective, not this probe: the probe fails on what the read-back cannot vouch for.
      return { ok: c.ok, detail: `${describeVerdict(v)}; lookup and scan agree on ${c.rowsByToken} rows${c.problems.length ? `; PROBLEMS: ${c.problems.join('; ')}` : ''}` };
    },
  };
}
