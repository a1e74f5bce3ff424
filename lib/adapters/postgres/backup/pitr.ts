/**
 * A point-in-time restore into a data directory that nobody uses yet: a physical base backup from Blob plus
 * archived WAL, replayed to just before an LSN (`recovery_target_inclusive = false`) or through every archived
 * segment (`latest`), checked, promoted, then stopped cleanly so the caller can put it where the live one was, or
 * kept running where it was made for the caller to serve from.
 * Everything that can refuse the restore (another cluster's backup, a gap in the archive, a corrupt base backup)
 * is checked before replay; a segment whose download fails while replay runs, and a replay that does not stop at
 * the target, refuse it before anything is put in place, so a refusal leaves the live cluster as it was.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { downloadToFileParallel } from '../../blob/index.ts';
import { BlobTransferError } from '../../blob/errors.ts';
import { walFolder } from '../../../backup/naming.ts';
import type { BackupManifest } from '../../../backup/manifest.ts';
import { newestTimeline, planWal, type WalPlan } from '../../../backup/wal-gaps.ts';
import { parseLsn, parseSegmentName } from '../../../backup/wal-names.ts';
import type { RestoreTarget } from '../../types.ts';
import { PRIMARY_TIMELINE_SQL } from './facts.ts';
import { giveToServerUser, isRoot, runServerBinary, startCluster, stopCluster, writeNodeConf } from '../cluster.ts';
import { run } from './scratch.ts';
import { copyStandby } from './standby-copy.ts';
import type { StandbyIdentity } from '../standby.ts';
import { getText, type BackupStore } from './store.ts';
import { lastLines, runTool } from './tools.ts';
import { ensureArchiveSlot, listArchivedWal, startArchiveSlotAt } from './wal.ts';

/**
 * Left in a restored data directory once it was checked and stopped cleanly (or, with keepRunning, promoted and
 * serving): the restore need not run again.
 */
export const RESTORED_MARKER = 'drill-restored.json';

export interface RestoredMarker {
  runId: string;
  backupFolder: string;
  reachedLsn: string | null;
  newestCommitAt: string | null;
  timeline: number | null;
  restoredAt: string;
}

export type PitrStep = 'download' | 'replay' | 'promote';

export interface PitrRequest {
  store: BackupStore;
  manifest: BackupManifest;
  folder: string;
  target: RestoreTarget;
  /** The live cluster's system identifier: a backup of another cluster is refused. */
  systemId: string;
  /** Folder for the downloads (`download/`, `wal/`), the copy's server log and, by default, the restored `data/`; made here. */
  root: string;
  /**
   * Where the restored data directory goes when not `<root>/data`: a copy kept running serves from where it was
   * made, since a running server's configuration paths cannot move (see the lab's live restore).
   */
  dataDir?: string;
  /** Where the restored copy listens while it is checked (never the live node's port). */
  port: number;
  socketDir: string;
  /** The database pg_amcheck checks (besides postgres). */
  database: string;
  runId: string;
  signal?: AbortSignal;
  onStep?: (step: PitrStep, ms: number) => void;
  log?: (line: string) => void;
  /**
   * Leave the promoted copy running on `port`, its recovery settings cleared, instead of stopping it: for a restore
   * that serves where it was made (the secondary region's, the lab's), so the clean stop and a second start are not
   * paid for.
   */
  keepRunning?: boolean;
  /** pg_amcheck the copy after promotion (default true); a restore that must serve fast may leave it to the caller. */
  amcheck?: boolean;
  /**
   * A standby to copy from the restored copy, begun while pg_amcheck checks it (a low-level base backup, its slot
   * made in the copy), left at `dataDir` for the caller to move into place: it streams from `id.primary` once the
   * restored copy runs there. With `keepRunning` the restore returns once the copy is checked, the standby's copy
   * still going (`PitrResult.standbyCopied`), so the caller serves without waiting for it. Best effort: when the
   * copy fails the restore goes on, and the caller builds the standby after.
   * With `logFile` the standby is started there as soon as its copy is in place (on `id.port`, streaming from the
   * copy), so its start is off the serving path too; `standbyCopied` then settles once it has started.
   */
  standby?: { dataDir: string; id: StandbyIdentity; logFile?: string };
  /**
   * The restored copy holds its WAL for the archive (slot drill_wal_archive) from its promotion on: the standby's
   * copy switches segments before the copy runs where the archiver reads, and none of the new timeline may be missing.
   */
  holdWalForArchive?: boolean;
}

export interface PitrResult {
  ok: boolean;
  problem: string | null;
  missingSegments: string[];
  dataDir: string;
  marker: RestoredMarker | null;
  bytes: number;
  /**
   * Settles (never rejects) once the standby's copy is at `standby.dataDir` (true) or has failed (false); null when
   * none was asked for. On a failed restore it has already settled: nothing writes into the folders after the answer.
   */
  standbyCopied: Promise<boolean> | null;
}

class Refused extends Error {
  constructor(
    message: string,
    readonly missing: string[] = [],
  ) {
    super(message);
  }
}

/** The archive's names, its .history files' contents, and its newest timeline (what `recovery_target_timeline = latest` follows). */
export async function readArchive(
  store: BackupStore,
  cluster: string,
): Promise<{ archived: string[]; histories: Map<string, string>; timeline: number }> {
  const archived = await listArchivedWal(store, cluster);
  const histories = new Map<string, string>();
  const folder = walFolder(store.prefix, cluster);
  for (const f of archived.filter((x) => x.endsWith('.history'))) {
    const text = await getText(store, folder + f);
    if (text !== null) histories.set(f, text);
  }
  return { archived, histories, timeline: newestTimeline(archived) };
}

/** The archive's segments against what the backup needs to reach the target: read-only, before anything downloads. */
export async function planArchive(
  store: BackupStore,
  manifest: BackupManifest,
  target: RestoreTarget,
): Promise<{ plan: WalPlan; archived: string[]; histories: Map<string, string> }> {
  const start = manifest.walStartSegment;
  if (!start) throw new Refused(`the backup's manifest names no first WAL segment: it cannot be replayed to a point in time`);
  const { archived, histories, timeline: newest } = await readArchive(store, manifest.cluster.name);
  const timeline = Math.max(newest, parseSegmentName(start)?.timeline ?? 1);
  const plan = planWal({
    startSegment: start,
    timeline,
    target: target === 'latest' ? 'latest' : { lsn: target.lsn },
    archived,
    histories,
  });
  return { plan, archived, histories };
}

export async function restoreToPoint(r: PitrRequest): Promise<PitrResult> {
  const m = r.manifest;
  const say = r.log ?? (() => {});
  const dataDir = r.dataDir ?? join(r.root, 'data');
  const out: PitrResult = { ok: false, problem: null, missingSegments: [], dataDir, marker: null, bytes: 0, standbyCopied: null };
  let started = false;
  let downloads: Downloads | null = null;
  try {
    if (m.kind !== 'physical') throw new Refused(`${r.folder} is a ${m.kind} backup: a point-in-time restore needs a physical one`);
    if (m.cluster.systemIdentifier !== r.systemId)
      throw new Refused(
        `${r.folder} is a backup of another cluster: its system identifier ${m.cluster.systemIdentifier} is not the live cluster's ${r.systemId}`,
      );
    const { plan, histories } = await planArchive(r.store, m, r.target);
    if (plan.missingHistory)
      throw new Refused(`the WAL archive lacks ${plan.missingHistory}: the timeline's history cannot be followed`, [plan.missingHistory]);
    if (plan.missing.length > 0)
      throw new Refused(
        `the WAL archive misses segment${plan.missing.length === 1 ? '' : 's'} ${plan.missing.join(', ')} between the backup's ${m.walStartSegment} and ${plan.last}: no restore can pass the gap`,
        plan.missing,
      );
    if (plan.needed.length === 0) throw new Refused(`the WAL archive holds no segment from the backup's ${m.walStartSegment} on`);

    let t = performance.now();
    // A copy left half-done by a crashed call may still be running from here: stopped before it is replaced.
    await stopCluster(dataDir, 'immediate', { timeoutMs: 30_000 });
    await rm(r.root, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
    const dl = join(r.root, 'download');
    const walDir = join(r.root, 'wal');
    for (const d of [r.root, dl, walDir]) await mkdir(d, { recursive: true, mode: 0o755 });
    for (const [f, text] of histories) await writeFile(join(walDir, f), text);
    const restoreCommand = await writeRestoreCommand(r.root, walDir, plan.needed);
    const tar = join(dl, 'base.tar');
    downloads = startDownloads(r, plan.needed, tar, walDir, out);
    await downloads.base;
    say(`downloaded and checked ${r.folder} (${(m.blob.bytes / 1e6).toFixed(1)} MB); replay starts while the WAL still downloads`);
    const walDone = downloads.wal.then(async (failure) => {
      if (failure) {
        // The restore_command stops waiting for segments that will not come; the replay then ends short of the target.
        await writeFile(join(r.root, WAL_FAILED), `${failure.message}\n`).catch(() => undefined);
        return failure;
      }
      r.onStep?.('download', performance.now() - t);
      say(`downloaded ${r.folder} and ${plan.needed.length} WAL segment(s) up to ${plan.last} (${(out.bytes / 1e6).toFixed(1)} MB)`);
      return null;
    });
    let walFailure: Error | null = null;
    void walDone.then((f) => {
      walFailure = f;
    });

    const tReplay = performance.now();
    await mkdir(dataDir, { mode: 0o700 });
    await run('tar', ['-xf', tar, '-C', dataDir]);
    await rm(tar, { force: true });
    await configureRecovery(dataDir, restoreCommand, r);
    if (isRoot()) await run('chown', ['-R', 'postgres:postgres', r.root, ...(r.dataDir ? [dataDir] : [])]);
    // The manifest said whose backup it is; the copy's own pg_control says it too, and a mislabelled one is refused here.
    const copyId = await controlSystemId(dataDir);
    if (copyId !== r.systemId)
      throw new Refused(
        `${r.folder} holds a data directory of another cluster: its pg_control names system identifier ${copyId ?? 'none'}, not the live cluster's ${r.systemId}`,
      );
    await giveToServerUser(r.root);
    const logFile = join(r.root, 'postgres.log');
    started = true;
    try {
      await startCluster(dataDir, { logFile, timeoutMs: 600_000 });
    } catch (e) {
      throw (
        (await Promise.race([walDone, sleep(0, null)])) ??
        new Refused(`recovery did not start: ${await recoveryFailure(logFile, (e as Error).message)}`)
      );
    }
    const conn = { host: '127.0.0.1', port: r.port, user: 'postgres', database: 'postgres' };
    // Promotion is asked for before the target is reached. In archive recovery (not a standby) PostgreSQL looks for
    // it only once it stops at the target, and then promotes at once: an end-of-recovery record, the checkpoint left
    // to the background. Pausing there and resuming instead ends recovery with a checkpoint the promotion waits
    // for (0.85 s of a 100 MB restore), and a paused server looks for a promotion only once a second. Where replay
    // stopped is read from the server's log below either way; a copy that paused all the same is resumed.
    if (r.target !== 'latest') await query(conn, 'SELECT pg_promote(false)').catch(() => undefined);
    const reached = await waitReplayed(conn, r.target, logFile, r.signal, () => walFailure);
    const failure = await walDone;
    if (failure) throw failure;
    if (r.target !== 'latest') await checkStoppedAtTarget(logFile, r.target.lsn, reached.lsn);
    r.onStep?.('replay', performance.now() - tReplay);
    say(`replayed to ${reached.lsn ?? '?'} (newest commit ${reached.commitAt ?? 'none replayed'})`);

    t = performance.now();
    if (reached.paused) await query(conn, 'SELECT pg_wal_replay_resume()');
    await waitPromoted(conn, r.signal);
    r.onStep?.('promote', performance.now() - t);
    if (r.holdWalForArchive) {
      const c = new pg.Client({ ...conn, connectionTimeoutMillis: 2000 });
      c.on('error', () => {});
      await c.connect();
      try {
        if (reached.lsn) await startArchiveSlotAt(c, reached.lsn);
        else await ensureArchiveSlot(c);
      } finally {
        await c.end().catch(() => {});
      }
    }

    const seed = r.standby;
    const amcheckArgs = ['-h', '127.0.0.1', '-p', String(r.port), '-U', 'postgres', '--install-missing'];
    amcheckArgs.push('--jobs', String(AMCHECK_JOBS), '-d', r.database, '-d', 'postgres');
    const tCheck = performance.now();
    out.standbyCopied = seed
      ? copyStandby(conn, dataDir, seed.dataDir, seed.id, [RESTORED_MARKER])
          .then(async () => {
            say(`standby ${seed.id.name} copied from the restored copy (${((performance.now() - tCheck) / 1000).toFixed(2)} s)`);
            if (!seed.logFile) return true;
            await startCluster(seed.dataDir, { logFile: seed.logFile, timeoutMs: 60_000 });
            say(
              `standby ${seed.id.name} started from ${seed.dataDir} on port ${seed.id.port} (${((performance.now() - tCheck) / 1000).toFixed(2)} s)`,
            );
            return true;
          })
          .catch((e: Error) => {
            say(
              `standby ${seed.id.name} not made from the restored copy (${e.message.split('\n', 1)[0]}): it is built once the primary runs`,
            );
            return false;
          })
      : null;
    const am =
      r.amcheck === false
        ? null
        : await runTool(
            'pg_amcheck',
            // A relation per job: a table's own check (following every TOAST pointer) beside its TOAST table's.
            amcheckArgs,
            { signal: r.signal },
          )
            .catch((e: Error) => ({ code: null, stdout: '', stderr: e.message }))
            .then((x) => {
              if (x.code === 0)
                say(`pg_amcheck found no problem in ${r.database} and postgres (${((performance.now() - tCheck) / 1000).toFixed(2)} s)`);
              return x;
            });
    // Stopped below, the copy's source must hold still until the standby's copy is done.
    if (!r.keepRunning) await out.standbyCopied;
    if (am && am.code !== 0)
      throw new Refused(`pg_amcheck found problems in the restored copy (exit ${am.code}): ${lastLines(am.stdout + am.stderr)}`);
    const tli = await query<{ tli: number }>(conn, `SELECT ${PRIMARY_TIMELINE_SQL} AS tli`).catch(() => null);
    if (r.keepRunning) await clearRecoverySettings(dataDir);
    else {
      await stopCluster(dataDir, 'fast', { timeoutMs: 60_000 });
      started = false;
    }
    out.marker = {
      runId: r.runId,
      backupFolder: r.folder,
      reachedLsn: reached.lsn,
      newestCommitAt: reached.commitAt,
      timeline: tli ? Number(tli.tli) : null,
      restoredAt: new Date().toISOString(),
    };
    // Written last: its presence says the copy is whole, checked and cleanly stopped.
    await writeFile(join(dataDir, RESTORED_MARKER), `${JSON.stringify(out.marker, null, 2)}\n`, { mode: 0o600 });
    await giveToServerUser(join(dataDir, RESTORED_MARKER));
    await rm(walDir, { recursive: true, force: true });
    say(
      r.keepRunning
        ? `restored copy promoted and serving on port ${r.port} from ${dataDir}`
        : `restored copy checked and stopped cleanly in ${dataDir}`,
    );
    out.ok = true;
  } catch (e) {
    out.problem = (e as Error).message;
    if (e instanceof Refused) out.missingSegments = e.missing;
    if (started) await stopCluster(dataDir, 'immediate', { timeoutMs: 30_000 }).catch(() => undefined);
    // Nothing may still write into the folder once the caller has the answer.
    await out.standbyCopied;
    // A standby started from its copy would stream from a copy now stopped, for nobody.
    if (r.standby?.logFile) await stopCluster(r.standby.dataDir, 'immediate', { timeoutMs: 30_000 }).catch(() => undefined);
    downloads?.stop.abort();
    await downloads?.settled;
  }
  return out;
}

/** pg_amcheck's connections to the copy, which serves no one yet: one per core, at most four. */
const AMCHECK_JOBS = Math.min(4, availableParallelism());

/** Left beside the WAL folder when a segment's download failed: the restore_command then stops waiting. */
const WAL_FAILED = 'wal-download-failed';

interface Downloads {
  /** The base backup on disk, its sha256 checked; rejects with the refusal. */
  base: Promise<void>;
  /** Every planned segment on disk; resolves with the refusal when one could not be had (never rejects). */
  wal: Promise<Refused | null>;
  stop: AbortController;
  settled: Promise<unknown>;
}

/**
 * The base backup first, with most of the bandwidth, since replay cannot start without it; the segments in order
 * beside it, one at a time until the base backup is in and three at a time after, so replay finds each segment
 * landed (or waits for it in the restore_command) while the later ones still download. A segment is renamed into
 * place only whole, so the restore_command never hands PostgreSQL a partial one. The first failure stops the rest.
 */
function startDownloads(r: PitrRequest, needed: string[], tar: string, walDir: string, out: PitrResult): Downloads {
  const m = r.manifest;
  const stop = new AbortController();
  const signal = r.signal ? AbortSignal.any([r.signal, stop.signal]) : stop.signal;
  const base = (async () => {
    try {
      const got = await downloadToFileParallel(r.store.container.getBlobClient(m.blob.name), tar, {
        expectedBytes: m.blob.bytes,
        expectedSha256: m.blob.sha256,
        concurrency: 4,
        signal,
      });
      out.bytes += got.bytes;
    } catch (e) {
      stop.abort();
      r.signal?.throwIfAborted();
      throw new Refused(
        `the base backup ${m.blob.name} could not be used: ${e instanceof BlobTransferError ? `${e.message} (${e.code})` : (e as Error).message}`,
      );
    }
  })();
  const folder = walFolder(r.store.prefix, m.cluster.name);
  const queue = [...needed];
  const segments = async (): Promise<void> => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      try {
        const got = await downloadToFileParallel(r.store.container.getBlobClient(folder + f), join(walDir, f), { concurrency: 2, signal });
        out.bytes += got.bytes;
      } catch (e) {
        if (stop.signal.aborted) return;
        stop.abort();
        // Listed in the archive when planned: a failed read, not a gap (a gap is what the plan found missing).
        throw new Refused(`WAL segment ${f} could not be downloaded: ${(e as Error).message}`);
      }
    }
  };
  const first = segments();
  const more = base.then(
    () => Promise.all([segments(), segments()]),
    () => undefined,
  );
  const wal = Promise.all([first, more]).then(
    () => (signal.aborted ? new Refused(`the WAL download was stopped: ${String(r.signal?.reason ?? 'a download failed')}`) : null),
    (e: Refused) => e,
  );
  return { base, wal, stop, settled: Promise.allSettled([base, wal]) };
}

/**
 * The restore_command of this restore (`%f %p`): a planned segment not downloaded yet is waited for, so replay
 * starts as soon as the base backup is in; any other name PostgreSQL asks for (the next timeline's history) is
 * answered "not archived" at once. Gives up when the download failed, or after ten minutes.
 */
async function writeRestoreCommand(root: string, walDir: string, planned: string[]): Promise<string> {
  const list = join(root, 'wal-planned');
  await writeFile(list, `${planned.join('\n')}\n`);
  const script = join(root, 'restore-wal.sh');
  const wal = shellQuote(walDir);
  await writeFile(
    script,
    `#!/bin/sh
f="$1"
if [ ! -f ${wal}/"$f" ]; then
  grep -qxF "$f" ${shellQuote(list)} || exit 1
  i=0
  while [ ! -f ${wal}/"$f" ]; do
    [ -f ${shellQuote(join(root, WAL_FAILED))} ] && exit 1
    i=$((i + 1))
    [ "$i" -gt 12000 ] && exit 1
    sleep 0.05
  done
fi
exec cp ${wal}/"$f" "$2"
`,
    { mode: 0o755 },
  );
  return `/bin/sh ${shellQuote(script)} %f %p`;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/**
 * PostgreSQL's own word that replay stopped at the target and not elsewhere: a pause for another reason (a
 * setting lower than on the primary pauses recovery too) is not the target reached.
 */
async function checkStoppedAtTarget(logFile: string, target: string, reached: string | null): Promise<void> {
  const log = await readFile(logFile, 'utf8').catch(() => '');
  const stopped = [...log.matchAll(/recovery stopping before WAL location \(LSN\) "([0-9A-F]+\/[0-9A-F]+)"/g)].map((x) => x[1]!);
  const at = stopped[stopped.length - 1];
  if (!at || parseLsn(at) !== parseLsn(target))
    throw new Refused(
      `replay ended, but not at the target ${target}: the server's log ${at ? `says it stopped before ${at}` : 'does not say it stopped at the target'}`,
    );
  if (reached && parseLsn(reached) > parseLsn(target))
    throw new Refused(`replay went past the target: it reached ${reached}, the target is ${target} (exclusive)`);
}

const AUTO_CONF_HEADER = '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';

/**
 * The copy's own port and socket, and recovery settings in a postgresql.auto.conf written whole: the source's
 * (synchronous_standby_names, primary_conninfo) must not come along. `pause` at the target, not `promote`: the pause
 * is where PostgreSQL looks for a promotion asked for (and then promotes without waiting for a checkpoint), while
 * `promote` ends recovery with one. PostgreSQL 15 stops with FATAL when the WAL ends before the target.
 */
async function configureRecovery(dataDir: string, restoreCommand: string, r: PitrRequest): Promise<void> {
  await writeNodeConf(dataDir, { port: r.port, socketDir: r.socketDir });
  const target =
    r.target === 'latest'
      ? []
      : [`recovery_target_lsn = '${r.target.lsn}'`, 'recovery_target_inclusive = false', "recovery_target_action = 'pause'"];
  const lines = [`restore_command = '${restoreCommand.replace(/'/g, "''")}'`, "recovery_target_timeline = 'latest'", ...target];
  await writeFile(join(dataDir, 'postgresql.auto.conf'), `${AUTO_CONF_HEADER}${lines.join('\n')}\n`, { mode: 0o600 });
  for (const f of ['standby.signal', 'postmaster.pid', RESTORED_MARKER]) await rm(join(dataDir, f), { force: true });
  await writeFile(join(dataDir, 'recovery.signal'), '');
}

/** The system identifier in a data directory's pg_control, read with pg_controldata (no server needed); null without one. */
export async function controlSystemId(dataDir: string): Promise<string | null> {
  if (!existsSync(join(dataDir, 'global', 'pg_control'))) return null;
  const r = await runServerBinary('pg_controldata', ['-D', dataDir], 15_000);
  return /Database system identifier:\s+(\d+)/.exec(r.stdout)?.[1] ?? null;
}

/** After promotion: the recovery settings go, so the copy starts as a plain primary wherever it is put. */
export async function clearRecoverySettings(dataDir: string): Promise<void> {
  await writeFile(join(dataDir, 'postgresql.auto.conf'), AUTO_CONF_HEADER, { mode: 0o600 });
  await giveToServerUser(join(dataDir, 'postgresql.auto.conf'));
}

async function query<T extends pg.QueryResultRow>(conn: pg.ClientConfig, sql: string): Promise<T> {
  const c = new pg.Client({ ...conn, connectionTimeoutMillis: 2000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows[0]!;
  } finally {
    await c.end().catch(() => {});
  }
}

async function recoveryFailure(logFile: string, fallback: string): Promise<string> {
  const log = await readFile(logFile, 'utf8').catch(() => '');
  if (/recovery ended before configured recovery target was reached/.test(log))
    return 'the archived WAL ended before the recovery target was reached (PostgreSQL: "recovery ended before configured recovery target was reached"): the archive does not yet hold the WAL up to the target';
  const fatal = log
    .split('\n')
    .filter((l) => /FATAL|PANIC/.test(l))
    .slice(-2)
    .join(' / ');
  return fatal || lastLines(fallback, 6);
}

/** Until replay stopped at the target (promoted there, or paused) or recovery ended (latest); the server exiting is read from its log. */
async function waitReplayed(
  conn: pg.ClientConfig,
  target: RestoreTarget,
  logFile: string,
  signal: AbortSignal | undefined,
  downloadFailure: () => Error | null,
): Promise<{ lsn: string | null; commitAt: string | null; paused: boolean }> {
  let failures = 0;
  for (;;) {
    signal?.throwIfAborted();
    const failed = downloadFailure();
    if (failed) throw failed;
    try {
      const s = await query<{ rec: boolean; state: string | null; lsn: string | null; at: Date | null }>(
        conn,
        `SELECT pg_is_in_recovery() AS rec, CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS state,
                pg_last_wal_replay_lsn()::text AS lsn, pg_last_xact_replay_timestamp() AS at`,
      );
      failures = 0;
      // Out of recovery: promoted where it stopped (the caller reads where from the log), or at the archive's end.
      const paused = s.state === 'paused';
      if (!s.rec || (target !== 'latest' && paused)) return { lsn: s.lsn, commitAt: s.at ? s.at.toISOString() : null, paused };
    } catch (e) {
      if (e instanceof Refused) throw e;
      // The server gone for good: recovery failed, and its log says why.
      if (++failures >= 20) throw new Refused(`recovery stopped: ${await recoveryFailure(logFile, (e as Error).message)}`);
    }
    await sleep(100);
  }
}

async function waitPromoted(conn: pg.ClientConfig, signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    signal?.throwIfAborted();
    const r = await query<{ rec: boolean }>(conn, 'SELECT pg_is_in_recovery() AS rec').catch(() => null);
    if (r && !r.rec) return;
    await sleep(50);
  }
  throw new Refused('the restored copy was not promoted within 120 s');
}
