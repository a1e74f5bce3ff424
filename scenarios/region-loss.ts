import { z } from 'zod';
import { parseDuration } from '../lib/config/duration.ts';
import type { FailbackResult, RegionRestoreOutcome } from '../lib/adapters/types.ts';
import { ledgerCounts } from '../lib/measure/ledger.ts';
import { describeVerdict } from '../lib/measure/ledger-readback.ts';
import { rpoFromLedger } from '../lib/score/objectives.ts';
import { scenario, type Action, type ScenarioContext } from '../lib/scenario/define.ts';
import { durationParam } from '../lib/scenario/params.ts';
import { checkLedgerOn } from '../lib/scenario/probes/ledger-readback.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const params = z
  .object({
    /** After the secondary serves and the recovery is on record, rebuild the primary region from it and switch back. */
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
interface FailedBack {
  result: FailbackResult;
  /** Run-relative ms: the failback began (mark failback-started). */
  startedMs: number;
  /** The secondary stopped taking writes: users are not served from here until the switch back. */
  writesStoppedMs: number;
  /** The global front switched back to the primary (mark failback-switched). */
  switchedMs: number;
  /** The engine's recovered instant the failback waited for. */
  recoveredMs: number;
}
type Failback = FailedBack | Skipped;

const { probe, action, define } = scenario({ params, requires: ['region', 'load'] });

const ROLLBACK_RESTORES =
  'the lab serves from one healthy region through the global front, and nothing of the other region runs: the secondary once the runbook completes (the lab is left serving from it, without failback), the primary once a failback completes, or the primary brought back when the secondary cannot be restored';

/**
 * The runbook from wherever it stopped: restore (returns one already serving), start the compute (repoints one
 * running), switch. When the secondary's copy cannot be restored, the outage ends instead: the primary region
 * comes back on its own data, and whatever started in the secondary is stopped.
 */
async function finishRunbook(ctx: Ctx): Promise<string> {
  const region = ctx.adapters.region;
  const v = await region.view(ctx.signal);
  // The secondary's data already sits in the primary's place: only finishing the failback keeps what it took.
  if (v.failbackUnderway) return finishFailback(ctx);
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

async function finishFailback(ctx: Ctx): Promise<string> {
  const r = await ctx.adapters.region.failBack({ signal: ctx.signal, log: (l) => ctx.log.info(l) });
  return `the failback finished: the primary region rebuilt from the secondary and serving on database port ${r.db.port}, the global front switched back at ${r.switchedAt}; nothing of the secondary runs`;
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

/**
 * Until the recovery in the secondary is on record as the run judges it: the SLOs held for a full recovery window
 * after `fromMs` and a write was acknowledged after `ackSinceMs`. Failing back earlier would cut the recovery
 * window short and date the region loss's RTO after the failback. Null when it is not within `withinMs`.
 */
async function waitRecovered(ctx: Ctx, fromMs: number, ackSinceMs: number, withinMs: number): Promise<number | null> {
  const deadline = ctx.now() + withinMs;
  for (;;) {
    const slo = ctx.load?.recoveredAfter?.(fromMs) ?? null;
    const ack = ctx.load?.ledger?.firstAckSince(ackSinceMs) ?? null;
    if (slo !== null && ack !== null) return Math.max(slo, ack);
    if (ctx.now() > deadline) return null;
    await sleep(250, undefined, { signal: ctx.signal });
  }
}

const failBack: Action<Params, boolean, Failback, Needs> = action<boolean, Failback>({
  name: 'fail back to the primary region',
  description:
    "with failback: true, once the recovery in the secondary is on record (the SLOs held for a recovery window and a write was acknowledged there): rebuild the primary region from the secondary (storage mirrored back, the secondary's database and its WAL moved into the primary's place, the standby rebuilt from it) and switch the global front back; measured as the loss was: RTO from the moment the secondary stops taking writes, lost writes on the way back",
  select: async (ctx) => ctx.params.failback,
  describeTargets: (on) => [
    on
      ? 'the primary region, rebuilt from the secondary; the global front, switched back to it'
      : 'nothing (failback: false): the lab is left serving from the secondary',
  ],
  async run(ctx, on) {
    if (!on) return { skipped: 'failback: false: the lab is left serving from the secondary' };
    const l = ctx.resultOf(lose);
    const s = ctx.resultOf(switchFront);
    if (!l || !s || 'skipped' in s)
      return { skipped: `not failed back: the secondary never served (${s && 'skipped' in s ? s.skipped : 'the runbook did not finish'})` };
    const within = ctx.entry.timeoutMs;
    const recoveredMs = await waitRecovered(ctx, l.atMs, s.endedMs, within);
    if (recoveredMs === null)
      return {
        skipped: `not failed back: the SLOs did not hold for a recovery window in the secondary within ${(within / 1000).toFixed(0)} s of the switch; the lab is left serving from the secondary`,
      };
    const startedMs = ctx.mark('failback-started').ms;
    ctx.log.info(`recovered in the secondary at ${(recoveredMs / 1000).toFixed(2)} s (run time): failing back`);
    let writesStoppedMs = startedMs;
    let switchedMs = startedMs;
    const result = await ctx.adapters.region.failBack({
      signal: ctx.signal,
      onWritesStopped: () => {
        writesStoppedMs = ctx.mark('failback-writes-stopped').ms;
      },
      onStep: (step, ms) => {
        const at = ctx.mark(`failback-${step}`).ms;
        if (step === 'switch') switchedMs = at;
        ctx.log.info(`failback: ${step} ${(ms / 1000).toFixed(2)} s`);
      },
      log: (line) => ctx.log.info(line),
    });
    return { result, startedMs, writesStoppedMs, switchedMs, recoveredMs };
  },
  rollback: {
    description:
      "finish the failback from wherever it stopped: storage mirrored back again, the secondary's database (stopped or not) and its WAL moved into the primary's place, the primary region started, the global front switched back; a failback that had not stopped the secondary's writes yet leaves the lab serving from the secondary",
    restores: ROLLBACK_RESTORES,
    byHand:
      "`drill lab status` says which region serves; `drill recover` finishes the failback; the primary's own data from before it is kept in `<lab>/quarantine/failback-*`",
    timeout: '45m',
    async holds(ctx, journaled) {
      // Not selected (failback: false): it changed nothing; the loss's own rollback judges the lab.
      if (!journaled.selected) return { ok: true, detail: 'failback: false: the failback changed nothing' };
      const v = await ctx.adapters.region.view(ctx.signal);
      if (v.failbackUnderway)
        return { ok: false, detail: "a failback moved the secondary's data into the primary's place and has not switched back" };
      const h = await ctx.adapters.region.servesFromOneRegion(ctx.signal);
      return { ok: h.ok, detail: h.detail };
    },
    async converge(ctx) {
      const v = await ctx.adapters.region.view(ctx.signal);
      // A secondary that never had a restored database has nothing to fail back: the runbook's own end applies.
      return v.failbackUnderway || v.secondaryDb ? finishFailback(ctx) : finishRunbook(ctx);
    },
  },
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
    if (p.failback && target.kind === 'lab' && target.database?.provider === 'patroni')
      out.push({
        path: 'failback',
        message:
          'failback rebuilds the lab pair without Patroni: under target.database.provider: patroni it would fight Patroni for the primary; drop failback (`drill lab down` then `drill lab up` starts the lab over in the primary) or use provider: pg-promote',
      });
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
  actions: [lose, restore, start, switchFront, failBack],
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
      const first = ctx.load?.ledger?.firstAckSince(s.endedMs) ?? null;
      if (writes === 0 || first === null) return { ok: false, detail: 'no write acknowledged since the switch' };
      return {
        ok: true,
        // Dated from the first write the secondary acknowledged: a failback after it does not move the recovery.
        heldSinceMs: first,
        detail: `${writes} writes acknowledged since the global front switched to the secondary`,
      };
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
      ...probe('failback', async (ctx) => {
        const fb = ctx.resultOf(failBack);
        const l = ctx.resultOf(lose);
        if (!fb || !l) return { ok: false, detail: 'the failback did not run' };
        if ('skipped' in fb) return { ok: false, detail: fb.skipped };
        // The way back measured as the way out: from the load, from the moment the secondary stopped taking writes.
        const back = await waitRecovered(ctx, fb.writesStoppedMs, fb.switchedMs, ctx.entry.timeoutMs);
        if (back !== null) ctx.mark('failback-recovered', back);
        const steps = fb.result.steps.map((x) => `${x.step} ${secs(x.ms)}`).join(', ');
        const files = fb.result.mirrored.map((m) => `${m.container} ${m.copied} copied / ${m.removed} removed`).join(', ');
        return {
          ok: back !== null,
          detail: `${back === null ? 'the SLOs did not hold for a recovery window after the switch back' : `RTO of the way back ${secs(back - fb.writesStoppedMs)} (from the secondary stopping its writes to the SLOs holding again)`}; steps: ${steps}; total time in DR (region lost to switched back) ${secs(fb.switchedMs - l.atMs)}; storage mirrored back: ${files}; ${fb.result.walShipped.length} WAL file(s) of the secondary archived in the primary${fb.result.quarantine ? `; the primary's data from before kept in ${fb.result.quarantine}` : ''}`,
        };
      }),
      skip: (ctx: ScenarioContext<Params>) => (ctx.params.failback ? null : 'failback: false: the lab is left serving from the secondary'),
    },
    {
      ...probe('write ledger read back from the serving database', async (ctx) => {
        const ledger = ctx.load?.ledger;
        const l = ctx.resultOf(lose);
        const fb = ctx.resultOf(failBack);
        const back = fb && !('skipped' in fb) ? fb : undefined;
        const s = ctx.resultOf(switchFront);
        // After a failback the primary holds what survived both ways; without one, the secondary's restored copy.
        const db = back ? back.result.db : ctx.resultOf(restore)?.outcome.db;
        if (!ledger || !l || !db) return { ok: false, detail: 'nothing to read back: no ledger, no region loss or no restored database' };
        const check = await checkLedgerOn(db, ledger, {
          faultMs: l.atMs,
          settleTimeoutMs: (ctx.drill.load?.timeoutMs ?? 10_000) + 2000,
          signal: ctx.signal,
          ...(back && s && !('skipped' in s) ? { lostAckedFromMs: s.endedMs } : {}),
        });
        const m = rpoFromLedger(check.verdict);
        const where = back
          ? `the primary's database on port ${db.port} after the failback`
          : `the secondary's restored database on port ${db.port}`;
        ctx.reportRpo({
          ...m,
          method: `${m.method} Fault time: the loss of the primary region (mark region-lost); ${check.judged} writes read back from ${where} in ${check.read.batches} batches.`,
          ledger: ledgerCounts(check.verdict, l.atMs),
        });
        const c = check.consistency;
        const lostBack = check.lostAckedFrom ?? 0;
        const problems = [
          ...c.problems,
          ...(lostBack > 0 ? [`${lostBack} writes the secondary acknowledged are missing after the failback`] : []),
        ];
        return {
          ok: problems.length === 0,
          severity: 'SEV1',
          detail: `${describeVerdict(check.verdict)}${back ? `; lost on the way back: ${lostBack} of the writes acknowledged after the switch to the secondary` : ''}; lookup and scan agree on ${c.rowsByToken} rows${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`,
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
