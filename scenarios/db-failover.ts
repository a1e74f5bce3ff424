import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { durationParam } from '../lib/scenario/params.ts';
import { formatDuration, parseDuration } from '../lib/config/duration.ts';
import { scenario, type HoldResult } from '../lib/scenario/define.ts';
import type { DatabaseAdapter } from '../lib/adapters/types.ts';
import { isFailoverTimeout, type FailoverResult, type PgNode } from '../lib/adapters/postgres/failover/types.ts';
import { replayLagBelow, standbyStreaming } from '../lib/scenario/probes/replication.ts';
import {
  findWalSenders,
  resumeSenders,
  resumeStoppedSenders,
  resumeWhenSignalled,
  stopSenders,
  stoppedWalSenders,
  type StalledSender,
} from '../lib/adapters/postgres/stall.ts';
import { ledgerReadback } from '../lib/scenario/probes/ledger-readback.ts';
import { UserError } from '../lib/errors.ts';

const params = z
  .object({
    /** sigkill: the host dies (postmaster and every child at once); immediate: `pg_ctl stop -m immediate`. */
    kill: z.enum(['sigkill', 'immediate']).default('sigkill'),
    /** Freeze the primary's walsenders this long before the kill, so an async standby falls behind (0s: no stall). */
    replicationStall: durationParam('0s, 500ms or 2s').default('0s'),
    /** Steady state: every streaming standby replays within this. */
    maxReplayLag: durationParam('5s').default('5s'),
    /** Longest the provider may take to promote and accept a write. */
    failoverTimeout: durationParam('60s').default('60s'),
  })
  .strict();

interface Stall {
  senders: StalledSender[];
  primary: PgNode;
  /** Postmaster PID of the primary, read with the senders so the kill right after the stall needs no second look. */
  pid: number | null;
}
interface Stalled extends Stall {
  stalledMs: number;
  /** Run-relative ms the walsenders were stopped. */
  startedMs: number;
}
interface Killed {
  node: PgNode;
  /** Null when the node is no process of this machine (a pod). */
  pid: number | null;
  children: number;
  /** Run-relative ms of the kill: the fault time RPO is measured from. */
  atMs: number;
}
type FailedOver = FailoverResult & { writableMs: number; settings: Record<string, unknown> };
/** The provider's time limit passed without a writable primary: the system missed its RTO, the drill goes on to verify and roll back. */
type TimedOut = { timedOut: string; settings: Record<string, unknown> };
const failedOver = (r: FailedOver | TimedOut | undefined): FailedOver | undefined => (r && 'newPrimary' in r ? r : undefined);

async function primaryOf(db: DatabaseAdapter, signal: AbortSignal): Promise<PgNode> {
  const topo = await db.provider.topology(signal);
  if (!topo.primary) {
    throw new UserError(`${db.where} has no single primary`, {
      untouched: 'nothing was stalled or killed',
      next: 'check `drill lab status`; a standby must follow one primary before a failover drill',
    });
  }
  return topo.primary;
}

/** The condition both database rollbacks end in, in the SRE's words. */
const PAIR_WHOLE = 'one primary that takes writes through the endpoint, every other node streaming from it, no walsender stopped';

/** Walsenders stopped (state T) on the nodes this machine runs; a pod's are out of reach (and a stall cannot run there). */
async function stoppedSenders(db: DatabaseAdapter): Promise<string[]> {
  const out: string[] = [];
  for (const n of await db.nodes()) {
    if (!n.pid) continue;
    for (const s of await stoppedWalSenders(n.pid)) out.push(`walsender pid ${s.pid} on ${n.name}`);
  }
  return out;
}

async function resumeStoppedOnEveryNode(db: DatabaseAdapter): Promise<number> {
  let n = 0;
  for (const node of await db.nodes()) if (node.pid) n += await resumeStoppedSenders(node.pid);
  return n;
}

async function sendersRunning(db: DatabaseAdapter): Promise<HoldResult> {
  const stopped = await stoppedSenders(db);
  return stopped.length === 0
    ? { ok: true, detail: 'no walsender stopped' }
    : { ok: false, detail: `${stopped.join(', ')} stopped (state T): the standby receives no WAL` };
}

/** Read-only: the pair's condition (PAIR_WHOLE), and what breaks it. */
async function pairWhole(db: DatabaseAdapter, signal: AbortSignal): Promise<HoldResult> {
  const topo = await db.provider.topology(signal);
  if (!topo.primary) {
    const nodes = topo.standbys.map((s) => `${s.name} ${s.role === 'standby' ? 'a standby' : 'down or not a standby'}`);
    return { ok: false, detail: `no primary (${nodes.join(', ') || 'no node answers'})` };
  }
  const problems: string[] = [];
  const writes = db.takesWrites ? await db.takesWrites(signal) : null;
  if (writes && !writes.ok) problems.push(writes.detail);
  if (topo.standbys.length === 0) problems.push('no standby');
  for (const s of topo.standbys)
    if (!s.replication.streaming)
      problems.push(`${s.name} does not stream from ${topo.primary.name}${s.role === 'standby' ? '' : ' (down, or not a standby)'}`);
  const stopped = await sendersRunning(db);
  if (!stopped.ok) problems.push(stopped.detail);
  if (problems.length > 0) return { ok: false, detail: `${topo.primary.name} primary; ${problems.join('; ')}` };
  const standbys = topo.standbys.map((s) => `${s.name} streaming (${s.replication.mode})`).join(', ');
  return { ok: true, detail: `${topo.primary.name} primary${writes ? ' and takes writes' : ''}, ${standbys}` };
}

/** How long a standby whose primary came back may take to reconnect by itself before it is rejoined. */
const RECONNECT_MS = 20_000;

/**
 * Does what the pair needs to be whole again from the state found, whatever step the run died at: nothing when
 * the kill never ran; the old primary restarted as the primary when no standby was promoted; the old primary
 * rejoined as a standby after a failover (a rejoin cut halfway is started over by the provider: stop, rewind or
 * copy, start); a standby that does not follow rejoined. Each step is safe to repeat.
 */
async function convergePair(db: DatabaseAdapter, oldPrimary: PgNode, signal: AbortSignal, budgetMs: number): Promise<string> {
  const deadline = performance.now() + budgetMs;
  const budget = () => ({ timeoutMs: Math.max(5000, Math.floor(deadline - performance.now())), signal });
  const did: string[] = [];
  // The stall's to undo, but no standby streams through a stopped walsender.
  const resumed = await resumeStoppedOnEveryNode(db);
  if (resumed > 0) did.push(`SIGCONT to ${resumed} stopped walsender${resumed === 1 ? '' : 's'}`);
  let topo = await db.provider.topology(signal);
  if (!topo.primary) {
    // Nothing was promoted: the old primary, restarted, is the whole database again and loses nothing.
    did.push(await db.restartAsPrimary(oldPrimary, budget()));
    topo = await db.provider.topology(signal);
    if (!topo.primary) throw new Error(`${did.join('; ')}, but there is still no primary`);
  }
  const primary = topo.primary.name;
  // A standby that is up waits for its primary to come back and reconnects by itself; one that is down or is no
  // standby (the old primary after a failover) is rejoined at once.
  const t0 = performance.now();
  while (topo.standbys.some((s) => s.role === 'standby' && !s.replication.streaming) && performance.now() - t0 < RECONNECT_MS) {
    await sleep(500, undefined, { signal });
    topo = await db.provider.topology(signal);
  }
  for (const s of topo.standbys.filter((x) => !x.replication.streaming)) {
    did.push(await db.provider.rejoin(s.name === oldPrimary.name ? oldPrimary : s, budget()));
  }
  return did.length > 0 ? did.join('; ') : `nothing to do: ${primary} is the primary and every standby streams`;
}

const nodeConn = (db: DatabaseAdapter, n: PgNode) => ({ host: n.host, port: n.port, user: db.admin.user, database: db.admin.database });

const { probe, action, define } = scenario({ params, requires: ['database', 'load'] });

const stallReplication = action<Stall, Stalled>({
  name: 'stall replication',
  description: "SIGSTOP the primary's walsenders for replicationStall, so WAL stops reaching the standby (none when 0s)",
  async select(ctx) {
    const db = ctx.adapters.database;
    const primary = await primaryOf(db, ctx.signal);
    const pid = (await db.nodes()).find((n) => n.name === primary.name)?.pid ?? null;
    if (parseDuration(ctx.params.replicationStall) === 0) return { senders: [], primary, pid };
    return { senders: await findWalSenders(nodeConn(db, primary)), primary, pid };
  },
  describeTargets: (s) => s.senders.map((w) => `walsender pid ${w.pid} on ${s.primary.name} (to ${w.standby})`),
  async run(ctx, s) {
    const ms = parseDuration(ctx.params.replicationStall);
    const startedMs = ctx.now();
    if (ms === 0) return { stalledMs: 0, primary: s.primary, pid: s.pid, startedMs, senders: [] };
    await stopSenders(s.senders);
    ctx.log.info(`replication stalled: ${s.senders.map((w) => w.pid).join(', ')} stopped for ${formatDuration(ms)}`);
    // They stay stopped through the kill: resumed before it, the standby would catch up in microseconds.
    await sleep(ms, undefined, { signal: ctx.signal });
    return { stalledMs: ms, primary: s.primary, pid: s.pid, startedMs, senders: s.senders };
  },
  rollback: {
    description: 'SIGCONT the walsenders the stall stopped that still run (none once the primary was killed), and any other left stopped',
    restores: 'no walsender stopped (state T) on any node: WAL flows to the standby',
    byHand: 'find the stopped walsender (`ps -o pid,stat,args -C postgres`, STAT T) and send it SIGCONT (`kill -CONT PID`)',
    timeout: '10s',
    holds: (ctx) => sendersRunning(ctx.adapters.database),
    async converge(ctx, { selected }) {
      const journaled = await resumeSenders(selected.senders);
      const others = await resumeStoppedOnEveryNode(ctx.adapters.database);
      return `SIGCONT to ${journaled} of the ${selected.senders.length} walsenders the stall stopped${others > journaled ? ` and ${others - journaled} more found stopped` : ''}`;
    },
  },
});

const killPrimary = action<{ node: PgNode; pid: number | null }, Killed>({
  name: 'kill primary',
  description:
    "SIGKILL the primary's postmaster and all its children at once, as when its host dies (kill: immediate = pg_ctl stop -m immediate)",
  async select(ctx) {
    // Right after a stall the primary is the one the stall froze: looking again would only stretch the stall.
    const stall = ctx.resultOf(stallReplication);
    if (stall && stall.stalledMs > 0) return { node: stall.primary, pid: stall.pid };
    const db = ctx.adapters.database;
    const primary = await primaryOf(db, ctx.signal);
    const view = (await db.nodes()).find((n) => n.name === primary.name);
    return { node: primary, pid: view?.pid ?? null };
  },
  describeTargets: (s) => [`${s.node.name} (${s.node.host}:${s.node.port}${s.pid ? `, postmaster pid ${s.pid}` : ''})`],
  async run(ctx, s) {
    const stall = ctx.resultOf(stallReplication);
    const atMs = ctx.mark('primary-killed').ms;
    const crash = ctx.adapters.database.crash(s.node, ctx.params.kill === 'sigkill' ? 'kill' : 'immediate');
    crash.catch(() => undefined); // awaited below; no unhandled rejection while the senders are watched
    // An immediate shutdown SIGQUITs every child; a stalled walsender must wake to obey it (see resumeWhenSignalled).
    if (ctx.params.kill === 'immediate' && stall?.senders.length) await resumeWhenSignalled(stall.senders, 3, { timeoutMs: 10_000 });
    const r = await crash;
    const stalled = stall && stall.stalledMs > 0 ? `, ${((atMs - stall.startedMs) / 1000).toFixed(2)} s after replication stalled` : '';
    ctx.log.info(
      `${s.node.name} ${r.detail ?? (ctx.params.kill === 'sigkill' ? `killed: postmaster ${r.pid} and ${r.children.length} children` : `stopped -m immediate (postmaster ${r.pid})`)}${stalled}`,
    );
    return { node: s.node, pid: r.pid || null, children: r.children.length, atMs };
  },
  rollback: {
    description:
      'from whatever state the pair is in: restart the old primary as the primary if no standby was promoted; bring every node that does not stream back as a standby of the primary (pg_rewind, or a fresh base backup; on CloudNativePG the operator does it) and wait until it streams',
    restores: PAIR_WHOLE,
    byHand:
      'make one node the primary that takes writes through the endpoint and rebuild the other as its standby: on the lab `drill lab status` lists what is broken and `drill lab down` then `drill lab up` rebuilds the pair around the primary lab.json names; with Patroni `patronictl list` and `patronictl reinit`; on CloudNativePG `kubectl cnpg status`',
    timeout: '5m',
    holds: (ctx) => pairWhole(ctx.adapters.database, ctx.signal),
    converge: (ctx, { selected }) => convergePair(ctx.adapters.database, selected.node, ctx.signal, 280_000),
  },
});

const failOver = action<{ provider: string; candidates: string[]; plan: string }, FailedOver | TimedOut>({
  name: 'fail over',
  description: 'the provider promotes a standby and points the stable endpoint at it; done once a write commits through the endpoint',
  async select(ctx) {
    const { provider } = ctx.adapters.database;
    const topo = await provider.topology(ctx.signal);
    const candidates = topo.standbys.filter((s) => s.role === 'standby').map((s) => s.name);
    return { provider: provider.kind, candidates, plan: provider.failoverPlan(candidates) };
  },
  describeTargets: (s) => [s.plan],
  async run(ctx) {
    const { provider } = ctx.adapters.database;
    const r = await provider
      .failover({ timeoutMs: parseDuration(ctx.params.failoverTimeout), signal: ctx.signal })
      .catch(async (e: unknown) => {
        if (!isFailoverTimeout(e)) throw e;
        ctx.log.warn(`no failover within failoverTimeout ${ctx.params.failoverTimeout}: ${e.message}`);
        return { timedOut: e.message, settings: await provider.settings().catch((x: Error) => ({ unreadable: x.message })) };
      });
    if ('timedOut' in r) return r;
    const writableMs = ctx.mark('failover-writable').ms;
    ctx.log.info(`failed over to ${r.newPrimary.name}: ${r.detail}`);
    // What drives failover time (Patroni ttl/loop_wait, pg-promote's polling), journaled with the result; read after the fact so it costs the failover nothing.
    const settings = await provider.settings().catch((e: Error) => ({ unreadable: e.message }));
    ctx.log.info(`${provider.kind} settings: ${JSON.stringify(settings)}`);
    return { ...r, writableMs, settings };
  },
  rollback: { none: "a failover is not undone by failing back: the kill's rollback makes the old primary a standby of the new one" },
});

export default define({
  name: 'db-failover',
  description:
    'Kill the PostgreSQL primary the way its host dies, under write load; the standby is promoted, the endpoint follows, and every acknowledged write is checked on the new primary.',
  tier: 'critical',
  dataClass: 'database',
  validate(p, target) {
    if (target.kind !== 'kubernetes') return [];
    // On Kubernetes the primary is a pod: the harness can delete it, not reach its processes.
    const problems: { path: string; message: string }[] = [];
    if (parseDuration(p.replicationStall) > 0) {
      problems.push({
        path: 'replicationStall',
        message: `replicationStall ${p.replicationStall} needs SIGSTOP on the primary's walsender processes, which the harness cannot send into a pod on a Kubernetes target; use 0s`,
      });
    }
    if (p.kill === 'immediate') {
      problems.push({
        path: 'kill',
        message:
          'kill: immediate runs pg_ctl stop -m immediate next to the server, which the harness cannot do inside a pod; on Kubernetes the kill deletes the primary pod with grace period 0: use kill: sigkill',
      });
    }
    return problems;
  },

  steadyState: [
    standbyStreaming(),
    replayLagBelow((ctx) => parseDuration(ctx.params.maxReplayLag)),
    probe('the load writes with tokens', async (ctx) => {
      const ledger = ctx.load?.ledger;
      const acked = ledger ? ledger.counts().ok : 0;
      return {
        ok: acked > 0,
        detail:
          ledger && ledger.count > 0
            ? `${acked} of ${ledger.count} writes acknowledged in the baseline`
            : 'no request of the load carries {{token}}: without a write ledger there is no RPO to measure',
      };
    }),
  ],

  actions: [stallReplication, killPrimary, failOver],

  recovery: {
    description: 'the new primary takes writes: a write of the load was acknowledged after the failover',
    pollMs: 100,
    until: probe('writes acknowledged on the new primary', async (ctx) => {
      const r = ctx.resultOf(failOver);
      if (r && 'timedOut' in r) return { ok: false, final: true, detail: `the failover did not complete: ${r.timedOut}` };
      const f = failedOver(r);
      if (!f) return { ok: false, detail: 'no failover yet' };
      const n = ctx.load?.ledger?.acknowledgedSince(f.writableMs) ?? 0;
      return { ok: n > 0, detail: `${n} writes acknowledged since ${f.newPrimary.name} took writes` };
    }),
  },

  verify: [
    ledgerReadback('write ledger read back from the new primary', (ctx) => {
      const killed = ctx.resultOf(killPrimary);
      return killed && { atMs: killed.atMs, what: 'the kill of the primary (mark primary-killed)' };
    }),
    probe('one primary, the promoted one', async (ctx) => {
      const f = failedOver(ctx.resultOf(failOver));
      const topo = await ctx.adapters.database.provider.topology(ctx.signal);
      const ok = f !== undefined && topo.primary?.name === f.newPrimary.name;
      return { ok, detail: `primary ${topo.primary?.name ?? 'none (or more than one)'}; promoted ${f?.newPrimary.name ?? 'nothing'}` };
    }),
  ],
});
