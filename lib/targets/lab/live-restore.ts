/**
 * The lab's live point-in-time restore: the newest base backup of the pair's cluster in the lab's backup store
 * plus archived WAL, restored beside the primary's data directory (`pg/<primary>/data.<runId>`, downloads and the
 * replay's log in `pitr/<runId>`), checked, promoted and kept running on a port of its own; only then the damaged
 * data directories go to `quarantine/<runId>/<node>` for forensics (with their server logs, dropped by `drill lab
 * down`), `pg/<primary>/data` becomes a link to the copy, lab.json names the copy's port and the endpoint follows.
 * The copy is never stopped and started again in between: a clean stop and a start cost seconds of the RTO. It
 * serves from where it was made because a running PostgreSQL keeps its configuration file's absolute path.
 * The standby is copied from the checked copy the same way (`pg/<standby>/data.<runId>`) and started there on a
 * port of its own while pg_amcheck still runs; once the service serves again, `pg/<standby>/data` becomes a link
 * to it and lab.json names its port.
 *
 * Every step decides from what it finds (files, servers), so a call after a crash at any point continues: a
 * checked copy carries a marker file and is never restored again, a linked one is only started and repaired.
 */
import { beginLiveRestore } from '../../adapters/live-restore-outcome.ts';
import { existsSync } from 'node:fs';
import { link, lstat, mkdir, readFile, readdir, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveRestoreAdapter, LiveRestoreOutcome, RestorePoint, RestoreTarget } from '../../adapters/types.ts';
import { clearStaleLock, crashCluster, giveToServerUser, isRunning, readNodeConf, startCluster } from '../../adapters/postgres/cluster.ts';
import { cloneStandby, setSyncStandby, takesWrite, waitStreaming, walSenders, withClient } from '../../adapters/postgres/standby.ts';
import { readCatalog, type CatalogEntry } from '../../adapters/postgres/backup/catalog.ts';
import { resolveBackupStore } from '../../adapters/postgres/backup/resolve.ts';
import { copyStandby } from '../../adapters/postgres/backup/standby-copy.ts';
import type { BackupStore } from '../../adapters/postgres/backup/store.ts';
import { ARCHIVE_SLOT, archiveWal, ensureArchiveSlot, startArchiveSlotAt } from '../../adapters/postgres/backup/wal.ts';
import {
  RESTORED_MARKER,
  clearRecoverySettings,
  controlSystemId,
  planArchive,
  readArchive,
  restoreToPoint,
  type RestoredMarker,
} from '../../adapters/postgres/backup/pitr.ts';
import { backupOnPath } from '../../backup/wal-gaps.ts';
import { parseLsn, stillToArrive } from '../../backup/wal-names.ts';
import { walFolder } from '../../backup/naming.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lab/azurite.ts';
import { RESTORED_COPY_PREFIX, labPaths } from '../../lab/paths.ts';
import { freeStablePort } from '../../lab/ports.ts';
import { superConn } from '../../lab/postgres/pair.ts';
import { LAB_DB } from '../../lab/postgres/status.ts';
import { readConfig } from '../../lab/state.ts';
import type { LabConfig } from '../../lab/types.ts';
import { recordNodePort, repointLab } from './database.ts';

/** How long a restore waits for the archive to receive the segment holding its target (the archive's lag bound). */
const ARCHIVE_WAIT_MS = 75_000;

export const quarantineRoot = (dir: string) => join(labPaths(dir).dir, 'quarantine');
const asideOf = (dir: string, runId: string) => join(labPaths(dir).dir, 'pitr', runId);

async function readMarker(dataDir: string): Promise<RestoredMarker | null> {
  const text = await readFile(join(dataDir, RESTORED_MARKER), 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text) as RestoredMarker;
  } catch {
    return null;
  }
}

async function labConfig(dir: string): Promise<LabConfig> {
  const c = await readConfig(labPaths(dir).config);
  if (!c) throw new Error(`${labPaths(dir).config} is missing: the lab in ${dir} is not set up`);
  return c;
}

const standbyOf = (c: LabConfig) => Object.keys(c.nodes).find((n) => n !== c.primary) ?? null;

/**
 * The lab's own Azurite, whatever the environment configures: the lab's WAL archiver (a daemon child, which gets
 * no user credential) takes the base backup and archives the WAL there, so that is the only place a restore of the
 * lab's database can find them. `drill backup` still follows the environment-first rule for the backups it takes.
 */
async function backupStore(dir: string): Promise<BackupStore> {
  const r = await resolveBackupStore({ lab: labBlobSource(dir), container: LAB_BACKUP_CONTAINER, env: {} });
  if ('missing' in r) throw new Error('unreachable: the lab container is always named');
  return r.store;
}

/**
 * The newest physical backup of the cluster that ended before the target (any, for latest) on the history of the
 * timeline the restore follows (not one taken on a branch an earlier restore abandoned). A newer one with a problem
 * is returned, so the restore reports it rather than silently using an older one.
 */
function pickPhysical(
  entries: CatalogEntry[],
  target: RestoreTarget,
  archive: { timeline: number; histories: ReadonlyMap<string, string> },
): CatalogEntry | null {
  const usable = entries.filter(
    (e) =>
      !e.manifest ||
      ((target === 'latest' || parseLsn(e.manifest.lsn.end) <= parseLsn(target.lsn)) &&
        backupOnPath(Math.max(archive.timeline, e.manifest.cluster.timeline), archive.histories, {
          timeline: e.manifest.cluster.timeline,
          endLsn: e.manifest.lsn.end,
        })),
  );
  return usable[usable.length - 1] ?? null;
}

export function createLabLiveRestore(dir: string, controlUrl: () => Promise<string>): LiveRestoreAdapter {
  const p = labPaths(dir);
  /**
   * The standby's copy from the restored copy, by run, while it still runs: the service serves before it ends, and
   * whatever comes next for the run (placing the standby, a failed restore's answer, the rollback's second call)
   * waits for it first, so two copies never race for the same folders and slot.
   */
  const standbyCopies = new Map<string, Promise<boolean>>();
  const standbyCopyDone = async (runId: string) => {
    await standbyCopies.get(runId);
    standbyCopies.delete(runId);
  };
  /** The standby's server log while it runs from its copy, hard-linked to the node's log once it is linked in. */
  const standbyLogOf = (runId: string) => join(asideOf(dir, runId), 'standby.log');
  const copyOf = (node: string, runId: string) => join(p.pg, node, RESTORED_COPY_PREFIX + runId.replace(/[^\w.-]/g, '_'));

  /** The system identifier of the lab's cluster: its quarantined nodes first (the run's own), else the nodes in place. */
  async function systemIdOf(config: LabConfig, runId?: string): Promise<string | null> {
    const q = runId ? join(quarantineRoot(dir), runId) : null;
    const candidates = [
      ...(q && existsSync(q) ? (await readdir(q)).map((n) => join(q, n)) : []),
      ...[config.primary, standbyOf(config)].filter((n): n is string => !!n).map((n) => p.node(n).data),
    ];
    for (const d of candidates) {
      const id = await controlSystemId(d);
      if (id) return id;
    }
    return null;
  }

  /**
   * Moves a node's data directory to the quarantine, under a fresh name when one is there already: the directory
   * itself when the node's path is a link to an earlier run's restored copy, and the link goes (a dangling one is
   * what a call cut short between the two left). Its server log goes beside it as `<name>.log`.
   */
  async function quarantine(runId: string, node: string): Promise<string | null> {
    const data = p.node(node).data;
    const st = await lstat(data).catch(() => null);
    if (!st) return null;
    const real = st.isSymbolicLink() ? await realpath(data).catch(() => null) : data;
    if (!real) {
      await unlink(data);
      return null;
    }
    const q = join(quarantineRoot(dir), runId);
    await mkdir(q, { recursive: true, mode: 0o755 });
    let to = join(q, node);
    for (let i = 2; existsSync(to); i++) to = join(q, `${node}-${i}`);
    // The killed postmaster's lock files name a PID that init may not have reaped yet (a zombie "exists"): left
    // there, a person who starts the quarantined copy for forensics with pg_ctl is refused.
    await clearStaleLock(real);
    await rename(real, to);
    if (real !== data) await unlink(data).catch(() => undefined);
    if (existsSync(p.node(node).log)) await rename(p.node(node).log, `${to}.log`);
    return to;
  }

  /**
   * The swap, once the copy is checked: the damaged nodes killed and moved to the quarantine, the primary's data
   * path linked to the copy (relative, so a copied lab folder keeps it), and the copy's server log, which it keeps
   * writing, given the node's log path too (a hard link: the restore's folder goes once the pair serves).
   */
  async function swapIn(runId: string, config: LabConfig, copy: string): Promise<void> {
    const primaryData = p.node(config.primary).data;
    await killNodes(config);
    for (const n of [standbyOf(config), config.primary]) if (n) await quarantine(runId, n);
    await symlink(basename(copy), primaryData);
    const copyLog = join(asideOf(dir, runId), 'postgres.log');
    if (existsSync(copyLog) && !existsSync(p.node(config.primary).log)) await link(copyLog, p.node(config.primary).log);
  }

  /** A port for the copy, outside the ephemeral range and none of lab.json's (a lost cluster's ports are free but taken). */
  async function copyPort(config: LabConfig, alsoTaken: number[] = []): Promise<number> {
    const taken = new Set([...Object.values(config.nodes).map((n) => n.port), ...alsoTaken]);
    for (;;) {
      const port = await freeStablePort();
      if (!taken.has(port)) return port;
    }
  }

  async function killNodes(config: LabConfig): Promise<string[]> {
    const killed: string[] = [];
    for (const n of Object.keys(config.nodes)) if (await crashCluster(p.node(n).data)) killed.push(n);
    return killed;
  }

  /** Waits for the archive to hold every segment up to the target's, nudging the primary when it is alive. */
  async function awaitArchive(
    store: BackupStore,
    entry: CatalogEntry,
    target: RestoreTarget,
    config: LabConfig,
    say: (l: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (target === 'latest') return;
    const primary = superConn(config.nodes[config.primary]!.port);
    const deadline = performance.now() + ARCHIVE_WAIT_MS;
    for (let round = 0; ; round++) {
      signal.throwIfAborted();
      const { plan, archived } = await planArchive(store, entry.manifest!, target);
      if (plan.missing.length === 0 && !plan.missingHistory) return;
      // A hole below a segment that did arrive is a gap no waiting fills, but the segments past the newest may still
      // come: wait for those, so the gap named is the hole alone and not the tail the archiver had not shipped yet.
      const tail = stillToArrive(plan.missing, archived);
      if ((tail.length === 0 && !plan.missingHistory) || performance.now() > deadline) return;
      const shipped = await withClient(primary, async (c) => {
        const slot = await c.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [ARCHIVE_SLOT]);
        if (slot.rows[0]?.active) {
          await c.query('SELECT pg_switch_wal()');
          return 'switched';
        }
        const r = await archiveWal(
          c,
          { host: '127.0.0.1', port: primary.port, user: primary.user, database: 'postgres' },
          store,
          entry.manifest!.cluster.name,
          signal,
        );
        return `shipped ${r.uploaded.length} segment(s) with a one-shot archive`;
      }).catch((e: Error) => `the primary did not answer (${e.message})`);
      if (round === 0) say(`waiting for the WAL archive to receive ${plan.missing.join(', ')}: ${shipped}`);
      await sleep(500);
    }
  }

  const standbyIdentity = (standby: string, port: number, primaryPort: number) => ({
    name: standby,
    port,
    socketDir: p.socketDir,
    primary: { host: '127.0.0.1', port: primaryPort, user: LAB_DB.superuser },
  });

  async function placeAndServe(
    runId: string,
    config: LabConfig,
    marker: RestoredMarker,
    out: LiveRestoreOutcome,
    onStep: (s: 'repoint' | 'standby', ms: number) => void,
    say: (l: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const primaryName = config.primary;
    const data = p.node(primaryName).data;
    const port = (await readNodeConf(data))?.port ?? config.nodes[primaryName]!.port;
    const standby = standbyOf(config);
    const sdata = standby ? p.node(standby).data : null;
    if (!(await isRunning(data))) {
      // Stopped since it was checked (the machine, or a person): it starts where it is, on its own port.
      await clearRecoverySettings(data);
      await startCluster(data, { logFile: p.node(primaryName).log, timeoutMs: 120_000 });
      say(`restored copy started again as primary ${primaryName} on port ${port}`);
    }
    const conn = superConn(port);
    // WAL from now on stays until the archive has it; the restored cluster has no slot (a base backup copies none),
    // or one made by the restore before a harness died, held from where its timeline begins.
    await withClient(conn, (c) => (marker.reachedLsn ? startArchiveSlotAt(c, marker.reachedLsn) : ensureArchiveSlot(c)));
    let t = performance.now();
    await repointLab(dir, await controlUrl(), { name: primaryName, host: '127.0.0.1', port, role: 'primary', dataDir: data });
    onStep('repoint', performance.now() - t);
    signal.throwIfAborted();

    // The service serves again from here.
    t = performance.now();
    if (standby && sdata) {
      // The standby copied from the restored copy and started beside it while it was checked; a harness killed
      // during the copy left only its `.partial`, which the rebuild below replaces.
      await standbyCopyDone(runId);
      const seed = copyOf(standby, runId);
      await rm(`${seed}.partial`, { recursive: true, force: true });
      const seedWhole = existsSync(join(seed, 'PG_VERSION'));
      const linkedToSeed = async () => (await realpath(sdata).catch(() => null)) === (await realpath(seed));
      if (seedWhole && !(await linkedToSeed())) {
        // Normally nothing is there (the damaged standby went to the quarantine with the swap); anything else goes there too.
        await crashCluster(sdata);
        await quarantine(runId, standby);
        await symlink(basename(seed), sdata);
        const seedLog = standbyLogOf(runId);
        if (existsSync(seedLog) && !existsSync(p.node(standby).log)) await link(seedLog, p.node(standby).log);
      }
      let streaming = false;
      const waitForIt = (how: string) =>
        waitStreaming(conn, standby, { timeoutMs: 30_000, signal }).then(
          () => {
            say(`standby ${standby}, ${how}, streaming`);
            return true;
          },
          (e: Error) => {
            say(`standby ${standby}, ${how}, did not stream (${e.message.split('\n', 1)[0]}): built again`);
            return false;
          },
        );
      if (await isRunning(sdata))
        streaming = await waitForIt(
          seedWhole && (await linkedToSeed()) ? 'copied from the restored copy and started beside it' : 'already running',
        );
      else if (existsSync(join(sdata, 'backup_label')) && existsSync(join(sdata, 'standby.signal')))
        // Copied, but the harness died before starting it: its WAL from the copy's start is held by the slot made with the copy.
        streaming = await startCluster(sdata, { logFile: p.node(standby).log }).then(
          () => waitForIt('copied from the restored copy'),
          (e: Error) => {
            say(`standby ${standby} copied with the restore did not start (${e.message.split('\n', 1)[0]}): built again`);
            return false;
          },
        );
      if (!streaming) {
        await crashCluster(sdata);
        const id = standbyIdentity(standby, config.nodes[standby]!.port, port);
        const how = await copyStandby(conn, data, sdata, id, [RESTORED_MARKER]).then(
          () => 'copied from the running primary (pg_backup_start/stop)',
          async (e: Error) => {
            say(`standby ${standby}: the local copy failed (${e.message}); pg_basebackup instead`);
            await cloneStandby(conn, sdata, id);
            return 'rebuilt with pg_basebackup from the restored primary';
          },
        );
        await startCluster(sdata, { logFile: p.node(standby).log });
        await waitStreaming(conn, standby, { timeoutMs: 60_000, signal });
        say(`standby ${standby} ${how} and streaming`);
      }
      const standbyPort = (await readNodeConf(sdata))?.port;
      if (standbyPort) await recordNodePort(dir, standby, standbyPort);
      await setSyncStandby(conn, config.replication === 'sync' ? standby : null);
    }
    onStep('standby', performance.now() - t);
    out.replaced = true;
    out.quarantine = join(quarantineRoot(dir), runId);
    out.reachedLsn = marker.reachedLsn;
    out.newestCommitAt = marker.newestCommitAt;
  }

  return {
    where: `lab:${p.dir}`,
    steps: [
      { name: 'download', label: 'download' },
      { name: 'replay', label: 'replay' },
      { name: 'promote', label: 'promote' },
      { name: 'repoint', label: 'repoint' },
      { name: 'standby', label: 'standby' },
    ],
    quarantineOf: (runId) => join(quarantineRoot(dir), runId),

    async preflight({ table, signal }) {
      const problems: string[] = [];
      const config = await readConfig(p.config);
      if (!config)
        return { problems: [`the lab in ${dir} is not set up (no lab.json): run \`drill lab up\``], backup: null, archiveLagSeconds: null };
      if (config.provider === 'patroni')
        problems.push(
          'the live restore rebuilds the lab pair without Patroni, and this lab runs under Patroni: use a pg-promote lab (`drill lab up`, the default)',
        );
      const systemId = await systemIdOf(config);
      let backup: { folder: string; takenAt: string } | null = null;
      let archiveLagSeconds: number | null = null;
      try {
        const store = await backupStore(dir);
        if (!systemId) problems.push(`no data directory of the lab's cluster was found in ${p.pg}: nothing to restore`);
        else {
          const entries = await readCatalog(store, { kind: 'physical', cluster: systemId });
          const newest = entries[entries.length - 1];
          if (!newest)
            problems.push(
              `no physical base backup of this cluster (system identifier ${systemId}) in ${store.describe().container}: take one with \`drill backup --kind physical\``,
            );
          else if (newest.problem) problems.push(`the newest base backup ${newest.folder} cannot be restored: ${newest.problem}`);
          else backup = { folder: newest.folder, takenAt: newest.takenAt };
          let newestAt = 0;
          let segments = 0;
          for await (const b of store.container.listBlobsFlat({ prefix: walFolder(store.prefix, systemId) })) {
            segments++;
            newestAt = Math.max(newestAt, b.properties.lastModified?.getTime() ?? 0);
          }
          if (segments === 0)
            problems.push(`the WAL archive of this cluster in ${store.describe().container} is empty: WAL archiving is not running`);
          else archiveLagSeconds = Math.max(0, Math.round((Date.now() - newestAt) / 1000));
        }
      } catch (e) {
        problems.push(`the lab's backup store cannot be read: ${(e as Error).message}`);
      }
      if (table) {
        const primary = superConn(config.nodes[config.primary]!.port);
        const found = await withClient({ ...primary, database: LAB_DB.database }, (c) =>
          c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]),
        ).catch(() => null);
        if (signal.aborted) throw signal.reason;
        if (!found) problems.push(`the lab's primary does not answer: cannot check that table ${table} exists`);
        else if (!found.rows[0]?.t) problems.push(`table ${table} does not exist in database ${LAB_DB.database} of the lab`);
      }
      return { problems, backup, archiveLagSeconds };
    },

    async markRestorePoint(signal): Promise<RestorePoint> {
      const config = await labConfig(dir);
      signal.throwIfAborted();
      const r = await withClient(superConn(config.nodes[config.primary]!.port), (c) =>
        c.query<{ lsn: string; wal: string; id: string }>(
          `SELECT pg_current_wal_insert_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_insert_lsn()) AS wal,
                  (SELECT system_identifier::text FROM pg_control_system()) AS id`,
        ),
      );
      const row = r.rows[0]!;
      return { lsn: row.lsn, at: new Date().toISOString(), timeline: Number.parseInt(row.wal.slice(0, 8), 16), systemId: row.id };
    },

    async loseCluster(runId, signal) {
      const config = await labConfig(dir);
      signal.throwIfAborted();
      await killNodes(config);
      const nodes: string[] = [];
      for (const n of Object.keys(config.nodes)) if (await quarantine(runId, n)) nodes.push(n);
      return { quarantine: join(quarantineRoot(dir), runId), nodes };
    },

    async restoreLive({ runId, target, signal, onStep, log }): Promise<LiveRestoreOutcome> {
      const say = log ?? (() => {});
      const { out, step } = beginLiveRestore(onStep);
      try {
        const config = await labConfig(dir);
        if (config.provider === 'patroni') throw new Error('the lab runs under Patroni: the live restore only rebuilds a pg-promote pair');
        const primaryData = p.node(config.primary).data;
        let marker = await readMarker(primaryData);
        if (marker?.runId !== runId) {
          const aside = asideOf(dir, runId);
          const copy = copyOf(config.primary, runId);
          marker = await readMarker(copy);
          if (marker?.runId !== runId) {
            const systemId = await systemIdOf(config, runId);
            if (!systemId)
              throw new Error(
                `no data directory of the lab's cluster is left in ${p.pg} or the quarantine: its system identifier is unknown`,
              );
            const store = await backupStore(dir);
            const entries = await readCatalog(store, { kind: 'physical', cluster: systemId });
            const entry = pickPhysical(entries, target, await readArchive(store, systemId));
            if (!entry)
              throw new Error(
                `no physical base backup of this cluster (system identifier ${systemId}) ${target === 'latest' ? '' : `ended before ${target.lsn} `}in ${store.describe().container}`,
              );
            if (!entry.manifest) throw new Error(`the base backup ${entry.folder} cannot be restored: ${entry.problem}`);
            const standby = standbyOf(config);
            const standbyCopy = standby ? copyOf(standby, runId) : null;
            out.backup = { folder: entry.folder, takenAt: entry.takenAt, bytes: entry.manifest.blob.bytes };
            await awaitArchive(store, entry, target, config, say, signal);
            const port = await copyPort(config);
            // A standby a cut-short call started from its copy streams from a copy about to be restored again.
            if (standbyCopy) await crashCluster(standbyCopy);
            await mkdir(dirname(copy), { recursive: true, mode: 0o755 });
            await giveToServerUser(dirname(copy));
            const r = await restoreToPoint({
              store,
              manifest: entry.manifest,
              folder: entry.folder,
              target,
              systemId,
              root: aside,
              dataDir: copy,
              port,
              socketDir: p.socketDir,
              database: LAB_DB.database,
              runId,
              signal,
              onStep: step,
              log: say,
              standby:
                standby && standbyCopy
                  ? {
                      dataDir: standbyCopy,
                      id: standbyIdentity(standby, await copyPort(config, [port]), port),
                      logFile: standbyLogOf(runId),
                    }
                  : undefined,
              holdWalForArchive: true,
              keepRunning: true,
            });
            out.missingSegments = r.missingSegments;
            if (r.standbyCopied) standbyCopies.set(runId, r.standbyCopied);
            if (!r.ok || !r.marker) throw new Error(r.problem ?? 'the restore did not complete');
            marker = r.marker;
          }
          await swapIn(runId, config, copy);
          out.replaced = true;
          say(`damaged data directories moved to ${join(quarantineRoot(dir), runId)}; ${primaryData} is now the restored copy (${copy})`);
        }
        out.backup ??= { folder: marker.backupFolder, takenAt: '', bytes: 0 };
        out.replaced = true;
        await placeAndServe(runId, config, marker, out, step, say, signal);
        // Only the downloads' leftovers and the replay's log remain there: a failed restore keeps them to read.
        await rm(asideOf(dir, runId), { recursive: true, force: true });
        out.ok = true;
      } catch (e) {
        out.problem = (e as Error).message;
      }
      await standbyCopyDone(runId);
      if (existsSync(join(quarantineRoot(dir), runId))) out.quarantine = join(quarantineRoot(dir), runId);
      return out;
    },

    async restoredAndWhole(runId, signal) {
      const config = await readConfig(p.config);
      if (!config) return { ok: false, detail: `the lab in ${dir} has no lab.json` };
      const marker = await readMarker(p.node(config.primary).data);
      if (marker?.runId !== runId)
        return { ok: false, detail: `primary ${config.primary} does not serve the database restored for ${runId}` };
      signal.throwIfAborted();
      const endpoint = (await readConfig(p.config)) && (await daemonEndpoint(dir));
      const w = await takesWrite(
        { host: '127.0.0.1', port: endpoint ?? config.nodes[config.primary]!.port, user: LAB_DB.superuser, database: LAB_DB.database },
        endpoint ? `the lab endpoint 127.0.0.1:${endpoint}` : `primary ${config.primary}`,
      );
      if (!w.ok) return { ok: false, detail: w.detail };
      const standby = standbyOf(config);
      if (standby) {
        // The node itself: a standby still running only from its copy, not linked in, is not the lab's standby yet.
        const sdata = p.node(standby).data;
        if (!(await isRunning(sdata))) return { ok: false, detail: `standby ${standby} does not run from ${sdata}` };
        const port = (await readNodeConf(sdata))?.port;
        if (port !== config.nodes[standby]!.port)
          return {
            ok: false,
            detail: `lab.json names port ${config.nodes[standby]!.port} for standby ${standby}, which listens on ${port}`,
          };
      }
      const senders = await walSenders(superConn(config.nodes[config.primary]!.port)).catch(() => []);
      const streaming = standby ? senders.some((s) => s.applicationName === standby && s.state === 'streaming') : true;
      if (!streaming) return { ok: false, detail: `standby ${standby} is not streaming from the restored primary` };
      const archiving = senders.some((s) => s.state === 'streaming' && !Object.keys(config.nodes).includes(s.applicationName));
      return {
        ok: true,
        detail: `primary ${config.primary} serves the database restored from ${marker.backupFolder} to ${marker.reachedLsn}; ${w.detail}; standby ${standby} streaming; WAL archive ${archiving ? 'receiving' : `slot ${ARCHIVE_SLOT} holding WAL for the archive`}`,
      };
    },
  };
}

async function daemonEndpoint(dir: string): Promise<number | null> {
  const text = await readFile(labPaths(dir).daemonState, 'utf8').catch(() => null);
  if (!text) return null;
  try {
    return (JSON.parse(text) as { ports?: { dbEndpoint?: number } }).ports?.dbEndpoint ?? null;
  } catch {
    return null;
  }
}
