import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { durationParam } from '../lib/scenario/params.ts';
import { parseDuration } from '../lib/config/duration.ts';
import { scenario, type Action, type ScenarioContext } from '../lib/scenario/define.ts';
import type { LiveRestoreOutcome, RestorePoint, RestoreTarget } from '../lib/adapters/types.ts';
import { destroyData } from '../lib/adapters/postgres/data-loss.ts';
import { standbyStreaming } from '../lib/scenario/probes/replication.ts';
import { ledgerReadback } from '../lib/scenario/probes/ledger-readback.ts';

const params = z
  .object({
    /** drop-table: the table is gone; delete-rows: DELETE without WHERE, the service answers wrongly; lose-cluster: every node and its disk gone. */
    fault: z.enum(['drop-table', 'delete-rows', 'lose-cluster']),
    /** The service's table the fault hits (drop-table, delete-rows) and the restore must bring back. */
    table: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a table name of lowercase letters, digits and underscores, like orders')
      .default('orders'),
    /** before-fault: the LSN read just before the change (exclusive); latest: every archived segment. Default: before-fault, latest for lose-cluster. */
    restoreTo: z.enum(['before-fault', 'latest']).optional(),
    /** Longest the restore (download, WAL replay, promote, repoint, standby rebuilt) may take. */
    restoreTimeout: durationParam('10m or 30m', { positive: true }).default('15m'),
  })
  .strict();
type Params = z.output<typeof params>;
type Needs = 'database' | 'live-restore' | 'load';
type Ctx = ScenarioContext<Params, Needs>;

const restoreToOf = (p: Params) => p.restoreTo ?? (p.fault === 'lose-cluster' ? 'latest' : 'before-fault');
const targetOf = (p: Params, point: RestorePoint): RestoreTarget =>
  restoreToOf(p) === 'latest' ? 'latest' : { lsn: point.lsn, inclusive: false };

/** Journaled before the change: the run's restore id, and the point to restore to, read right before it. */
interface Marked {
  runId: string;
  point: RestorePoint;
  /** Run-relative ms just before the LSN was read: a write acknowledged before it is in the restored database. */
  pointMs: number;
  endpoint: string;
}
interface Destroyed extends Marked {
  atMs: number;
  detail: string;
}
interface Restored {
  outcome: LiveRestoreOutcome;
  startedMs: number;
  endedMs: number;
  /** When the service was pointed at the restored database: users are served from then on, the standby still building. */
  servingMs?: number;
}

const { probe, action, define } = scenario({ params, requires: ['database', 'live-restore', 'load'] });

// Typed by hand: each action reads the other's result (the restore the fault's, the fault's rollback the restore's).
const destroy: Action<Params, Marked, Destroyed, Needs> = action<Marked, Destroyed>({
  name: 'destroy data',
  description:
    "record the restore point (LSN, time) on the primary, then destroy data the way a bad migration does: DROP TABLE or DELETE without WHERE through the service endpoint (drop-table, delete-rows), or lose the whole cluster (lose-cluster: on the lab every node killed and its data directory moved aside; on Kubernetes the CloudNativePG Cluster fenced, every instance's PostgreSQL stopped with pods and volumes kept)",
  async select(ctx) {
    const db = ctx.adapters.database;
    // Read-only, and journaled with the intent: the restore point survives a crash between here and the change.
    const pointMs = ctx.mark('restore-point').ms;
    const point = await ctx.adapters.liveRestore.markRestorePoint(ctx.signal);
    const runId = `${ctx.entry.name}-${point.at.replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
    return { runId, point, pointMs, endpoint: `${db.endpoint.host}:${db.endpoint.port}` };
  },
  describeTargets: (m) => [
    `restore point ${m.point.lsn} (timeline ${m.point.timeline}, ${m.point.at}) on the primary behind ${m.endpoint}`,
  ],
  async run(ctx, m) {
    const p = ctx.params;
    let detail: string;
    if (p.fault === 'lose-cluster') {
      const lost = await ctx.adapters.liveRestore.loseCluster(m.runId, ctx.signal);
      detail = lost.detail ?? `${lost.nodes.join(', ')} killed, data directories moved to ${lost.quarantine}`;
    } else {
      const db = ctx.adapters.database;
      const r = await destroyData(db.endpoint, p.fault, p.table, ctx.signal);
      detail = `${r.statement} through ${m.endpoint}: ${r.rowsBefore} rows were there`;
    }
    const atMs = ctx.mark('data-destroyed').ms;
    ctx.log.info(`${p.fault}: ${detail}; restore point ${m.point.lsn} read ${((atMs - m.pointMs) / 1000).toFixed(3)} s before`);
    return { ...m, atMs, detail };
  },
  rollback: {
    description: (p) =>
      `restore the live database from Blob (newest base backup + archived WAL) to ${restoreToOf(p) === 'latest' ? 'the newest archived WAL' : 'the recorded LSN, exclusive'}, move the damaged nodes to the quarantine, rebuild the standby; resumes a restore cut short. The fault cannot be undone any other way`,
    restores: (p) =>
      `the service serves from a database restored to ${restoreToOf(p) === 'latest' ? 'the newest archived WAL' : 'the point before the fault'}, a healthy pair (primary, streaming standby) with WAL archiving running; or, when the archive has a gap, nothing replaced (the SEV1 finding names the segment)`,
    byHand: (p) =>
      `\`drill lab status\` shows the pair and the archive; \`drill recover\` resumes the restore from where it stopped; when it cannot, \`drill lab down\` then \`drill lab up\` gives a fresh pair (the lab's data is disposable, and lab down also drops the quarantine)${p.fault === 'lose-cluster' ? '' : `; the damaged ${p.table} stays in the quarantine folder`}. On a kubernetes target: \`kubectl get clusters.postgresql.cnpg.io -l drill.dev/restore-of=<cluster>\` shows the recovery Cluster, \`drill recover\` resumes the restore, and the damaged Cluster is left where it is for you to delete`,
    timeout: '20m',
    async holds(ctx, { selected }) {
      const gap = ctx.resultOf(restore)?.outcome.missingSegments ?? [];
      // Past a gap no restore reaches the point: the drill leaves the damaged database live rather than restore less.
      if (gap.length > 0) return { ok: true, detail: `nothing replaced: the WAL archive misses ${gap.join(', ')}` };
      return ctx.adapters.liveRestore.restoredAndWhole(selected.runId, ctx.signal);
    },
    async converge(ctx, { selected }) {
      const o = await ctx.adapters.liveRestore.restoreLive({
        runId: selected.runId,
        target: targetOf(ctx.params, selected.point),
        signal: ctx.signal,
        log: (l) => ctx.log.info(l),
      });
      if (!o.ok) throw new Error(`the restore did not complete: ${o.problem}${o.replaced ? '' : '; the live database was not replaced'}`);
      return `restored from ${o.backup?.folder ?? 'a base backup'} to ${o.reachedLsn}; damaged nodes in ${o.quarantine}`;
    },
  },
});

/** Null before the data is destroyed (`drill plan` selects before anything ran). */
type RestoreRequest = { runId: string; target: RestoreTarget } | null;

const restore: Action<Params, RestoreRequest, Restored, Needs> = action<RestoreRequest, Restored>({
  name: 'restore from Blob',
  description:
    "the runbook's recovery: the newest base backup before the restore point plus archived WAL, replayed to the point (or to the newest segment), checked, then made the service's database, the standby rebuilt from it",
  async select(ctx) {
    const d = ctx.resultOf(destroy);
    return d ? { runId: d.runId, target: targetOf(ctx.params, d.point) } : null;
  },
  describeTargets: (s) => [
    !s
      ? 'the live database, restored to the restore point recorded when the data is destroyed (latest: the newest archived WAL)'
      : `the live database, restored to ${s.target === 'latest' ? 'the newest archived WAL' : `${s.target.lsn} (exclusive)`}`,
  ],
  async run(ctx, s) {
    if (!s) throw new Error('the data was not destroyed: nothing to restore');
    const startedMs = ctx.mark('restore-started').ms;
    let servingMs: number | undefined;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(parseDuration(ctx.params.restoreTimeout))]);
    const outcome = await ctx.adapters.liveRestore.restoreLive({
      runId: s.runId,
      target: s.target,
      signal,
      onStep: (step, ms) => {
        const at = ctx.mark(`restore-${step}`).ms;
        if (step === 'repoint') servingMs = at;
        ctx.log.info(`restore: ${step} ${(ms / 1000).toFixed(2)} s`);
      },
      log: (l) => ctx.log.info(l),
    });
    // Cut short by SIGINT or a stop condition, the restore answers rather than throws: the run is aborted, not failed.
    if (!outcome.ok && ctx.signal.aborted) throw ctx.signal.reason;
    const endedMs = ctx.mark(outcome.ok ? 'restored' : 'restore-failed').ms;
    if (!outcome.ok) ctx.log.warn(`restore failed: ${outcome.problem}${outcome.replaced ? '' : '; the live database was not replaced'}`);
    return { outcome, startedMs, endedMs, ...(servingMs !== undefined ? { servingMs } : {}) };
  },
  rollback: { none: "the restore is the recovery; one cut short is finished by the rollback of 'destroy data'" },
});

/** Up to `n` writes acknowledged before `bound`, spread over the run, the newest among them, oldest first: what users will ask for. */
function ackedBefore(ctx: Ctx, bound: number, n: number): { token: string; ackMs: number }[] {
  const l = ctx.load?.ledger;
  if (!l) return [];
  const acked: number[] = [];
  for (let r = 0; r < l.count; r++) if (l.fateOf(r) === 'ok' && l.ackMs(r)! < bound) acked.push(r);
  acked.sort((a, b) => l.ackMs(a)! - l.ackMs(b)!);
  const step = Math.max(1, Math.floor(acked.length / n));
  const picked = new Set([...acked.filter((_, i) => i % step === 0).slice(-n + 1), ...acked.slice(-1)]);
  return [...picked].map((r) => ({ token: l.tokenOf(r), ackMs: l.ackMs(r)! }));
}

/**
 * Writes acknowledged before the fault that the restored data must hold: before the restore point, or before the
 * newest replayed commit. Null when a restore to the newest archived WAL cannot say how far it reached
 * (CloudNativePG reports no replay end): then the served writes must be a prefix of the ledger, with no hole.
 */
function mustBeBack(ctx: Ctx, d: Destroyed, o: LiveRestoreOutcome): { bound: number | null; writes: { token: string; ackMs: number }[] } {
  if (restoreToOf(ctx.params) !== 'latest') return { bound: d.pointMs, writes: ackedBefore(ctx, d.pointMs, 10) };
  if (!o.newestCommitAt) return { bound: null, writes: ackedBefore(ctx, d.pointMs, 10) };
  const bound = Math.min(d.pointMs, Date.parse(o.newestCommitAt) - (Date.now() - ctx.now()) - 500);
  return { bound, writes: ackedBefore(ctx, bound, 10) };
}

const fmtMs = (ms: number | undefined) => (ms === undefined ? 'not reached' : `${(ms / 1000).toFixed(2)} s`);

export default define({
  name: 'data-loss',
  description:
    'Destroy data on the live database under load (DROP TABLE, DELETE without WHERE, or the whole cluster lost); the runbook restores it from Blob to the point before, and users must be served their data again.',
  tier: 'critical',
  dataClass: 'database',
  validate(p, target) {
    const out: { path: string; message: string }[] = [];
    // lose-cluster on the lab kills disposable nodes; on Kubernetes it fences a real cluster, so it is guarded there too.
    const guarded = p.fault !== 'lose-cluster' || target.kind === 'kubernetes';
    if (guarded && !((target.kind === 'lab' || target.kind === 'kubernetes') && target.dataLoss))
      out.push({
        path: 'fault',
        message:
          p.fault === 'lose-cluster'
            ? 'fault lose-cluster fences every instance of the CloudNativePG cluster (its PostgreSQL stopped until the fence is lifted): the target must allow it with target.allowDataLoss: true and target.dataLossReason saying why'
            : `fault ${p.fault} destroys data on the live database: the target must allow it with target.allowDataLoss: true and target.dataLossReason saying why`,
      });
    if (p.fault !== 'lose-cluster' && p.restoreTo === 'latest')
      out.push({ path: 'restoreTo', message: `restoreTo: latest would replay the ${p.fault} too; use before-fault` });
    if (target.kind === 'kubernetes' && !target.database?.restore)
      out.push({
        path: 'fault',
        message: target.database
          ? 'the live restore needs target.database.restore (destinationPath, azureCredentials as Secret references, service): where the CloudNativePG cluster backs up to, and which Service to repoint'
          : 'the live restore needs target.database (a CloudNativePG cluster) with its restore settings (target.database.restore)',
      });
    if (target.kind === 'lab' && target.database?.provider === 'patroni')
      out.push({
        path: 'fault',
        message:
          'the live restore rebuilds the lab pair without Patroni: under target.database.provider: patroni it would fight Patroni for the primary; use provider: pg-promote',
      });
    return out;
  },
  async preflight(ctx) {
    const f = await ctx.adapters.liveRestore.preflight({
      table: ctx.params.fault === 'lose-cluster' ? undefined : ctx.params.table,
      signal: ctx.signal,
    });
    return f.problems.map((message) => ({ path: /\btable\b/.test(message) ? 'params.table' : 'target', message }));
  },
  steadyState: [
    standbyStreaming(),
    probe('a base backup and the WAL archive to restore from', async (ctx) => {
      const f = await ctx.adapters.liveRestore.preflight({ table: ctx.params.table, signal: ctx.signal });
      if (f.problems.length > 0) return { ok: false, detail: f.problems.join('; ') };
      return {
        ok: true,
        detail: `base backup ${f.backup?.folder} (taken ${f.backup?.takenAt}), archive lag ${f.archiveLagSeconds ?? '?'} s`,
      };
    }),
    probe('the load writes with tokens', async (ctx) => {
      const acked = ctx.load?.ledger?.counts().ok ?? 0;
      return {
        ok: acked > 0,
        detail:
          acked > 0
            ? `${acked} writes acknowledged in the baseline`
            : 'no request of the load carries {{token}}: no write ledger to judge the restore by',
      };
    }),
  ],
  actions: [destroy, restore],
  recovery: {
    description:
      'users are served correctly again: the service was repointed at the restored database, a write was acknowledged after that, and the service answers writes acknowledged before the fault with their orders; counted from that first write, since the standby is rebuilt after the repoint while users are already served',
    pollMs: 250,
    until: probe('users served their data again', async (ctx) => {
      const d = ctx.resultOf(destroy);
      const r = ctx.resultOf(restore);
      if (!d || !r) return { ok: false, detail: 'the restore has not run' };
      if (!r.outcome.ok) return { ok: false, final: true, detail: `the restore did not complete: ${r.outcome.problem}` };
      // Users are served from the repoint on; the standby built after it is not part of their outage.
      const servedFrom = r.servingMs ?? r.endedMs;
      const writes = ctx.load?.ledger?.acknowledgedSince(servedFrom) ?? 0;
      const firstAck = ctx.load?.ledger?.firstAckSince(servedFrom) ?? null;
      if (writes === 0 || firstAck === null) return { ok: false, detail: 'no write acknowledged since the service was repointed' };
      const url = ctx.load?.serviceUrl;
      if (!url) return { ok: false, detail: 'no service URL to ask' };
      const { bound, writes: asked } = mustBeBack(ctx, d, r.outcome);
      const served: boolean[] = [];
      const missing: string[] = [];
      for (const w of asked) {
        const res = await fetch(`${url}/orders?token=${encodeURIComponent(w.token)}`, {
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(2000)]),
        });
        const body = res.ok ? ((await res.json()) as unknown[]) : [];
        served.push(body.length === 1);
        if (body.length !== 1) missing.push(`${w.token} (${res.status})`);
      }
      const since = `${writes} writes acknowledged since the service was repointed, the first ${((firstAck - servedFrom) / 1000).toFixed(2)} s after it`;
      // The restored rows have not changed since the repoint: what this poll saw held from the first write after it.
      if (bound !== null)
        return missing.length === 0
          ? {
              ok: true,
              detail: `${asked.length} orders acknowledged before the fault served by the service; ${since}`,
              heldSinceMs: firstAck,
            }
          : {
              ok: false,
              detail: `the service does not serve ${missing.length} of ${asked.length} orders acknowledged before the fault: ${missing.slice(0, 3).join(', ')}`,
            };
      // How far the restore reached is unknown: what it holds must be everything up to some write, and not nothing.
      // Acknowledgements can arrive out of commit order by the time a commit takes: a write acknowledged within a
      // second of the newest served one may be missing without a hole.
      const reach = served.lastIndexOf(true);
      const holes = asked.slice(0, reach + 1).filter((w, i) => !served[i] && w.ackMs < asked[reach]!.ackMs - 1000);
      if (reach < 0) return { ok: false, detail: `the service serves none of ${asked.length} orders acknowledged before the fault` };
      if (holes.length > 0)
        return {
          ok: false,
          detail: `the service serves orders acknowledged before the fault with ${holes.length} older ones missing: ${holes
            .slice(0, 3)
            .map((w) => w.token)
            .join(', ')}`,
        };
      return {
        ok: true,
        detail: `orders acknowledged before the fault served up to the one acknowledged ${((d.pointMs - asked[reach]!.ackMs) / 1000).toFixed(2)} s before it, none older missing (${reach + 1} of ${asked.length} asked; the restore does not say how far it replayed, the ledger read-back counts what is lost); ${since}`,
        heldSinceMs: firstAck,
      };
    }),
  },
  verify: [
    probe('WAL archive complete up to the restore target', async (ctx) => {
      const o = ctx.resultOf(restore)?.outcome;
      if (!o) return { ok: false, detail: 'the restore did not run' };
      if (o.missingSegments.length === 0) return { ok: true, detail: `no segment missing; replayed to ${o.reachedLsn}` };
      return {
        ok: false,
        severity: 'SEV1',
        detail: `the WAL archive misses segment${o.missingSegments.length === 1 ? '' : 's'} ${o.missingSegments.join(', ')}: no point-in-time restore can pass it, so the live database was ${o.replaced ? 'replaced' : 'not replaced'} and still holds the damage`,
      };
    }),
    probe('restore breakdown', async (ctx) => {
      const r = ctx.resultOf(restore);
      if (!r) return { ok: false, detail: 'the restore did not run' };
      const o = r.outcome;
      const t = o.timings;
      const b = o.backup
        ? `backup ${o.backup.folder} (taken ${o.backup.takenAt}, ${(o.backup.bytes / 1e6).toFixed(1)} MB)`
        : 'no backup used';
      return {
        ok: o.ok,
        detail: `${o.ok ? '' : `${o.problem}; `}${b}; ${ctx.adapters.liveRestore.steps.map((s) => `${s.label} ${fmtMs(t[s.name])}`).join(', ')}; total ${fmtMs(r.endedMs - r.startedMs)}; newest commit replayed ${o.newestCommitAt ?? 'unknown'}; damaged cluster kept in ${o.quarantine ?? 'nowhere (not moved)'}`,
      };
    }),
    {
      ...ledgerReadback<Params>('write ledger read back from the restored database', (ctx) => {
        const d = ctx.resultOf(destroy);
        if (!d) return undefined;
        const pit = restoreToOf(ctx.params) === 'before-fault';
        return {
          atMs: d.pointMs,
          what: `the restore point read just before the ${ctx.params.fault} (mark restore-point)`,
          ...(pit ? { restorePointMs: d.pointMs } : {}),
        };
      }),
      skip: (ctx: ScenarioContext<Params>) =>
        ctx.resultOf(restore)?.outcome.ok
          ? null
          : 'the restore did not complete: the live database holds the damage, nothing to judge the ledger by',
    },
    probe('the restored pair is whole', async (ctx) => {
      const d = ctx.resultOf(destroy);
      if (!d) return { ok: false, detail: 'the data was not destroyed' };
      const h = await (ctx as Ctx).adapters.liveRestore.restoredAndWhole(d.runId, ctx.signal);
      return { ok: h.ok === true, detail: h.detail };
    }),
  ],
});
