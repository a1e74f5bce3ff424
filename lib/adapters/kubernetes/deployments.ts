/**
 * Deployment rollbacks the way `kubectl rollout undo` does them, through the API: find the ReplicaSet of the
 * wanted revision among those the Deployment controls, and replace the Deployment's pod template with that
 * ReplicaSet's (a JSON patch, as kubectl sends), so the Deployment controller rolls back by rolling forward.
 * Completion is judged as `kubectl rollout status` judges it, from a watch on the Deployment.
 */
import { AppsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment, type V1ReplicaSet } from '@kubernetes/client-node';
import { UserError } from '../../errors.ts';
import { KubeError } from './errors.ts';
import { createCaller } from './call.ts';
import { settleWatch } from './settle.ts';
import { startInformer } from './informer.ts';
import type { DeploymentRevision, KubeDeployments, RolloutState } from './types.ts';

const REVISION = 'deployment.kubernetes.io/revision';
const HASH_LABEL = 'pod-template-hash';
/** Annotations kubectl keeps from the Deployment instead of copying them from the old ReplicaSet. */
const SKIP_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

/** Deployment as a watch delivers it (raw JSON) or a read returns it (model): the fields a rollout is judged by. */
interface DeploymentLike {
  metadata?: { name?: string; generation?: number; resourceVersion?: string; annotations?: Record<string, string> };
  spec?: {
    replicas?: number;
    paused?: boolean;
    progressDeadlineSeconds?: number;
    template?: { spec?: { containers?: { image?: string }[] } };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
  };
}

function imagesOf(t: { spec?: { containers?: { image?: string }[] } } | undefined): string[] {
  return (t?.spec?.containers ?? []).map((c) => c.image ?? '');
}

function revisionOf(o: { metadata?: { annotations?: Record<string, string> } }): number {
  const n = Number(o.metadata?.annotations?.[REVISION]);
  return Number.isInteger(n) ? n : 0;
}

function revisionView(rs: V1ReplicaSet): DeploymentRevision {
  const cause = rs.metadata?.annotations?.['kubernetes.io/change-cause'];
  return {
    revision: revisionOf(rs),
    replicaSet: rs.metadata?.name ?? '',
    images: imagesOf(rs.spec?.template),
    ...(cause ? { changeCause: cause } : {}),
    createdAt: rs.metadata?.creationTimestamp ? new Date(rs.metadata.creationTimestamp).toISOString() : new Date(0).toISOString(),
  };
}

export function rolloutState(d: DeploymentLike, namespace: string): RolloutState {
  const s = d.status ?? {};
  const desired = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  // kubectl's DeploymentStatusViewer.Status (kubernetes/kubernetes staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
  // rollout_status.go): once the spec is observed, a Progressing condition with reason ProgressDeadlineExceeded
  // (deploymentutil.TimedOutReason) is the error `deployment "X" exceeded its progress deadline`; otherwise complete
  // means every replica updated, no old ones left, all available.
  const observed = (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
  const progressing = (s.conditions ?? []).find((c) => c.type === 'Progressing');
  const deadlineExceeded = observed && progressing?.reason === 'ProgressDeadlineExceeded' ? (progressing.message ?? '') : undefined;
  const complete = observed && deadlineExceeded === undefined && updated >= desired && total <= updated && available >= updated;
  return {
    deployment: d.metadata?.name ?? '',
    namespace,
    revision: revisionOf(d),
    images: imagesOf(d.spec?.template),
    desired,
    updated,
    ready: s.readyReplicas ?? 0,
    available,
    total,
    complete,
    ...(deadlineExceeded !== undefined ? { deadlineExceeded } : {}),
  };
}

/** The template without the hash label, for comparing a ReplicaSet's template with the Deployment's, as kubectl does. */
function templateKey(t: unknown): string {
  const copy = JSON.parse(JSON.stringify(t ?? {})) as { metadata?: { labels?: Record<string, string> } };
  if (copy.metadata?.labels) delete copy.metadata.labels[HASH_LABEL];
  return JSON.stringify(copy, Object.keys(flatKeys(copy)).sort());
}

function flatKeys(o: unknown, acc: Record<string, true> = {}): Record<string, true> {
  if (o && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      acc[k] = true;
      flatKeys(v, acc);
    }
  }
  return acc;
}

export function createKubeDeployments(kc: KubeConfig, namespace: string, requestTimeoutMs?: number): KubeDeployments {
  const apps = kc.makeApiClient(AppsV1Api);
  const { call } = createCaller(kc, namespace, requestTimeoutMs);

  const read = (name: string, signal?: AbortSignal): Promise<V1Deployment> =>
    call(
      { verb: 'get', resource: 'deployments', group: 'apps', name },
      (o) => apps.readNamespacedDeployment({ name, namespace }, o),
      signal,
    );

  async function owned(d: V1Deployment, signal?: AbortSignal): Promise<V1ReplicaSet[]> {
    const uid = d.metadata?.uid;
    const l = await call(
      { verb: 'list', resource: 'replicasets', group: 'apps' },
      (o) => apps.listNamespacedReplicaSet({ namespace }, o),
      signal,
    );
    return l.items.filter((rs) =>
      rs.metadata?.ownerReferences?.some(
        (r) => r.controller && r.kind === 'Deployment' && (r.uid === uid || (!uid && r.name === d.metadata?.name)),
      ),
    );
  }

  async function resolveTarget(name: string, toRevision: number, signal?: AbortSignal) {
    const d = await read(name, signal);
    if (d.spec?.paused) {
      throw new UserError(`deployment/${name} in namespace "${namespace}" is paused: a rollback would not roll out`, {
        untouched: `deployment/${name} was not changed`,
        next: `resume it first (\`kubectl rollout resume deployment/${name} -n ${namespace}\`) or drill on a Deployment that is not paused`,
      });
    }
    const sets = (await owned(d, signal)).sort((a, b) => revisionOf(a) - revisionOf(b));
    const currentRev = revisionOf(d);
    const current = sets.find((rs) => revisionOf(rs) === currentRev) ?? sets[sets.length - 1];
    if (!current) {
      throw new UserError(`deployment/${name} in namespace "${namespace}" has no ReplicaSets: no rollout history`, {
        untouched: `deployment/${name} was not changed`,
      });
    }
    const history = sets
      .map(revisionView)
      .map((r) => `${r.revision} (${r.images.join(', ')})`)
      .join(', ');
    let to: V1ReplicaSet | undefined;
    if (toRevision === 0) {
      to = sets.filter((rs) => revisionOf(rs) < revisionOf(current)).pop();
      if (!to) {
        throw new UserError(
          `deployment/${name} in namespace "${namespace}" has no revision before ${revisionOf(current)} to roll back to (history: ${history})`,
          {
            untouched: `deployment/${name} was not changed`,
            next: 'deploy a new revision first, so the drill has a previous one to roll back to',
          },
        );
      }
    } else {
      to = sets.find((rs) => revisionOf(rs) === toRevision);
      if (!to) {
        throw new UserError(`revision ${toRevision} of deployment/${name} is not in its history (${history})`, {
          untouched: `deployment/${name} was not changed`,
          next: `pick a revision from \`kubectl rollout history deployment/${name} -n ${namespace}\``,
        });
      }
    }
    if (templateKey(to.spec?.template) === templateKey(d.spec?.template)) {
      throw new UserError(`deployment/${name} already runs the template of revision ${revisionOf(to)}: nothing to roll back`, {
        untouched: `deployment/${name} was not changed`,
        next: 'pick another revision (params.toRevision)',
      });
    }
    return { d, from: revisionView(current), to: revisionView(to), toSet: to };
  }

  async function waitRollout(name: string, o: { timeoutMs: number; signal: AbortSignal }): Promise<RolloutState> {
    let last: RolloutState | undefined;
    let lastTransient: unknown;
    const timedOut = () => {
      const seen = last
        ? `${last.updated}/${last.desired} updated, ${last.available} available, ${last.total} in total`
        : 'the Deployment was never read';
      const why = lastTransient ? `; last error: ${(lastTransient as Error).message}` : '';
      // Not rolled out in time is the system under test failing, not a mistake in the drill.
      return new KubeError(
        `timed out after ${Math.round(o.timeoutMs / 1000)}s waiting for deployment/${name} in namespace "${namespace}" to roll out (${seen})${why}`,
        {
          reason: 'Timeout',
          verb: 'watch',
          resource: 'deployments',
          namespace,
          exitCode: 1,
        },
      );
    };
    return settleWatch<RolloutState>({ ...o, timedOut }, ({ stop, done, fail }) => {
      const informer = startInformer<DeploymentLike>({
        kubeConfig: kc,
        path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
        query: { fieldSelector: `metadata.name=${name}` },
        list: async (signal) => {
          const l = await call(
            { verb: 'list', resource: 'deployments', group: 'apps' },
            (opt) => apps.listNamespacedDeployment({ namespace, fieldSelector: `metadata.name=${name}` }, opt),
            signal,
          );
          return { items: l.items as DeploymentLike[], resourceVersion: l.metadata?.resourceVersion ?? '' };
        },
        fromWatch: (raw) => raw as DeploymentLike,
        key: (d) => d.metadata?.name ?? '',
        resourceVersionOf: (d) => d.metadata?.resourceVersion,
        signal: stop,
        onChange: () => {
          const d = informer.items.get(name);
          if (!d) return;
          last = rolloutState(d, namespace);
          if (last.complete) done(last);
          else if (last.deadlineExceeded !== undefined) {
            // As `kubectl rollout status` does: the controller has given up, so waiting out timeoutMs would only delay the verdict.
            const seconds = d.spec?.progressDeadlineSeconds;
            fail(
              new KubeError(
                `deployment "${name}" exceeded its progress deadline in namespace "${namespace}"${seconds !== undefined ? ` (progressDeadlineSeconds: ${seconds})` : ''}: ${last.deadlineExceeded ? `${last.deadlineExceeded.replace(/\.$/, '')}; ` : ''}${last.updated}/${last.desired} updated, ${last.available} available, ${last.total} in total`,
                { reason: 'ProgressDeadlineExceeded', verb: 'watch', resource: 'deployments', namespace, exitCode: 1 },
              ),
            );
          }
        },
        onFatal: (e) =>
          fail(
            e instanceof KubeError
              ? e
              : new KubeError(`watching deployment/${name} failed: ${(e as Error).message}`, {
                  reason: 'Unknown',
                  verb: 'watch',
                  resource: 'deployments',
                  namespace,
                }),
          ),
        onTransient: (e) => (lastTransient = e),
      });
    });
  }

  return {
    namespace,

    async history(name, signal) {
      const d = await read(name, signal);
      const sets = (await owned(d, signal)).sort((a, b) => revisionOf(a) - revisionOf(b)).map(revisionView);
      const current = sets.find((r) => r.revision === revisionOf(d)) ?? sets[sets.length - 1];
      if (!current)
        throw new UserError(`deployment/${name} in namespace "${namespace}" has no ReplicaSets: no rollout history`, {
          untouched: 'nothing was changed',
        });
      return { current, history: sets, paused: Boolean(d.spec?.paused) };
    },

    async target(name, toRevision, signal) {
      const { from, to } = await resolveTarget(name, toRevision, signal);
      return { from, to };
    },

    async rollbackTo(name, toRevision, signal) {
      const { d, from, to, toSet } = await resolveTarget(name, toRevision, signal);
      const template = JSON.parse(JSON.stringify(toSet.spec?.template ?? {})) as { metadata?: { labels?: Record<string, string> } };
      if (template.metadata?.labels) delete template.metadata.labels[HASH_LABEL];
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) if (SKIP_ANNOTATIONS.has(k)) annotations[k] = v;
      for (const [k, v] of Object.entries(toSet.metadata?.annotations ?? {})) if (!SKIP_ANNOTATIONS.has(k)) annotations[k] = v;
      const patch = [
        { op: 'replace', path: '/spec/template', value: template },
        { op: 'replace', path: '/metadata/annotations', value: annotations },
      ];
      await call(
        { verb: 'patch', resource: 'deployments', group: 'apps', name },
        (o) =>
          apps.patchNamespacedDeployment({ name, namespace, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, o)),
        signal,
      );
      return { from, to, patchedAt: new Date().toISOString() };
    },

    async rollout(name, signal) {
      return rolloutState((await read(name, signal)) as DeploymentLike, namespace);
    },

    waitRollout,
  };
}
