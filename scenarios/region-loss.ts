import { z } from 'zod';
import { parseDuration } from '../lib/config/duration.ts';
import type { RegionRestoreOutcome } from '../lib/adapters/types.ts';
import { ledgerCounts } from '../lib/measure/ledger.ts';
import { describeVerdict } from '../lib/measure/ledger-readback.ts';
import { rpoFromLedger } from '../lib/score/objectives.ts';
import { scenario, type Action, type ScenarioContext } from '../lib/scenario/define.ts';
import { durationParam } from '../lib/scenario/params.ts';
import { checkLedgerOn } from '../lib/scenario/probes/ledger-readback.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const params = z
  .object({
    /** After the secondary serves, rebuild the primary from it and switch back. Not built yet: refused at validation. */
    failback: z.boolean().default(false),
    /** Longest the restore in the secondary (download, WAL replay, promote) may take. */
    restoreTimeout: durationParam('15m or 1h', { positive: true }).default('30m'),
    /** Longest the runbook waits for a health probe through the global front to see the region gone. */
    detectTimeout: durationParam('30s or 2m', { positive: true }).default('1m'),
  })
  .strict();
type Params = z.output<typeof params>;
type Needs = 'region' | 'load';
type Ctx = ScenarioContext<Params, Needs>;

interface Lost {
  at: string;
  /** Run-relative ms the SIGKILL sweep began (mark region-lost). */
  atMs: number;
  killed: number;
  parts: string[];
}
interface Restored {
  outcome: RegionRestoreOutcome;
  /** Run-relative ms: the health probe through the global front saw the region gone (mark region-loss-detected). */
  detectedMs: number;
  detectedBy: string;
  startedMs: number;
  endedMs: number;
}
/** A later runbook step that did not run (the restore failed): why, so the record says it. */
type Skipped = { skipped: string };
type Started = { frontPort: number; replicas: number; startedMs: number; endedMs: number } | Skipped;
type Switched = { switchedAt: string; startedMs: number; endedMs: number } | Skipped;

const { probe, action, define } = scenario({ params, requires: ['region', 'load'] });

const ROLLBACK_RESTORES =
  'the lab serves from one healthy region through the global front, and nothing of the other region runs: the secondary once the runbook completes (the lab is left serving from it, without failback), or the primary brought back when the secondary cannot be restored';

/**
 * The runbook from wherever it stopped: restore (returns one already serving), start the compute (repoints one
 * running), switch. When the secondary's copy cannot be restored, the outage ends instead: the primary region
 * comes back on its own data, and whatever started in the secondary is stopped.
 */
async function finishRunbook(ctx: Ctx): Promise<string> {
  const region = ctx.adapters.region;
  const v = await region.view(ctx.signal);
  if (v.active === 'primary' && v.primaryRunning.includes('daemon')) {
    // The loss never happened (journaled, then cut short), or the primary already came back: only leftovers to stop.
    return region.restorePrimaryRegion({ signal: ctx.signal, log: (l) => ctx.log.info(l) });
  }
  const r = await region.restoreSecondaryDb({ signal: ctx.signal, log: (l) => ctx.log.info(l) });
  if (!r.ok || !r.db) {
    ctx.signal.throwIfAborted();
    if (v.active === 'secondary') throw new Error(`the secondary serves but its database cannot be brought back: ${r.problem}`);
    const back = await region.restorePrimaryRegion({ signal: ctx.signal, log: (l) => ctx.log.info(l) });
    return `the secondary could not be restored (${r.problem}); ${back}`;
  }
  const c = await region.startSecondaryCompute({ dbPort: r.db.port, replicas: replicasOf(ctx), signal: ctx.signal });
  await region.switchFront('secondary', c.frontPort, ctx.signal);
  return `the runbook finished in the secondary: database restored from ${r.backupFolder} to ${r.reachedLsn} on port ${r.db.port}, ${c.replicas} replicas serving, the global front switched to the secondary; the lab is left serving from the secondary (no failback)`;
}

const replicasOf = (ctx: Ctx) => (ctx.drill.target.kind === 'lab' ? ctx.drill.target.replicas : undefined);

const lose: Action<Params, string[], Lost, Needs> = action<string[], Lost>({
  name: 'lose the primary region',
  description:
    "kill every process of the primary region at once (SIGKILL: service replicas, lab daemon, both PostgreSQL nodes, WAL archiver, log shipper, replicator) and make its storage account unreachable (its Azurite killed); data directories stay on disk, as in an outage; the global front and the secondary's storage are not touched",
  async select(ctx) {
    const v = await ctx.adapters.region.view(ctx.signal);
    return v.primaryRunning;
  },
  describeTargets: (parts) => [
    parts.length > 0 ? `the primary region: ${parts.join(', ')}` : 'the primary region (nothing of it runs now)',
  ],
  async run(ctx) {
    const r = await ctx.adapters.region.losePrimary();
    // The instant the SIGKILL sweep began, not when every process was seen gone: the fault's real onset.
    const atMs = ctx.mark('region-lost', Math.min(ctx.now(), ctx.now() - (Date.now() - Date.parse(r.at)))).ms;
    const parts = [...new Set(r.killed.filter((k) => !k.part.endsWith(' child')).map((k) => k.part))];
    ctx.log.info(`primary region lost at ${r.at}: ${r.killed.length} processes SIGKILLed (${parts.join(', ')})`);
    return { at: r.at, atMs, killed: r.killed.length, parts };
  },
  rollback: {
    description:
      "finish the runbook from wherever it stopped: restore the database in the secondary (one already restored is kept, one half-done is started over), start the service replicas there, switch the global front to the secondary; if the secondary's copy cannot be restored (a blob missing), stop what started there and bring the primary region back on its own data. Each step is idempotent. Failback to the primary is not part of it",
    restores: ROLLBACK_RESTORES,
    byHand:
      "`drill lab status` says which region serves and what runs of each; `drill recover` finishes the runbook from where it stopped; when it cannot, `drill lab down` stops both regions and `drill lab up` starts the lab over in the primary (the lab's data is disposable)",
    timeout: '45m',
    async holds(ctx) {
      const h = await ctx.adapters.region.servesFromOneRegion(ctx.signal);
      return { ok: h.ok, detail: h.detail };
    },
    converge: (ctx) => finishRunbook(ctx),
  },
});

/** Polls the global front as a health probe would until a request fails, and says when and how it failed. */
async function detect(ctx: Ctx): Promise<{ ms: number; by: string }> {
  const deadline = ctx.now() + parseDuration(ctx.params.detectTimeout);
  const url = ctx.load?.serviceUrl;
  if (!url) return { ms: ctx.now(), by: 'no global front URL to probe: detection taken as immediate' };
  for (;;) {
    const at = ctx.now();
    const seen = await fetch(`${url}/orders?limit=1`, { signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(2000)]) }).then(
      async (r) => (await r.arrayBuffer(), r.status >= 500 ? `answered ${r.status}` : null),
      (e: Error) => (ctx.signal.aborted ? null : `failed (${e.message})`),
    );
    ctx.signal.throwIfAborted();
    if (seen) return { ms: at, by: `a health probe through the global front (GET /orders every 250 ms) ${seen}` };
    if (at > deadline) return { ms: at, by: `no health probe failed within ${ctx.params.detectTimeout}: the runbook started anyway` };
    await sleep(250, undefined, { signal: ctx.signal });
  }
}

const restore: Action<Params, null, Restored, Needs> = action<null, Restored>({
  name: 'restore the database in the secondary',
  description:
    "the runbook, once a health probe through the global front sees the region gone: restore the database in the secondary region from the secondary account's copy of the newest base backup and archived WAL only (every segment checked for holes before anything starts), replayed to the newest segment, promoted",
  select: async () => null,
  describeTargets: () => ["the secondary's database, restored from the secondary account (labsecondary) alone"],
  async run(ctx) {
    const d = await detect(ctx);
    const detectedMs = ctx.mark('region-loss-detected', d.ms).ms;
    ctx.log.info(`region loss detected: ${d.by}`);
    const startedMs = ctx.mark('restore-started').ms;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(parseDuration(ctx.params.restoreTimeout))]);
    const outcome = await ctx.adapters.region.restoreSecondaryDb({
      signal,
      onStep: (step, ms) => {
        ctx.mark(`restore-${step}`);
        ctx.log.info(`secondary restore: ${step} ${(ms / 1000).toFixed(2)} s`);
      },
      log: (l) => ctx.log.info(l),
    });
    // Cut short by SIGINT or a stop condition, the restore answers rather than throws: the run is aborted, not failed.
    if (!outcome.ok && ctx.signal.aborted) throw ctx.signal.reason;
    const endedMs = ctx.mark(outcome.ok ? 'secondary-db-restored' : 'secondary-restore-failed').ms;
    if (!outcome.ok) ctx.log.warn(`the secondary's database was not restored: ${outcome.problem}; the global front stays where it is`);
    return { outcome, detectedMs, detectedBy: d.by, startedMs, endedMs };
  },
  rollback: { none: "the restore is the recovery; one cut short is finished by the rollback of 'lose the primary region'" },
});

const start: Action<Params, null, Started, Needs> = action<null, Started>({
  name: 'start the service in the secondary',
  description:
    "start the service replicas in the secondary region against the restored database and the secondary's storage account (files and logs), and wait until they serve; not started when the restore failed",
  select: async () => null,
  describeTargets: () => ["the secondary region's compute: the lab daemon, its front and the service replicas"],
  async run(ctx) {
    const r = ctx.resultOf(restore)?.outcome;
    if (!r?.ok || !r.db)
      return { skipped: `not started: the secondary's database was not restored (${r?.problem ?? 'the restore did not run'})` };
    const startedMs = ctx.now();
    const c = await ctx.adapters.region.startSecondaryCompute({ dbPort: r.db.port, replicas: replicasOf(ctx), signal: ctx.signal });
    const endedMs = ctx.mark('secondary-serving').ms;
    ctx.log.info(`secondary compute serving: ${c.replicas} replicas behind its front on port ${c.frontPort}`);
    return { ...c, startedMs, endedMs };
  },
  rollback: {
    none: "left serving: the lab serves from it after the drill; one cut short is finished by the rollback of 'lose the primary region'",
  },
});

const switchFront: Action<Params, null, Switched, Needs> = action<null, Switched>({
  name: 'switch the global front',
  description: "send the load to the secondary region's front (as a Front Door origin switch); never to a region whose restore failed",
  select: async () => null,
  describeTargets: () => ['the global front the load hits: from the primary region to the secondary'],
  async run(ctx) {
    const c = ctx.resultOf(start);
    if (!c || 'skipped' in c) return { skipped: `not switched: ${c?.skipped ?? 'the secondary compute did not start'}` };
    const startedMs = ctx.now();
    const r = await ctx.adapters.region.switchFront('secondary', c.frontPort, ctx.signal);
    const endedMs = ctx.mark('front-switched').ms;
    ctx.log.info(`global front switched to the secondary at ${r.switchedAt}`);
    return { switchedAt: r.switchedAt, startedMs, endedMs };
  },
  rollback: { none: "the lab is left serving from the secondary (no failback); the rollback of 'lose the primary region' checks it" },
});

const secs = (ms: number | undefined) => (ms === undefined ? 'not reached' : `${(ms / 1000).toFixed(2)} s`);

/** The RTO breakdown from the run's own marks and the restore's timings, each step named as the runbook names it. */
export function breakdown(
  lost: Lost,
  r: Restored,
  c: Started | undefined,
  s: Switched | undefined,
): { step: string; ms: number | undefined; how: string }[] {
  const t = r.outcome.timings;
  const ran = <T extends object>(x: T | Skipped | undefined): T | undefined => (x && !('skipped' in x) ? x : undefined);
  const sc = ran(c);
  const ss = ran(s);
  return [
    { step: 'detect', ms: r.detectedMs - lost.atMs, how: r.detectedBy },
    { step: 'restore', ms: t.downloadMs, how: 'base backup downloaded from the secondary account' },
    { step: 'replay', ms: t.replayMs, how: 'archived WAL replayed (runs beside the download)' },
    { step: 'promote', ms: t.promoteMs, how: 'end of recovery: new timeline, checkpoint' },
    { step: 'start', ms: sc ? sc.endedMs - sc.startedMs : undefined, how: 'secondary replicas started and serving' },
    { step: 'switch', ms: ss ? ss.endedMs - ss.startedMs : undefined, how: 'global front switched' },
  ];
}

export default define({
  name: 'region-loss',
  description:
    "Lose the whole primary region under load (every process killed at once, its storage unreachable); the runbook restores the database in the secondary region from the secondary's copy of the backups, starts the service there and switches the global front. RTO broken down by step, RPO for database, files and logs from their ledgers.",
  tier: 'critical',
  dataClass: 'database',
  validate(p, target) {
    const out: { path: string; message: string }[] = [];
    if (target.kind === 'lab' && target.regions !== 2)
      out.push({
        path: 'target.regions',
        message:
          'region-loss needs a lab of two regions: set target.regions: 2 (a secondary region whose storage the replicator fills, with replicationLag)',
      });
    if (target.kind !== 'lab')
      out.push({
        path: 'target',
        message: `region-loss runs on a lab target with regions: 2; a ${target.kind} target has no secondary region's storage configured for the drill to restore from`,
      });
    if (p.failback)
      out.push({
        path: 'failback',
        message:
          'failback: true is not built yet: the drill cannot rebuild the primary region from the secondary and switch back; drop failback (the lab is then left serving from the secondary, and `drill lab down` stops both regions)',
      });
    return out;
  },
  async preflight(ctx) {
    const f = await ctx.adapters.region.preflight(ctx.signal);
    return f.problems.map((message) => ({ path: /regions: 2/.test(message) ? 'target.regions' : 'target', message }));
  },
  steadyState: [
    probe('the global front serves from the primary region', async (ctx) => {
      const v = await ctx.adapters.region.view(ctx.signal);
      if (!v.globalFront.alive) return { ok: false, detail: 'the global front is not running' };
      if (v.active !== 'primary') return { ok: false, detail: `the global front sends the load to the ${v.active} region` };
      return {
        ok: v.secondaryRunning.length === 0,
        detail:
          v.secondaryRunning.length === 0
            ? `primary region serving through the global front (${v.primaryRunning.length} parts running); nothing runs in the secondary yet`
            : `the secondary already runs ${v.secondaryRunning.join(', ')}: an earlier drill left it (\`drill recover\`, or \`drill lab down\`)`,
      };
    }),
    probe('the load writes with tokens', async (ctx) => {
      const acked = ctx.load?.ledger?.counts().ok ?? 0;
      return {
        ok: acked > 0,
        detail:
          acked > 0
            ? `${acked} writes acknowledged in the baseline`
            : 'no request of the load carries {{token}}: no write ledger to measure the RPO by',
      };
    }),
  ],
  actions: [lose, restore, start, switchFront],
  recovery: {
    description:
      'users are served from the secondary region: the runbook completed, the global front sends the load there, and a write was acknowledged after the switch',
    pollMs: 250,
    until: probe('users served from the secondary region', async (ctx) => {
      const r = ctx.resultOf(restore);
      if (!r) return { ok: false, detail: 'the runbook has not run' };
      if (!r.outcome.ok) return { ok: false, final: true, detail: `the secondary's database was not restored: ${r.outcome.problem}` };
      const s = ctx.resultOf(switchFront);
      if (!s || 'skipped' in s) return { ok: false, detail: 'the global front has not been switched' };
      const writes = ctx.load?.ledger?.acknowledgedSince(s.endedMs) ?? 0;
      if (writes === 0) return { ok: false, detail: 'no write acknowledged since the switch' };
      return { ok: true, detail: `${writes} writes acknowledged since the global front switched to the secondary` };
    }),
  },
  verify: [
    probe("the secondary's copy of the backups is complete", async (ctx) => {
      const r = ctx.resultOf(restore);
      if (!r) return { ok: false, detail: 'the restore did not run' };
      const o = r.outcome;
      if (o.ok)
        return {
          ok: true,
          detail: `base backup ${o.backupFolder} and every WAL segment to ${o.reachedLsn} found in the secondary account`,
        };
      return {
        ok: false,
        severity: 'SEV1',
        detail: `the region could not be recovered in the secondary: ${o.problem}${o.missing.length ? ` (missing: ${o.missing.join(', ')})` : ''}; the global front was not switched to a region that does not work`,
      };
    }),
    {
      ...probe('RTO breakdown', async (ctx) => {
        const l = ctx.resultOf(lose);
        const r = ctx.resultOf(restore);
        if (!l || !r) return { ok: false, detail: 'the runbook did not run' };
        const steps = breakdown(l, r, ctx.resultOf(start), ctx.resultOf(switchFront));
        const s = ctx.resultOf(switchFront);
        const total = s && !('skipped' in s) ? s.endedMs - l.atMs : undefined;
        return {
          ok: r.outcome.ok && total !== undefined,
          detail: `${steps.map((x) => `${x.step} ${secs(x.ms)}`).join(', ')}; region lost to global front switched ${secs(total)} (detect: ${r.detectedBy}; the load's own first failure is the outage-detected mark)`,
        };
      }),
      // A runbook that stopped at the restore has no breakdown to judge: the finding above names why.
      skip: (ctx: ScenarioContext<Params>) =>
        ctx.resultOf(restore)?.outcome.ok === false
          ? "the secondary's database was not restored: the runbook has no breakdown past detection"
          : null,
    },
    {
      ...probe('write ledger read back from the secondary database', async (ctx) => {
        const ledger = ctx.load?.ledger;
        const l = ctx.resultOf(lose);
        const db = ctx.resultOf(restore)?.outcome.db;
        if (!ledger || !l || !db) return { ok: false, detail: 'nothing to read back: no ledger, no region loss or no restored database' };
        const check = await checkLedgerOn(db, ledger, {
          faultMs: l.atMs,
          settleTimeoutMs: (ctx.drill.load?.timeoutMs ?? 10_000) + 2000,
          signal: ctx.signal,
        });
        const m = rpoFromLedger(check.verdict);
        ctx.reportRpo({
          ...m,
          method: `${m.method} Fault time: the loss of the primary region (mark region-lost); ${check.judged} writes read back from the secondary's restored database on port ${db.port} in ${check.read.batches} batches.`,
          ledger: ledgerCounts(check.verdict, l.atMs),
        });
        const c = check.consistency;
        return {
          ok: c.ok,
          detail: `${describeVerdict(check.verdict)}; lookup and scan agree on ${c.rowsByToken} rows${c.problems.length ? `; PROBLEMS: ${c.problems.join('; ')}` : ''}`,
        };
      }),
      skip: (ctx: ScenarioContext<Params>) =>
        !ctx.load?.ledger || ctx.load.ledger.count === 0
          ? 'the load sent no writes with a {{token}}: no write ledger to read back'
          : ctx.resultOf(restore)?.outcome.ok
            ? null
            : "the secondary's database was not restored: nothing to read the ledger back from",
    },
  ],
});
