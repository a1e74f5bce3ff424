/** A Kubernetes namespace (and optionally its CloudNativePG cluster), within the drill's namespaces and blast radius. */
import type { KubernetesTarget } from '../config/types.ts';
import { createExec } from '../adapters/exec.ts';
import type { OpenedKube } from '../adapters/kubernetes/target.ts';
import type { CnpgDatabase } from '../adapters/kubernetes/cnpg-database.ts';
import type { KubernetesRestore } from '../config/types.ts';
import type { LiveRestoreAdapter } from '../adapters/types.ts';
import { assertReachable } from './reachable.ts';
import type { TargetKind } from './types.ts';

/**
 * The Kubernetes client library costs about 1.9 s of every CLI start (its ESM modules through the TypeScript
 * loader, measured 2026-12-04), so the adapters that use it load when a drill opens a kubernetes target, not
 * when `drill run` on the lab or `drill --help` starts.
 */
async function kubeParts() {
  const [target, database, halt, restore] = await Promise.all([
    import('../adapters/kubernetes/target.ts'),
    import('../adapters/kubernetes/cnpg-database.ts'),
    import('../adapters/kubernetes/halt.ts'),
    import('../adapters/kubernetes/cnpg-restore.ts'),
  ]);
  return { ...target, ...database, ...halt, ...restore };
}
type KubeParts = Awaited<ReturnType<typeof kubeParts>>;

/** kubectl and helm in runbook commands use the drill's cluster and context, not whatever the shell had. */
function kubeEnv(cli: { kubeconfig?: string; context?: string }): Record<string, string> {
  return { ...(cli.kubeconfig ? { KUBECONFIG: cli.kubeconfig } : {}), ...(cli.context ? { DRILL_KUBE_CONTEXT: cli.context } : {}) };
}

/** The target's CloudNativePG cluster, opened with the target's credentials and guardrails (reads only). */
function openKubeDatabase(k: KubeParts, target: KubernetesTarget, kube: OpenedKube, forPlan = false): Promise<CnpgDatabase> {
  const d = target.database!;
  return k.openCnpgDatabase({
    ...d,
    kubeConfig: kube.kubeConfig,
    allowedNamespaces: target.namespaces,
    blastRadius: target.blastRadius,
    requirePassword: !forPlan,
  });
}

/** The live restore (data-loss) of the target's CloudNativePG cluster, when the drill file gives its restore settings. */
function openLiveRestore(
  k: KubeParts,
  d: { cluster: string; namespace: string; passwordEnv: string; restore?: KubernetesRestore },
  database: CnpgDatabase,
  kube: { kubeConfig: OpenedKube['kubeConfig']; allowedNamespaces: string[] },
): LiveRestoreAdapter | undefined {
  if (!d.restore) return undefined;
  return k.createCnpgLiveRestore({
    kubeConfig: kube.kubeConfig,
    namespace: d.namespace,
    allowedNamespaces: kube.allowedNamespaces,
    cluster: d.cluster,
    settings: d.restore,
    // Read at connect time, as the database adapter does: the password never sits in an object a record could print.
    endpoint: { ...database.endpoint, password: () => process.env[d.passwordEnv] ?? '' },
  });
}

export const kubernetesTarget: TargetKind<'kubernetes'> = {
  kind: 'kubernetes',
  // A database only when the target names one (a CloudNativePG cluster).
  capabilities: (target) =>
    // live-restore with any database: data-loss then names the restore settings it lacks (target.database.restore).
    target.database ? ['replicas', 'exec', 'load', 'kubernetes', 'database', 'live-restore'] : ['replicas', 'exec', 'load', 'kubernetes'],
  async open(target, say) {
    const k = await kubeParts();
    // Credentials and the API server first: a wrong context must fail before any load is sent.
    const kube = k.kubeAdapters(target);
    await k.checkKubeAccess(kube, target.namespace);
    const database = target.database ? await openKubeDatabase(k, target, kube) : undefined;
    const liveRestore =
      target.database && database
        ? openLiveRestore(k, target.database, database, { kubeConfig: kube.kubeConfig, allowedNamespaces: target.namespaces })
        : undefined;
    await assertReachable(target.url);
    say(
      `kubernetes target ${kube.replicas.where} (${kube.details.server}): namespaces ${target.namespaces.join(', ')}, blast radius ${target.blastRadius}; service ${target.url}${database ? `; database ${database.where}` : ''}`,
    );
    const env = { DRILL_SERVICE_URL: target.url, DRILL_KUBE_NAMESPACE: target.namespace, ...kubeEnv(kube.kube.cli) };
    return {
      adapters: {
        exec: createExec(env),
        replicas: kube.replicas,
        kube: kube.kube,
        ...(database ? { database } : {}),
        ...(liveRestore ? { liveRestore } : {}),
      },
      serviceUrl: target.url,
      details: {
        ...kube.details,
        serviceUrl: target.url,
        ...(database ? { database: database.details } : {}),
        ...(target.database?.restore ? { liveRestore: k.cnpgRestoreDetails(target.database.restore) } : {}),
      },
      checkSelections: true,
      halt: (signal) => k.readHaltConfigMap(kube.kubeConfig, target.namespace, signal),
      async close() {
        kube.replicas.close();
      },
    };
  },
  async peek(target) {
    const k = await kubeParts();
    // Plan reads the live API (list and get only): what it prints is what a run now would hit.
    const kube = k.kubeAdapters(target);
    await k.checkKubeAccess(kube, target.namespace);
    const database = target.database ? await openKubeDatabase(k, target, kube, true) : undefined;
    const liveRestore =
      target.database && database
        ? openLiveRestore(k, target.database, database, { kubeConfig: kube.kubeConfig, allowedNamespaces: target.namespaces })
        : undefined;
    return {
      adapters: {
        exec: createExec(),
        replicas: kube.replicas,
        kube: kube.kube,
        ...(database ? { database } : {}),
        ...(liveRestore ? { liveRestore } : {}),
      },
      serviceUrl: target.url,
      note: `${kube.replicas.where} (${kube.details.server}, ${kube.details.credentials}); namespaces ${target.namespaces.join(', ')}; blast radius ${target.blastRadius} pod${target.blastRadius === 1 ? '' : 's'} per action; service ${target.url}${database ? `; database ${database.where}: ${await database.describeRollback()}` : ''}; selections below were resolved against the live API just now`,
    };
  },
  async reopen(details) {
    const k = await kubeParts();
    const kube = k.kubeAdaptersFromDetails(details);
    // A CloudNativePG database the run failed over: its rollback (the old primary rejoining) needs it back.
    const db = details.database as Record<string, unknown> | undefined;
    const database =
      db?.provider === 'cnpg'
        ? await k.cnpgDatabaseFromDetails(db, {
            kubeConfig: kube.kubeConfig,
            allowedNamespaces: kube.kube.allowedNamespaces,
            blastRadius: kube.kube.blastRadius,
          })
        : undefined;
    const lr = details.liveRestore as Record<string, unknown> | undefined;
    const liveRestore =
      database && lr && db
        ? openLiveRestore(
            k,
            {
              cluster: String(db.cluster),
              namespace: String(db.namespace),
              passwordEnv: typeof db.credentialEnv === 'string' ? db.credentialEnv : 'PGPASSWORD',
              restore: k.cnpgRestoreFromDetails(lr),
            },
            database,
            { kubeConfig: kube.kubeConfig, allowedNamespaces: kube.kube.allowedNamespaces },
          )
        : undefined;
    return {
      adapters: {
        exec: createExec({ DRILL_SERVICE_URL: String(details.serviceUrl) }),
        replicas: kube.replicas,
        kube: kube.kube,
        ...(database ? { database } : {}),
        ...(liveRestore ? { liveRestore } : {}),
      },
    };
  },
};
