import { z } from 'zod';
import { durationParam } from '../lib/scenario/params.ts';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatDuration, parseDuration } from '../lib/config/duration.ts';
import { scenario, type ScenarioContext } from '../lib/scenario/define.ts';
import { replicaFloorProbe } from '../lib/scenario/probes/replica-floor.ts';
import type { DeploymentRevision, KubeDeployments, RollbackResult } from '../lib/adapters/kubernetes/types.ts';
import { UserError } from '../lib/errors.ts';

const duration = (fallback: string) => durationParam('90s or 5m', { positive: true }).default(fallback);

const params = z
  .object({
    /** The Deployment to roll back (`kubectl rollout undo deployment/<this>`). */
    deployment: z.string().min(1),
    /** Namespace of the Deployment; default the target's. Must be in the target's allowlist. */
    namespace: z.string().min(1).optional(),
    /** Revision to go back to; 0 = the one before the current, as `rollout undo` without --to-revision. */
    toRevision: z.number().int().min(0).default(0),
    /** `api`: the Deployment's template is patched the way kubectl does it. `helm`: `helm rollback` (needs helm on PATH). */
    via: z.enum(['api', 'helm']).default('api'),
    /** Helm release name (via: helm); default the Deployment's name. */
    release: z.string().min(1).optional(),
    /** Longest wait for the rollout to complete before the drill counts it as not recovered. */
    rolloutTimeout: duration('5m'),
    /** Path on the service that names the version serving (its body must contain the image tag), e.g. /version. */
    versionPath: z.string().startsWith('/').optional(),
    /** Consecutive answers naming the previous version before it counts as serving. */
    versionChecks: z.number().int().min(1).max(100).default(10),
    /** Roll forward again to the revision the drill found, as the drill's own rollback. */
    restore: z.boolean().default(true),
    /** Steady state also checks the Deployment and its HPA against the drill's `policy.replicas`. */
    replicaFloor: z
      .boolean({ error: "expected true or false: the numbers (min, max, cpu, memory) belong in the drill's policy.replicas" })
      .default(false),
  })
  .strict();
type Params = z.output<typeof params>;

interface Selected {
  via: 'api' | 'helm';
  deployment: string;
  namespace: string;
  from: DeploymentRevision;
  to: DeploymentRevision;
  /** Helm: the release revision current before the drill, for rolling forward again. */
  helmRevision?: number;
}

interface RolledBack extends RollbackResult {
  /** ISO time the rollout was complete (every replica on the old template and available), or null if it was not in time. */
  rolledOutAt: string | null;
  rolloutSeconds: number | null;
}

type Ctx = ScenarioContext<Params, 'kubernetes'>;

function deploymentsOf(ctx: Ctx): KubeDeployments {
  return ctx.adapters.kube.deployments(ctx.params.namespace);
}

/** The image tags of a revision: what the service's version answer must contain. */
function tagsOf(r: DeploymentRevision): string[] {
  return r.images.map((i) => i.slice(i.lastIndexOf(':') + 1)).filter(Boolean);
}

function describe(r: DeploymentRevision): string {
  return `revision ${r.revision} (${r.images.join(', ')})`;
}

/** helm on PATH, as a shell would find it. */
export function findHelm(path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(':').filter(Boolean)) {
    const f = join(dir, 'helm');
    try {
      if (existsSync(f) && statSync(f).isFile() && (statSync(f).mode & 0o111) !== 0) return f;
    } catch {
      // unreadable PATH entries are skipped, as the shell does
    }
  }
  return null;
}

function helmOrRefuse(release: string): string {
  const helm = findHelm();
  if (!helm) {
    throw new UserError(
      `params.via is helm but the helm CLI is not installed here (no \`helm\` on PATH), so \`helm rollback ${release}\` cannot run`,
      {
        untouched: 'nothing: no load was sent and no release was changed',
        next: 'install helm 3 (https://helm.sh/docs/intro/install/) where the drill runs, or set params.via: api to roll the Deployment back through the Kubernetes API as `kubectl rollout undo` does',
      },
    );
  }
  return helm;
}

function helmArgs(ctx: Ctx, namespace: string): string[] {
  const cli = ctx.adapters.kube.cli;
  return [
    '-n',
    namespace,
    ...(cli.kubeconfig ? ['--kubeconfig', cli.kubeconfig] : []),
    ...(cli.context ? ['--kube-context', cli.context] : []),
  ];
}

async function helm(ctx: Ctx, args: string[], timeoutMs: number): Promise<string> {
  const bin = helmOrRefuse(ctx.params.release ?? ctx.params.deployment);
  const out = await ctx.adapters.exec.run([bin, ...args], { timeoutMs, signal: ctx.signal });
  if (out.exitCode !== 0) throw new Error(`helm ${args.join(' ')} exited ${out.exitCode}: ${out.stderr.trim().slice(-2000)}`);
  return out.stdout;
}

/** Answers from the service that name the expected version, in a row; any other answer resets the count. */
async function versionServing(ctx: Ctx, expect: string[]): Promise<{ ok: boolean; detail: string }> {
  const base = ctx.drill.target.kind === 'kubernetes' ? ctx.drill.target.url : undefined;
  if (!ctx.params.versionPath || !base) return { ok: true, detail: 'no versionPath: the rollout status alone decides' };
  const url = new URL(ctx.params.versionPath, base).toString();
  let seen = '';
  for (let i = 0; i < ctx.params.versionChecks; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(2000)]) });
      seen = (await res.text()).trim().slice(0, 200);
      if (!res.ok || !expect.some((tag) => seen.includes(tag))) return { ok: false, detail: `${url} answered ${res.status} ${seen}` };
    } catch (e) {
      return { ok: false, detail: `${url} failed: ${(e as Error).message}` };
    }
  }
  return { ok: true, detail: `${ctx.params.versionChecks} answers in a row from ${url} name ${expect.join(', ')} (last: ${seen})` };
}

const { probe, action, define } = scenario({ params, requires: ['kubernetes', 'load'] });

const rollBack = action<Selected, RolledBack>({
  name: 'roll back deployment',
  description:
    "roll the Deployment back to its previous revision (the pod template of that revision's ReplicaSet) and wait for the rollout",
  async select(ctx) {
    const namespace = ctx.params.namespace ?? ctx.adapters.kube.namespace;
    ctx.adapters.kube.checkNamespace(namespace);
    const release = ctx.params.release ?? ctx.params.deployment;
    if (ctx.params.via === 'helm') helmOrRefuse(release);
    const { from, to } = await deploymentsOf(ctx).target(ctx.params.deployment, ctx.params.toRevision, ctx.signal);
    if (ctx.params.via === 'helm') {
      const history = JSON.parse(await helm(ctx, ['history', release, '-o', 'json', ...helmArgs(ctx, namespace)], 30_000)) as {
        revision: number;
        status: string;
      }[];
      const deployed = history.find((h) => h.status === 'deployed');
      return {
        via: 'helm',
        deployment: ctx.params.deployment,
        namespace,
        from,
        to,
        ...(deployed ? { helmRevision: deployed.revision } : {}),
      };
    }
    return { via: 'api', deployment: ctx.params.deployment, namespace, from, to };
  },
  describeTargets: (s) => [
    `deployment/${s.deployment} in ${s.namespace}: ${describe(s.from)} -> ${describe(s.to)}${s.via === 'helm' ? ` via helm${s.helmRevision ? ` (release revision ${s.helmRevision})` : ''}` : ''}`,
  ],
  async run(ctx, s) {
    const timeoutMs = parseDuration(ctx.params.rolloutTimeout);
    const d = deploymentsOf(ctx);
    let result: RollbackResult;
    if (s.via === 'helm') {
      const release = ctx.params.release ?? ctx.params.deployment;
      const rev = ctx.params.toRevision > 0 ? [String(ctx.params.toRevision)] : [];
      const started = new Date().toISOString();
      await helm(ctx, ['rollback', release, ...rev, ...helmArgs(ctx, s.namespace)], 60_000);
      result = { from: s.from, to: s.to, patchedAt: started };
    } else {
      result = await d.rollbackTo(ctx.params.deployment, ctx.params.toRevision, ctx.signal);
    }
    ctx.log.info(
      `rolled deployment/${ctx.params.deployment} back: ${describe(result.from)} -> ${describe(result.to)}; watching the rollout`,
    );
    try {
      const r = await d.waitRollout(ctx.params.deployment, { timeoutMs, signal: ctx.signal });
      const rolledOutAt = new Date().toISOString();
      const rolloutSeconds = (Date.parse(rolledOutAt) - Date.parse(result.patchedAt)) / 1000;
      ctx.mark('rolled-out');
      ctx.log.info(
        `rollout complete in ${formatDuration(Math.round(rolloutSeconds * 1000))}: ${r.updated}/${r.desired} on ${r.images.join(', ')}`,
      );
      return { ...result, rolledOutAt, rolloutSeconds };
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      // A rollout that does not complete is the system failing the drill (RTO missed), not the drill failing.
      ctx.log.warn((e as Error).message);
      return { ...result, rolledOutAt: null, rolloutSeconds: null };
    }
  },
  rollback: {
    description: (p) =>
      p.restore
        ? `roll forward again to the revision the drill found (its template, the same way), and wait for that rollout`
        : 'none asked for (params.restore: false): the Deployment stays on the previous revision',
    restores: (p) =>
      p.restore
        ? `deployment/${p.deployment} runs the revision the drill found (its pod template), rolled out: every replica updated and available`
        : 'nothing: params.restore is false, the Deployment stays on the previous revision',
    byHand: (p) =>
      `look at \`kubectl rollout history deployment/${p.deployment}\` and \`kubectl rollout status deployment/${p.deployment}\`${p.namespace ? ` -n ${p.namespace}` : ''}; roll it to the revision named above (\`kubectl rollout undo --to-revision=N\`${p.via === 'helm' ? ` or \`helm rollback ${p.release ?? p.deployment} N\`` : ''}) or redeploy it`,
    timeout: '6m',
    async holds(ctx, { selected }) {
      if (!ctx.params.restore) return { ok: true, detail: 'left on the previous revision (params.restore: false)' };
      const d = deploymentsOf(ctx);
      // The template decides, not the revision number: rolling forward gives the found template a new number.
      const [{ current }, r] = await Promise.all([
        d.history(ctx.params.deployment, ctx.signal),
        d.rollout(ctx.params.deployment, ctx.signal),
      ]);
      const onIt = current.replicaSet === selected.from.replicaSet;
      const where = `deployment/${r.deployment} on ${describe(current)} (found on ${describe(selected.from)})`;
      const rollout = `${r.updated}/${r.desired} updated, ${r.available} available${r.complete ? '' : ', rollout not complete'}`;
      return { ok: onIt && r.complete, detail: `${where}, ${rollout}` };
    },
    async converge(ctx, { selected }) {
      const d = deploymentsOf(ctx);
      let did = 'already on that template';
      const now = await d.history(ctx.params.deployment, ctx.signal);
      if (now.current.replicaSet !== selected.from.replicaSet) {
        if (selected.via === 'helm' && selected.helmRevision) {
          await helm(
            ctx,
            ['rollback', ctx.params.release ?? ctx.params.deployment, String(selected.helmRevision), ...helmArgs(ctx, selected.namespace)],
            60_000,
          );
          did = `helm rollback to release revision ${selected.helmRevision}`;
        } else {
          // The original template now lives in the newest ReplicaSet with its images.
          const back = [...now.history].reverse().find((r) => r.replicaSet === selected.from.replicaSet);
          if (!back)
            throw new Error(
              `the ReplicaSet ${selected.from.replicaSet} of ${describe(selected.from)} is gone from the history: roll forward by redeploying`,
            );
          await d.rollbackTo(ctx.params.deployment, back.revision, ctx.signal);
          did = `rolled forward to ${describe(back)}`;
        }
      }
      const r = await d.waitRollout(ctx.params.deployment, { timeoutMs: 300_000, signal: ctx.signal });
      return `${did}; rollout complete: deployment/${r.deployment} back on ${r.images.join(', ')} (revision ${r.revision}), ${r.available}/${r.desired} available`;
    },
  },
});

export default define({
  name: 'rollback',
  description:
    'Roll a Deployment back to its previous revision as the runbook does (`kubectl rollout undo` or `helm rollback`), timed under load until the previous version serves.',
  tier: 'critical',

  validate(p, target) {
    if (target.kind !== 'kubernetes' || p.namespace === undefined) return [];
    if (p.namespace === 'kube-system')
      return [{ path: 'namespace', message: 'kube-system is never a drill target: it runs the cluster itself' }];
    if (!target.namespaces.includes(p.namespace)) {
      return [
        {
          path: 'namespace',
          message: `namespace "${p.namespace}" is not in the target's namespaces (${target.namespaces.join(', ')}); add it there if the drill is meant to act in it`,
        },
      ];
    }
    return [];
  },

  steadyState: [
    probe('the Deployment is fully rolled out', async (ctx) => {
      const r = await deploymentsOf(ctx).rollout(ctx.params.deployment, ctx.signal);
      return {
        ok: r.complete,
        detail: `deployment/${r.deployment} at revision ${r.revision} (${r.images.join(', ')}): ${r.updated}/${r.desired} updated, ${r.available} available`,
      };
    }),
    {
      name: 'replica floor (when params.replicaFloor is true)',
      async check(ctx: Ctx) {
        if (!ctx.params.replicaFloor) return { ok: true, detail: 'not asked for (params.replicaFloor: false)' };
        return replicaFloorProbe<Params>((x) => x.deployment, { namespace: (x) => x.namespace }).check(ctx);
      },
    },
  ],

  actions: [rollBack],

  recovery: {
    description:
      'the rollout is complete (every replica on the previous template, available, none of the newer left) and the service answers with the previous version',
    pollMs: 100,
    until: probe('previous version serving', async (ctx) => {
      const rolled = ctx.resultOf(rollBack);
      if (!rolled) return { ok: false, detail: 'the rollback has not finished' };
      const r = await deploymentsOf(ctx).rollout(ctx.params.deployment, ctx.signal);
      const want = tagsOf(rolled.to);
      const onTarget = r.images.join(',') === rolled.to.images.join(',');
      // The Deployment controller gave up on this rollout (Progressing=False, ProgressDeadlineExceeded), as
      // `kubectl rollout status` reports it: polling again cannot make it pass, so recovery stops waiting.
      if (onTarget && r.deadlineExceeded !== undefined)
        return {
          ok: false,
          final: true,
          detail: `deployment "${r.deployment}" exceeded its progress deadline (${r.deadlineExceeded.replace(/\.$/, '')}): ${r.updated}/${r.desired} updated, ${r.available} available, on ${r.images.join(', ')}`,
        };
      if (!r.complete || !onTarget)
        return { ok: false, detail: `rollout ${r.updated}/${r.desired} updated, ${r.available} available, on ${r.images.join(', ')}` };
      const serving = await versionServing(ctx, want);
      return { ok: serving.ok, detail: `rollout complete on ${r.images.join(', ')}; ${serving.detail}` };
    }),
  },

  verify: [
    probe('every pod runs the previous revision', async (ctx) => {
      const rolled = ctx.resultOf(rollBack);
      const r = await deploymentsOf(ctx).rollout(ctx.params.deployment, ctx.signal);
      const ok = rolled !== undefined && r.complete && r.images.join(',') === rolled.to.images.join(',');
      const timing =
        rolled?.rolloutSeconds != null
          ? `; rollout took ${rolled.rolloutSeconds.toFixed(2)}s after the patch`
          : '; the rollout did not complete in time';
      return {
        ok,
        detail: `deployment/${r.deployment} revision ${r.revision} on ${r.images.join(', ')}, ${r.available}/${r.desired} available${timing}`,
      };
    }),
  ],
});
