import { z } from 'zod';
import { durationParam } from '../lib/scenario/params.ts';
import { parseDuration, formatDuration } from '../lib/config/duration.ts';
import { scenario } from '../lib/scenario/define.ts';
import type { Replica } from '../lib/adapters/types.ts';
import { UserError } from '../lib/errors.ts';
import { matchesSelector, parseSelector, type Requirement } from '../lib/adapters/selector.ts';
import { TEMPLATE_LABELS } from '../lib/lab/daemon/supervisor.ts';
import { ledgerReadback } from '../lib/scenario/probes/ledger-readback.ts';

const params = z
  .object({
    /** Label selector, as kubectl takes it: `app=orders,tier=web`. */
    selector: z.string().min(1).default('app=orders'),
    /** How many replicas to kill: a number, or a share of the matching replicas (`50%`, rounded up). */
    count: z
      .union([z.number().int().positive(), z.string().regex(/^([1-9]\d?|100)%$/, 'expected a percentage from 1% to 100%')])
      .default(1),
    /** Which replicas: random (the default; a node dies where it dies) or the oldest first. */
    mode: z.enum(['random', 'oldest']).default('random'),
    /** 0s kills at once (SIGKILL, grace period 0); longer sends SIGTERM first, then SIGKILL. */
    gracePeriod: durationParam('0s, 500ms or 30s').default('0s'),
  })
  .strict();
type Params = z.output<typeof params>;

interface Killed {
  name: string;
  pid?: number;
  at: string;
  /** Run-relative ms the kill was sent: the fault time the write ledger is judged from. */
  atMs?: number;
}

/**
 * A replacement is a replica that came up after the kill. The harness's own sighting decides where it has one:
 * a pod's startTime has whole seconds, so it cannot tell a pod started 300 ms before the kill from one started after.
 */
function startedAfter(r: Replica, killedAtMs: number): boolean {
  if (r.seenAt) return Date.parse(r.seenAt) >= killedAtMs;
  return Date.parse(r.startedAt) >= killedAtMs - (r.pid === undefined ? 1000 : 0);
}

/** When a replacement served, measured on the harness's clock where it could watch; else from the start time. */
function upAfter(r: Replica, killedAtMs: number): string {
  const since = (iso: string) => formatDuration(Math.max(0, Date.parse(iso) - killedAtMs));
  if (r.readyAt) return `ready ${since(r.readyAt)} after the kill, at ${r.readyAt}`;
  return `started ${since(r.startedAt)} after the kill, at ${r.startedAt}${r.pid === undefined ? ' (whole-second start time)' : ''}`;
}

/** Fisher-Yates: every order equally likely, as a node failure does not prefer a replica. */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function howMany(count: Params['count'], matching: number): number {
  return typeof count === 'number' ? count : Math.max(1, Math.ceil((matching * Number(count.slice(0, -1))) / 100));
}

const { probe, action, define } = scenario({ params, requires: ['replicas', 'load'] });

const killReplicas = action<Replica[], Killed[]>({
  name: 'kill replicas',
  description: 'SIGKILL the selected replicas (grace period 0), as when their node dies',
  async select(ctx) {
    const { selector, count, mode } = ctx.params;
    const matching = (await ctx.adapters.replicas.list(selector)).filter((r) => r.ready);
    const n = howMany(count, matching.length);
    if (matching.length === 0) {
      throw new UserError(`no ready replica matches selector "${selector}"`, {
        untouched: 'nothing was killed',
        next: 'check the selector against `drill lab status` (or the pods of the target) and fix scenarios[].params.selector',
      });
    }
    if (n > matching.length) {
      throw new UserError(`selector "${selector}" matches ${matching.length} ready replicas, fewer than the ${n} to kill`, {
        untouched: 'nothing was killed',
        next: 'lower scenarios[].params.count or use a percentage',
      });
    }
    const ordered = mode === 'oldest' ? [...matching].sort((a, b) => a.startedAt.localeCompare(b.startedAt)) : shuffled(matching);
    return ordered.slice(0, n);
  },
  describeTargets: (selected) => selected.map((r) => (r.pid ? `${r.name} (pid ${r.pid})` : r.name)),
  async run(ctx, selected) {
    const gracePeriodMs = parseDuration(ctx.params.gracePeriod);
    // All at once, as when the node under them dies: one by one would let the first come back first.
    const results = await Promise.allSettled(
      selected.map(async (r): Promise<Killed> => {
        // Stamped when the kill is sent: the workload may start the replacement before the delete returns.
        const at = new Date().toISOString();
        const atMs = ctx.now();
        await ctx.adapters.replicas.kill(r, { gracePeriodMs });
        ctx.log.info(`killed ${r.name}${r.pid ? ` (pid ${r.pid})` : ''}`);
        return { name: r.name, pid: r.pid, at, atMs };
      }),
    );
    const failed = results.flatMap((x, i) => (x.status === 'rejected' ? [`${selected[i]!.name}: ${(x.reason as Error).message}`] : []));
    if (failed.length > 0) throw new Error(`could not kill ${failed.join('; ')}`);
    return results.map((x) => (x as PromiseFulfilledResult<Killed>).value);
  },
  rollback: {
    description: 'start what is missing of the workload (the lab supervisor; on Kubernetes its controller) and wait until all are ready',
    restores: 'the workload runs its desired replica count, every replica ready',
    byHand: (p) =>
      `look at the replicas matching ${p.selector} (\`drill lab status\`, or \`kubectl get pods -l ${p.selector}\` and the Deployment's events) and why they do not become ready`,
    timeout: '2m',
    async holds(ctx) {
      const s = await ctx.adapters.replicas.status(ctx.params.selector);
      return { ok: s.desired > 0 && s.ready >= s.desired, detail: `${s.ready}/${s.desired} replicas of ${s.owner} ready` };
    },
    async converge(ctx) {
      const before = await ctx.adapters.replicas.status(ctx.params.selector);
      await ctx.adapters.replicas.ensureDesired(ctx.params.selector, { timeoutMs: 115_000, signal: ctx.signal });
      return `${before.desired - before.ready} of ${before.desired} were missing or not ready; started what was missing and waited`;
    },
  },
});

export default define({
  name: 'pod-kill',
  description:
    'Kill replicas of the service the way a node failure does; the workload must replace them while the service keeps meeting its SLOs.',
  tier: 'critical',
  dataClass: 'database',

  validate(p, target) {
    const problems: { path: string; message: string }[] = [];
    let requirements: Requirement[] | null = null;
    try {
      requirements = parseSelector(p.selector);
    } catch (e) {
      problems.push({ path: 'selector', message: (e as Error).message });
    }
    if (target.kind !== 'lab') return problems;
    // The lab's replicas all carry the same labels, so a selector that misses them is known to miss before anything runs.
    if (requirements && !matchesSelector({ ...TEMPLATE_LABELS }, requirements)) {
      const labels = Object.entries(TEMPLATE_LABELS)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      problems.push({
        path: 'selector',
        message: `"${p.selector}" matches no replica of the lab, whose replicas are labelled ${labels}; use e.g. app=orders`,
      });
    }
    if (typeof p.count === 'number' && p.count > target.replicas) {
      problems.push({
        path: 'count',
        message: `cannot kill ${p.count} replicas: the lab target runs ${target.replicas}; use a count up to ${target.replicas} or a percentage`,
      });
    }
    return problems;
  },

  steadyState: [
    probe('every replica ready', async (ctx) => {
      const s = await ctx.adapters.replicas.status(ctx.params.selector);
      return { ok: s.desired > 0 && s.ready >= s.desired, detail: `${s.ready}/${s.desired} replicas of ${s.owner} ready` };
    }),
  ],

  actions: [killReplicas],

  recovery: {
    description: 'every killed replica has been replaced and the workload is back at its desired count, all ready',
    pollMs: 100,
    until: probe('replacements ready', async (ctx) => {
      const killed = ctx.resultOf(killReplicas) ?? [];
      const s = await ctx.adapters.replicas.status(ctx.params.selector);
      const gone = new Set(killed.map((k) => k.name));
      const stillListed = s.replicas.filter((r) => gone.has(r.name) && r.ready).map((r) => r.name);
      const ok = s.ready >= s.desired && stillListed.length === 0;
      return {
        ok,
        detail: `${s.ready}/${s.desired} ready${stillListed.length ? `; killed still listed ready: ${stillListed.join(', ')}` : ''}`,
      };
    }),
  },

  verify: [
    probe('killed replicas were replaced by new ones', async (ctx) => {
      const killed = ctx.resultOf(killReplicas) ?? [];
      const s = await ctx.adapters.replicas.status(ctx.params.selector);
      const killedAt = Math.min(...killed.map((k) => Date.parse(k.at)));
      const fresh = s.replicas.filter((r) => r.ready && startedAfter(r, killedAt));
      const ok = fresh.length >= killed.length && s.ready >= s.desired;
      const replaced = fresh.map((r) => `${r.name} (${upAfter(r, killedAt)})`);
      const when = killed.map((k) => `${k.name} at ${k.at}`).join(', ');
      return { ok, detail: `killed ${when || 'none'}; replacements ${replaced.join(', ') || 'none'}; ${s.ready}/${s.desired} ready` };
    }),
    // A replica killed mid-request must not take acknowledged writes with it (a service that answers before
    // it commits would): where the load writes with tokens and the target names its database, read them back.
    ledgerReadback(
      'acknowledged writes survived the kill',
      (ctx) => {
        const killed = ctx.resultOf(killReplicas) ?? [];
        const first = Math.min(...killed.map((k) => k.atMs ?? Infinity));
        return Number.isFinite(first) ? { atMs: first, what: 'the first kill sent' } : undefined;
      },
      { optional: true },
    ),
  ],
});
