/**
 * The embedded lab: replicas as supervised processes, a PostgreSQL pair (pg-promote or Patroni) behind an
 * endpoint, and Azurite for backups. A run brings it up when it is not there and takes down only what it started.
 */
import type { LabTarget } from '../../config/types.ts';
import { LAB_DATABASE_DEFAULTS } from '../../config/defaults.ts';
import { UserError } from '../../errors.ts';
import { createExec } from '../../adapters/exec.ts';
import { backupsDetails } from '../../adapters/postgres/backup/adapter.ts';
import { resolve } from 'node:path';
import { defaultLabDir, labDown, labStatus, labUp } from '../../lab/index.ts';
import { collectFacts, infoOf } from '../../lab/status.ts';
import type { LabInfo } from '../../lab/types.ts';
import { patroniUnavailable } from '../../lab/patroni/config.ts';
import type { TargetKind } from '../types.ts';
import { labBackupsAdapter } from './backups.ts';
import { createLabDatabase } from './database.ts';
import { createLabReplicas } from './replicas.ts';
import { createLabLiveRestore } from './live-restore.ts';
import { createLabDataClasses } from './data-classes.ts';
import { createLabRegion } from './region.ts';

export function labDirOf(target: LabTarget): string {
  return target.labDir ?? defaultLabDir();
}

/**
 * The lab's database settings with defaults: pg-promote runs the pair self-managed, patroni under Patroni and
 * etcd (the lab's `--provider patroni`). Patroni is refused before anything starts where it is not installed.
 */
export function labDatabaseOf(target: LabTarget): { replication: 'async' | 'sync'; provider: 'pg-promote' | 'patroni' } {
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
 * The lab as its daemon serves it, parts broken or not: a run killed after it killed the primary leaves the daemon,
 * the standby and the replicas running, and the rollbacks repair the rest. Null when the daemon is not running.
 */
async function runningLab(dir: string): Promise<LabInfo | null> {
  const f = await collectFacts(resolve(dir));
  // A lab serving from its secondary region (region loss without failback) runs without the primary's daemon.
  if (!f.live && f.regions?.globalFront?.active !== 'secondary') return null;
  // A dead primary has no PID; the database adapter reads each node's PID again when it needs one.
  return infoOf(resolve(dir), { ...f, pgPid: f.pgPid ?? 0 }, true);
}

/** A two-region lab whose primary daemon is gone while the global front, outside both regions, still runs. */
async function primaryRegionLost(dir: string): Promise<boolean> {
  const f = await collectFacts(resolve(dir));
  return f.config?.regions === 2 && !f.live && f.regions?.globalFront?.alive === true;
}

export const labTarget: TargetKind<'lab'> = {
  kind: 'lab',
  // backups: the lab's Azurite, with its primary as the database backed up. region: any lab, so that region-loss
  // on a one-region lab is refused by naming target.regions rather than a missing capability.
  capabilities: () => ['replicas', 'exec', 'load', 'database', 'backups', 'live-restore', 'region'],
  async open(target, say) {
    const dir = labDirOf(target);
    const database = labDatabaseOf(target);
    const t0 = performance.now();
    const info = await labUp({
      dir,
      replicas: target.replicas,
      replication: database.replication,
      provider: database.provider,
      archiveLagMs: target.archiveLagMs,
      logShipIntervalMs: target.logShipIntervalMs,
      ...(target.regions === 2 ? { regions: 2 as const, replicationLagMs: target.replicationLagMs } : {}),
      say,
    });
    say(
      info.alreadyRunning
        ? `lab already up in ${dir}: service ${info.serviceUrl} (left running after the drill)`
        : `lab up in ${((performance.now() - t0) / 1000).toFixed(1)}s: service ${info.serviceUrl}, ${target.replicas} replicas, PostgreSQL ${info.db.nodes.map((n) => `${n.name} ${n.role} on 127.0.0.1:${n.port}`).join(', ')} (${info.db.replication})`,
    );
    if (info.regions?.active === 'secondary')
      throw new UserError(
        `the lab in ${dir} serves from its secondary region (a region-loss drill ran without failback): its database is one restored node, not the pair a drill runs against`,
        {
          untouched: 'nothing: no load was sent and the lab was left serving as it is',
          next: "`drill lab status` shows it; `drill lab down` then this drill again starts the lab over in the primary region (the lab's data is disposable); a region-loss drill with `failback: true` brings the lab back to the primary itself",
        },
      );
    const env = { DRILL_LAB_DIR: dir, DRILL_SERVICE_URL: info.serviceUrl };
    const backups = await labBackupsAdapter(dir, { create: true });
    if (backups) say(`backups: ${backups.note}`);
    return {
      adapters: {
        exec: createExec(env),
        replicas: createLabReplicas(info),
        database: createLabDatabase(info),
        liveRestore: createLabLiveRestore(dir, async () => info.controlUrl),
        dataClasses: createLabDataClasses(dir),
        region: createLabRegion(dir),
        ...(backups ? { backups: backups.adapter } : {}),
      },
      serviceUrl: info.serviceUrl,
      details: {
        kind: 'lab',
        dir,
        replicas: target.replicas,
        // A two-region lab that recover must bring up again comes back with its secondary and replicator.
        ...(target.regions === 2 ? { regions: 2, replicationLagMs: target.replicationLagMs } : {}),
        ...(info.secondary ? { secondary: { url: info.secondary.url, account: info.secondary.account } } : {}),
        serviceUrl: info.serviceUrl,
        postgres: {
          host: info.db.host,
          port: info.db.port,
          endpointPort: info.db.endpointPort,
          database: info.db.database,
          replication: info.db.replication,
          provider: database.provider,
          primary: info.db.nodes[0]?.name,
          nodes: info.db.nodes.map((n) => ({ name: n.name, role: n.role, port: n.port })),
        },
        ...(backups ? { backups: backupsDetails(backups.adapter) } : {}),
      },
      async close() {
        if (!info.alreadyRunning) {
          await labDown({ dir });
          say(`lab down: ${dir}`);
        }
      },
    };
  },
  async peek(target) {
    const dir = labDirOf(target);
    const status = await labStatus({ dir });
    if (!status.up || !status.info) {
      return {
        adapters: null,
        serviceUrl: null,
        note: `lab in ${dir} is not running: \`drill run\` starts it; selections are resolved then`,
      };
    }
    if (status.info.regions?.active === 'secondary') {
      return {
        adapters: null,
        serviceUrl: status.info.serviceUrl,
        note: `lab in ${dir} serves from its secondary region (a region-loss drill ran without failback): \`drill run\` refuses it until \`drill lab down\` starts it over in the primary`,
      };
    }
    const backups = await labBackupsAdapter(dir, { create: false });
    return {
      adapters: {
        exec: createExec(),
        replicas: createLabReplicas(status.info),
        database: createLabDatabase(status.info),
        liveRestore: createLabLiveRestore(dir, async () => status.info!.controlUrl),
        region: createLabRegion(dir),
        ...(backups ? { backups: backups.adapter } : {}),
      },
      serviceUrl: status.info.serviceUrl,
      note: `lab in ${dir} is up: selections below are what a run now would hit`,
    };
  },
  async reopen(details, say) {
    const dir = String(details.dir);
    let info = await runningLab(dir);
    if (!info && (await primaryRegionLost(dir))) {
      // Bringing the lab up would restart the primary region under a runbook that was moving the load to the
      // secondary: the region-loss rollback finishes that runbook (or brings the primary back itself).
      say(
        `the primary region of the lab in ${dir} is down and the global front still runs: a region loss in progress, left for its rollback`,
      );
      return {
        adapters: { exec: createExec({ DRILL_LAB_DIR: dir }), region: createLabRegion(dir), dataClasses: createLabDataClasses(dir) },
      };
    }
    if (!info) {
      // The daemon is not running: nothing of the lab can be checked, and a lab left half up by a crash is repaired
      // by its own start-up (leftovers stopped, PostgreSQL restarted around lab.json's primary, the standby rebuilt).
      // Each rollback then checks its condition on the lab as it came up.
      const postgres = (details.postgres ?? {}) as { provider?: 'pg-promote' | 'patroni'; replication?: 'async' | 'sync' };
      say(`the lab in ${dir} is not running: bringing it up (as \`drill lab up\` does) to check what the run left; it stays up`);
      try {
        info = await labUp({
          dir,
          replicas: typeof details.replicas === 'number' ? details.replicas : undefined,
          provider: postgres.provider,
          replication: postgres.replication,
          ...(details.regions === 2 && typeof details.replicationLagMs === 'number'
            ? { regions: 2 as const, replicationLagMs: details.replicationLagMs }
            : {}),
          say,
        });
      } catch (e) {
        return { adapters: null, why: `the lab in ${dir} is not running and did not come up: ${(e as Error).message}` };
      }
    }
    if (info.regions?.active === 'secondary') {
      // The runbook finished before the crash: the secondary's single restored node serves, and no pair adapter
      // applies to it; the region-loss rollback checks and converges through the region adapter alone.
      return {
        adapters: {
          exec: createExec({ DRILL_LAB_DIR: dir, DRILL_SERVICE_URL: info.serviceUrl }),
          region: createLabRegion(dir),
          dataClasses: createLabDataClasses(dir),
        },
      };
    }
    return {
      adapters: {
        exec: createExec({ DRILL_LAB_DIR: dir, DRILL_SERVICE_URL: info.serviceUrl }),
        replicas: createLabReplicas(info),
        database: createLabDatabase(info),
        liveRestore: createLabLiveRestore(dir, async () => info!.controlUrl),
        dataClasses: createLabDataClasses(dir),
        region: createLabRegion(dir),
      },
    };
  },
};
