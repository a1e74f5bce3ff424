import type { Target } from '../config/types.ts';
import type { Adapters } from '../scenario/define.ts';
import { createExec } from '../adapters/exec.ts';
import { createLabReplicas } from '../adapters/lab-replicas.ts';
import { defaultLabDir, labDown, labStatus, labUp } from '../lab/index.ts';
import { UserError } from '../errors.ts';
import { backupsAdapter, backupsDetails, checkBackupsAccess, labBackupsAdapter } from '../adapters/postgres/backup/adapter.ts';
import { LAB_DATABASE_DEFAULTS } from '../config/defaults.ts';
import { createLabDatabase } from '../lab/database.ts';
import { patroniUnavailable } from '../lab/patroni-lab.ts';
import { checkKubeAccess, kubeAdapters, type OpenedKube } from '../adapters/kubernetes/target.ts';
import { openCnpgDatabase, type CnpgDatabase } from '../adapters/kubernetes/cnpg-database.ts';

export interface OpenTarget {
  adapters: Adapters;
  /** Null when the target has no service to load (blob). */
  serviceUrl: string | null;
  /** For the record: where the drill acted, with no secrets. */
  details: Record<string, unknown>;
  /** Stops what opening started (the lab, when this run brought it up); leaves alone what was already there. */
  close(): Promise<void>;
  /**
   * Resolve every action's selection before the first run starts: on a real cluster a selector that matches
   * nothing, or more pods than the blast radius, is invalid input (exit 2), found before any load is sent.
   */
  checkSelections?: boolean;
}

/** kubectl and helm in runbook commands use the drill's cluster and context, not whatever the shell had. */
function kubeEnv(cli: { kubeconfig?: string; context?: string }): Record<string, string> {
  return { ...(cli.kubeconfig ? { KUBECONFIG: cli.kubeconfig } : {}), ...(cli.context ? { DRILL_KUBE_CONTEXT: cli.context } : {}) };
}

export function labDirOf(target: Target & { kind: 'lab' }): string {
  return target.labDir ?? defaultLabDir();
}

/**
 * The lab's database settings with defaults: pg-promote runs the pair self-managed, patroni under Patroni and
 * etcd (the lab's `--provider patroni`). Patroni is refused before anything starts where it is not installed.
 */
export function labDatabaseOf(target: Target & { kind: 'lab' }): { replication: 'async' | 'sync'; provider: 'pg-promote' | 'patroni' } {
  const database = { ...LAB_DATABASE_DEFAULTS, ...target.database };
  const missing = database.provider === 'patroni' ? patroniUnavailable() : null;
  if (missing) {
    throw new UserError(`target.database.provider patroni is not available on this machine: ${missing}`, {
      untouched: 'nothing: the lab was not started and no load was sent',
      next: 'apt-get install -y patroni etcd-server, or use provider: pg-promote on the lab (the default)',
    });
  }
  return database;
}

/**
 * Makes the target usable: brings the lab up (and remembers to take it down only if this run started it),
 * or checks that an http target answers at all. An unreachable target is invalid input: nothing was touched.
 */
export async function openTarget(target: Target, say: (line: string) => void): Promise<OpenTarget> {
  if (target.kind === 'lab') {
    const dir = labDirOf(target);
    const database = labDatabaseOf(target);
    const t0 = performance.now();
    const info = await labUp({ dir, replicas: target.replicas, replication: database.replication, provider: database.provider });
    say(
      info.alreadyRunning
        ? `lab already up in ${dir}: service ${info.serviceUrl} (left running after the drill)`
        : `lab up in ${((performance.now() - t0) / 1000).toFixed(1)}s: service ${info.serviceUrl}, ${target.replicas} replicas, PostgreSQL ${info.db.nodes.map((n) => `${n.name} ${n.role} on 127.0.0.1:${n.port}`).join(', ')} (${info.db.replication})`,
    );
    const env = { DRILL_LAB_DIR: dir, DRILL_SERVICE_URL: info.serviceUrl };
    const backups = await labBackupsAdapter(dir, { create: true });
    if (backups) say(`backups: ${backups.note}`);
    return {
      adapters: { exec: createExec(env), replicas: createLabReplicas(info), database: createLabDatabase(info), ...(backups ? { backups: backups.adapter } : {}) },
      serviceUrl: info.serviceUrl,
      details: {
        kind: 'lab', dir, replicas: target.replicas, serviceUrl: info.serviceUrl,
        postgres: { host: info.db.host, port: info.db.port, endpointPort: info.db.endpointPort, database: info.db.database, replication: info.db.replication, provider: database.provider, primary: info.db.nodes[0]?.name, nodes: info.db.nodes.map((n) => ({ name: n.name, role: n.role, port: n.port })) },
        ...(backups ? { backups: backupsDetails(backups.adapter) } : {}),
      },
      async close() {
        if (!info.alreadyRunning) {
          await labDown({ dir });
          say(`lab down: ${dir}`);
        }
      },
    };
  }
  if (target.kind === 'kubernetes') {
    // Credentials and the API server first: a wrong context must fail before any load is sent.
    const kube = kubeAdapters(target);
    await checkKubeAccess(kube, target.namespace);
    const database = target.database ? await openKubeDatabase(target, kube) : undefined;
    await assertReachable(target.url);
    say(`kubernetes target ${kube.replicas.where} (${kube.details.server}): namespaces ${target.namespaces.join(', ')}, blast radius ${target.blastRadius}; service ${target.url}${database ? `; database ${database.where}` : ''}`);
    const env = { DRILL_SERVICE_URL: target.url, DRILL_KUBE_NAMESPACE: target.namespace, ...kubeEnv(kube.kube.cli) };
    return {
      adapters: { exec: createExec(env), replicas: kube.replicas, kube: kube.kube, ...(database ? { database } : {}) },
      serviceUrl: target.url,
      details: { ...kube.details, serviceUrl: target.url, ...(database ? { database: database.details } : {}) },
      checkSelections: true,
      async close() {
        kube.replicas.close();
      },
    };
  }
  if (target.kind === 'blob') {
    // Credentials and container first: a wrong one is invalid input, found before any scenario starts.
    const backups = backupsAdapter(target);
    await checkBackupsAccess(backups);
    say(`backup store ${backups.where}; scratch clusters under ${backups.scratchParent}; no load (no service)`);
    return { adapters: { exec: createExec(), backups }, serviceUrl: null, details: backupsDetails(backups), async close() {} };
  }
  await assertReachable(target.url);
  return {
    adapters: { exec: createExec({ DRILL_SERVICE_URL: target.url }) },
    serviceUrl: target.url,
    details: { kind: 'http', url: target.url },
    async close() {},
  };
}

/** The target's CloudNativePG cluster, opened with the target's credentials and guardrails (reads only). */
function openKubeDatabase(target: Target & { kind: 'kubernetes' }, kube: OpenedKube, forPlan = false): Promise<CnpgDatabase> {
  const d = target.database!;
  return openCnpgDatabase({ ...d, kubeConfig: kube.kubeConfig, allowedNamespaces: target.namespaces, blastRadius: target.blastRadius, requirePassword: !forPlan });
}

async function assertReachable(url: string): Promise<void> {
  try {
    // Any HTTP answer proves the address is right; a failing service is what the drill is for.
    await fetch(url, { method: 'GET', signal: AbortSignal.timeout(5000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new UserError(`target ${url} is unreachable (${cause})`, {
      untouched: 'nothing: no load was sent and no action ran',
      next: 'check target.url in the drill file and that the service is up, then run again',
    });
  }
}

/**
 * Read-only view for `drill plan`: adapters only if the target is already there. Plan never starts the lab,
 * because a plan that changes the machine is not a plan.
 */
export async function peekTarget(target: Target): Promise<{ adapters: Adapters | null; note: string; serviceUrl: string | null }> {
  if (target.kind === 'lab') {
    const dir = labDirOf(target);
    const status = await labStatus({ dir });
    if (!status.up || !status.info) {
      return { adapters: null, serviceUrl: null, note: `lab in ${dir} is not running: \`drill run\` starts it; selections are resolved then` };
    }
    const backups = await labBackupsAdapter(dir, { create: false });
    return {
      adapters: { exec: createExec(), replicas: createLabReplicas(status.info), database: createLabDatabase(status.info), ...(backups ? { backups: backups.adapter } : {}) },
      serviceUrl: status.info.serviceUrl,
      note: `lab in ${dir} is up: selections below are what a run now would hit`,
    };
  }
  if (target.kind === 'kubernetes') {
    // Plan reads the live API (list and get only): what it prints is what a run now would hit.
    const kube = kubeAdapters(target);
    await checkKubeAccess(kube, target.namespace);
    const database = target.database ? await openKubeDatabase(target, kube, true) : undefined;
    return {
      adapters: { exec: createExec(), replicas: kube.replicas, kube: kube.kube, ...(database ? { database } : {}) },
      serviceUrl: target.url,
      note: `${kube.replicas.where} (${kube.details.server}, ${kube.details.credentials}); namespaces ${target.namespaces.join(', ')}; blast radius ${target.blastRadius} pod${target.blastRadius === 1 ? '' : 's'} per action; service ${target.url}${database ? `; database ${database.where}: ${await database.describeRollback()}` : ''}; selections below were resolved against the live API just now`,
    };
  }
  if (target.kind === 'blob') {
    // Building the client reads the environment only; no request is made.
    const backups = backupsAdapter(target);
    return { adapters: { exec: createExec(), backups }, serviceUrl: null, note: `backup store ${backups.where}: restores go into scratch clusters under ${backups.scratchParent}` };
  }
  return { adapters: { exec: createExec() }, serviceUrl: target.url, note: `http target ${target.url}` };
}
