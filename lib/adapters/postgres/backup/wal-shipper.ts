/**
 * Continuous WAL archiving: `pg_receivewal` streams from the physical slot drill_wal_archive into a
 * spool folder on disk, and every segment it completes (and every timeline history file) is uploaded to
 * the Blob WAL folder once. The slot moves on only as pg_receivewal fsyncs segments into the spool, and a
 * spooled segment is removed only once it is in Blob, so a crash of either side leaves no hole. The
 * newest uploaded segment stays in the spool: pg_receivewal resumes after the newest file it finds.
 *
 * So that the archive never lags more than `archiveLagMs`, the shipper closes the current segment
 * (pg_switch_wal) once the oldest WAL not in the archive is half that old, as archive_timeout does.
 *
 * A small state file says how far the archive reaches, so `drill lab status` (another process) can tell
 * the archive's lag and a stopped shipper apart from a healthy one.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { uploadStream } from '../../blob/index.ts';
import { walFolder } from '../../../backup/naming.ts';
import { UserError } from '../../../errors.ts';
import { writeJsonAtomic } from '../../../util/atomic-file.ts';
import { isProcessUnder, terminate } from '../../../util/proc.ts';
import { readJsonFile } from './wal-state.ts';
import { clusterIdentity } from './facts.ts';
import { connect } from './logical.ts';
import { describeSource, type PgSource } from './source.ts';
import { ensureContainer, type BackupStore } from './store.ts';
import { lastLines, startTool } from './tools.ts';
import { ARCHIVE_SLOT, ensureArchiveSlot } from './wal.ts';
import {
  archiveLagMs,
  compareFollowed,
  gapsOf,
  pruneSamples,
  segmentsOnTheWay,
  shouldSwitch,
  type LsnSample,
  type SegmentGap,
} from './wal-segments.ts';
import {
  HISTORY_FILE,
  formatLsn,
  historyFileName,
  parseHistory,
  parseLsn,
  parseSegmentName,
  segmentEnd,
  segmentName,
  type SegmentId,
} from '../../../backup/wal-names.ts';
import type { WalArchiveHole, WalArchiveState } from './wal-state.ts';

export type ShipperEvent =
  | { type: 'connected'; endpoint: string; cluster: string; timeline: number }
  | { type: 'disconnected'; detail: string }
  | { type: 'uploaded'; file: string; bytes: number; ms: number }
  | { type: 'switched'; lagMs: number }
  | { type: 'lag'; lagMs: number; archivedThrough: string | null }
  | { type: 'hole'; hole: WalArchiveHole };

export interface WalShipperOptions {
  /** The database to archive: in the lab its endpoint, which follows the primary across a failover. */
  src: PgSource;
  store: BackupStore;
  /** Name in blob names; default the system identifier. */
  cluster?: string;
  /** Durable folder pg_receivewal writes into. */
  spoolDir: string;
  stateFile: string;
  archiveLagMs: number;
  /** Tick of the loop that samples the server's position, uploads and switches. Default 250 ms: the lag is measured to within it. */
  tickMs?: number;
  /** How often a `lag` event is sent. Default 10 s. */
  lagEveryMs?: number;
  /** `fail`: an unreachable server or a role without REPLICATION at the first attempt is an error (the CLI); `retry`: keep trying (the lab). */
  firstConnect: 'fail' | 'retry';
  onEvent?: (e: ShipperEvent) => void;
  /** Called once, when the first segment of this run is in Blob or the stream has run for a tick: archiving runs. */
  onArchiving?: (cluster: string) => void;
  /** A base backup taken beside the archive (the lab's), recorded in the state file once known. */
  baseBackup?: () => { folder: string; at: string } | null;
}

const RETRY_MAX_MS = 2000;
/** Abandoned partial segments kept in the spool for forensics (see pruneAbandoned). */
const KEEP_ABANDONED = 3;

/** The abandoned spool files past the newest `keep`, by modification time. */
export function abandonedToDrop(files: readonly { f: string; mtime: number }[], keep: number): string[] {
  return [...files]
    .sort((a, b) => b.mtime - a.mtime)
    .slice(keep)
    .map((x) => x.f);
}

export async function runWalShipper(o: WalShipperOptions, signal: AbortSignal): Promise<void> {
  const shipper = new Shipper(o);
  await shipper.run(signal);
}

class Shipper {
  private readonly tickMs: number;
  private state: WalArchiveState;
  private samples: LsnSample[] = [];
  private segmentBytes = 16 * 1024 * 1024;
  private present = new Set<string>();
  private newest: SegmentId | null = null;
  private lastSwitchMs = 0;
  private pendingSwitch: { atMs: number; end: bigint } | null = null;
  private shipMs = 0;
  private lastLagEventMs = 0;
  private archivingSaid = false;
  /** The server's timeline at the last look: its WAL is archived only by segments of that timeline. */
  private serverTimeline: number | null = null;
  /** History files already in Blob whose content was compared with the spool's. */
  private readonly checkedHistory = new Set<string>();

  constructor(private readonly o: WalShipperOptions) {
    this.tickMs = o.tickMs ?? 250;
    this.state = {
      pid: process.pid,
      receiverPid: null,
      endpoint: describeSource(o.src),
      cluster: o.cluster ?? null,
      slot: ARCHIVE_SLOT,
      state: 'starting',
      archiveLagMs: o.archiveLagMs,
      archivedThrough: null,
      unarchivedSince: null,
      serverLsn: null,
      lagMs: null,
      holes: [],
      lastError: null,
      baseBackup: null,
      updatedAt: new Date().toISOString(),
    };
  }

  async run(signal: AbortSignal): Promise<void> {
    await mkdir(this.o.spoolDir, { recursive: true, mode: 0o700 });
    const before = await readJsonFile<WalArchiveState>(this.o.stateFile);
    if (before) {
      // What the archive held before this run: holes stay reported until someone deals with them.
      this.state.holes = before.holes ?? [];
      this.state.archivedThrough = before.archivedThrough;
      this.state.baseBackup = before.baseBackup ?? null;
      if (before.archivedThrough) {
        this.newest = parseSegmentName(before.archivedThrough.segment);
        // The lag goes on from where the last run left it: WAL that waited then (or was written while no shipper ran) still waits.
        const end = parseLsn(before.archivedThrough.endLsn);
        this.samples = before.unarchivedSince
          ? [{ atMs: Date.parse(before.unarchivedSince), lsn: end + 1n }]
          : [{ atMs: Date.parse(before.updatedAt), lsn: end }];
      }
      // A pg_receivewal left by a shipper that was SIGKILLed still holds the slot and writes into the spool.
      if (before.receiverPid && (await isProcessUnder(before.receiverPid, this.o.spoolDir))) await terminate(before.receiverPid, 3000);
    }
    let attempt = 0;
    let first = true;
    while (!signal.aborted) {
      const client = connect(this.o.src);
      client.on('error', () => {});
      try {
        await client.connect();
        await this.checkRole(client);
        if (first && this.o.firstConnect === 'fail') await this.checkPrimary(client);
      } catch (e) {
        await client.end().catch(() => {});
        if (first && this.o.firstConnect === 'fail') throw this.connectError(e);
        this.note('reconnecting', `cannot connect to ${this.state.endpoint}: ${(e as Error).message}`);
        await sleep(Math.min(RETRY_MAX_MS, 250 * 2 ** attempt++), undefined, { signal }).catch(() => {});
        continue;
      }
      first = false;
      try {
        await this.session(client, signal);
        attempt = 0;
      } catch (e) {
        this.note('reconnecting', (e as Error).message);
      } finally {
        await client.end().catch(() => {});
      }
      if (!signal.aborted) await sleep(Math.min(RETRY_MAX_MS, 250 * 2 ** attempt++), undefined, { signal }).catch(() => {});
    }
    this.state.state = 'stopped';
    this.state.receiverPid = null;
    this.writeState();
  }

  private async checkRole(client: pg.Client): Promise<void> {
    const r = await client.query<{ ok: boolean }>('SELECT rolreplication OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user');
    if (!r.rows[0]?.ok)
      throw new UserError(`role ${this.o.src.user} on ${this.state.endpoint} has no REPLICATION permission: it cannot stream WAL`, {
        untouched: 'nothing: no slot was created and nothing was uploaded',
        next: `ALTER ROLE ${this.o.src.user} REPLICATION (and allow it a replication line in pg_hba.conf), or connect as a role that has it`,
      });
  }

  /** Told to archive a standby, say so at once rather than wait for it to be promoted. */
  private async checkPrimary(client: pg.Client): Promise<void> {
    const r = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    if (r.rows[0]!.r)
      throw new UserError(`${this.state.endpoint} is a standby (in recovery): the archive is fed from the primary`, {
        untouched: 'nothing: no slot was created and nothing was uploaded',
        next: "point the URL at the primary (or at an address that follows it, such as a pooler's read-write endpoint)",
      });
  }

  private connectError(e: unknown): Error {
    if (e instanceof UserError) return e;
    return new UserError(`cannot reach ${this.state.endpoint}: ${(e as Error).message}`, {
      exitCode: 1,
      untouched: 'nothing: no slot was created and nothing was uploaded',
      next: 'check the host, port and role in the URL and PGPASSWORD, then run it again',
    });
  }

  private async session(client: pg.Client, signal: AbortSignal): Promise<void> {
    const recovering = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    // A standby behind the address (a failover half done, a database still being restored): it has no
    // position of its own to archive, and cannot switch segments. The primary it becomes is archived.
    if (recovering.rows[0]!.r) throw new Error(`${this.state.endpoint} is in recovery: waiting for a primary`);
    const id = await clusterIdentity(client);
    const cluster = this.o.cluster ?? id.systemIdentifier;
    this.state.cluster = cluster;
    const seg = await client.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'");
    this.segmentBytes = Number(seg.rows[0]!.setting);
    const tl = await client.query<{ t: number }>('SELECT timeline_id AS t FROM pg_control_checkpoint()');
    await ensureArchiveSlot(client);
    await ensureContainer(this.o.store);
    const folder = walFolder(this.o.store.prefix, cluster);
    await this.listPresent(folder);
    this.o.onEvent?.({ type: 'connected', endpoint: this.state.endpoint, cluster, timeline: tl.rows[0]!.t });
    // Segments a former run completed but did not upload.
    await this.shipSpool(folder);

    const receiver = startTool('pg_receivewal', [
      '-h',
      this.o.src.host,
      '-p',
      String(this.o.src.port),
      '-U',
      this.o.src.user,
      '-D',
      this.o.spoolDir,
      '-S',
      ARCHIVE_SLOT,
      '--no-loop',
      '--status-interval=1',
    ]);
    this.state.receiverPid = receiver.child.pid ?? null;
    this.note('streaming', null);
    let exited = false;
    void receiver.done.then(() => {
      exited = true;
    });
    const stop = () => receiver.child.kill('SIGTERM');
    signal.addEventListener('abort', stop, { once: true });
    try {
      try {
        while (!exited && !signal.aborted) {
          await this.tick(client, folder);
          await Promise.race([sleep(this.tickMs), receiver.done]);
        }
      } catch (e) {
        // The receiver must not outlive its session (a failed upload, a lost connection): the next session's
        // would find the slot taken and nothing would ship.
        receiver.child.kill('SIGTERM');
        await receiver.done;
        this.state.receiverPid = null;
        throw e;
      }
      const r = await receiver.done;
      // Whatever it completed before it stopped (SIGTERM finishes its write first) goes up now.
      await this.shipSpool(folder);
      this.state.receiverPid = null;
      if (signal.aborted) return;
      const why = lastLines(r.stderr, 3) || `exit ${r.code ?? r.signal}`;
      if (/has already been removed|is not in this server's history/.test(r.stderr)) await this.restartFromSlot(client, why);
      throw new Error(`pg_receivewal stopped: ${why}`);
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  private async tick(client: pg.Client, folder: string): Promise<void> {
    const r = await client.query<{ lsn: string; file: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS file',
    );
    const sampledAt = Date.now();
    const lsn = parseLsn(r.rows[0]!.lsn);
    const timeline = parseSegmentName(r.rows[0]!.file, this.segmentBytes)!.timeline;
    // Another timeline (a promoted standby, a restored database): positions seen on the old one say nothing.
    if (timeline !== this.serverTimeline) this.samples = this.samples.filter((x) => this.serverTimeline === null && x.lsn <= lsn);
    this.serverTimeline = timeline;
    this.samples.push({ atMs: sampledAt, lsn });
    await this.shipSpool(folder);
    // Uploads run inline and take seconds on a loaded machine: the switch is decided on the time after them,
    // or the tick that delivers a switched segment would find the last switch too recent and wait a tick more.
    const now = Date.now();
    const archivedEnd = this.newest?.timeline === timeline ? segmentEnd(this.newest, this.segmentBytes) : null;
    let lag = archiveLagMs(this.samples, archivedEnd, now);
    if (this.pendingSwitch && archivedEnd !== null && archivedEnd >= this.pendingSwitch.end) {
      // How long a switched segment took to reach Blob; the slowest lately, forgotten slowly.
      this.shipMs = Math.max(now - this.pendingSwitch.atMs, this.shipMs * 0.9);
      this.pendingSwitch = null;
    }
    if (shouldSwitch(lag, this.o.archiveLagMs, now - this.lastSwitchMs, this.shipMs)) {
      const sw = await client.query<{ end: string }>('SELECT pg_switch_wal()::text AS end');
      this.lastSwitchMs = now;
      this.pendingSwitch = { atMs: now, end: parseLsn(sw.rows[0]!.end) };
      this.o.onEvent?.({ type: 'switched', lagMs: lag });
    }
    this.samples = pruneSamples(this.samples, archivedEnd);
    lag = archiveLagMs(this.samples, archivedEnd, Date.now());
    this.state.serverLsn = formatLsn(lsn);
    this.state.lagMs = lag;
    const oldest = this.samples.find((s) => archivedEnd === null || s.lsn > archivedEnd);
    this.state.unarchivedSince = lag === 0 || !oldest ? null : new Date(Date.now() - lag).toISOString();
    if (!this.archivingSaid && this.state.archivedThrough) {
      this.archivingSaid = true;
      this.o.onArchiving?.(this.state.cluster!);
    }
    if (now - this.lastLagEventMs >= (this.o.lagEveryMs ?? 10_000)) {
      this.lastLagEventMs = now;
      this.o.onEvent?.({ type: 'lag', lagMs: lag, archivedThrough: this.state.archivedThrough?.segment ?? null });
    }
    this.writeState();
  }

  /** Uploads every completed segment and history file in the spool not yet in Blob, oldest first; prunes the spool. */
  private async shipSpool(folder: string): Promise<void> {
    const files = (await readdir(this.o.spoolDir)).filter((f) => HISTORY_FILE.test(f) || parseSegmentName(f, this.segmentBytes) !== null);
    // History files sort before their timeline's segments ('.' < '0'): a restore finds the history first.
    files.sort();
    const segments: { name: string; id: SegmentId }[] = [];
    for (const f of files) {
      const id = parseSegmentName(f, this.segmentBytes);
      if (id) segments.push({ name: f, id });
      const path = join(this.o.spoolDir, f);
      if (this.present.has(f)) {
        if (!id && !this.checkedHistory.has(f)) await this.checkHistory(folder, f, path);
        // Uploaded by a shipper killed before it wrote its state: archived all the same, or the next segment
        // would be measured against the older state and a hole reported where there is none.
        if (id) {
          await this.checkGap(id, folder);
          this.archived(id);
        }
        continue;
      }
      if (id) await this.checkGap(id, folder);
      const t0 = performance.now();
      const bytes = (await stat(path)).size;
      // No abort signal: an upload in flight finishes (a stopped shipper leaves no half-written blob anyway).
      await uploadStream(this.o.store.container, folder + f, createReadStream(path), {
        metadata: { wal_segment: f },
        totalBytes: bytes,
      });
      this.present.add(f);
      this.o.onEvent?.({ type: 'uploaded', file: f, bytes, ms: performance.now() - t0 });
      if (id) this.archived(id);
    }
    // Keep the newest segment: pg_receivewal starts after the newest file it finds in the spool.
    segments.sort((a, b) => compareFollowed(a.id, b.id));
    for (const s of segments.slice(0, -1)) if (this.present.has(s.name)) await rm(join(this.o.spoolDir, s.name), { force: true });
  }

  private archived(id: SegmentId): void {
    if (this.newest && compareFollowed(id, this.newest) <= 0) return;
    this.newest = id;
    this.state.archivedThrough = {
      segment: segmentName(id, this.segmentBytes),
      timeline: id.timeline,
      endLsn: formatLsn(segmentEnd(id, this.segmentBytes)),
      at: new Date().toISOString(),
    };
    this.writeState();
  }

  /**
   * Before a segment goes up: does it follow the newest archived one, across timeline switches too? Blob is the
   * archive, not this shipper's memory: what looks missing is listed again before it is called a hole, since a
   * drill's one-shot archive run ships segments while this shipper reconnects.
   */
  private async checkGap(id: SegmentId, folder: string): Promise<void> {
    if (this.newest === null || compareFollowed(id, this.newest) <= 0) return;
    const history = id.timeline === this.newest.timeline ? [] : await this.switchesTo(folder, id.timeline);
    const named = (ids: SegmentId[]) => ids.filter((x) => !this.present.has(segmentName(x, this.segmentBytes)));
    let missing = named(segmentsOnTheWay(this.newest, id, history, this.segmentBytes));
    if (missing.length > 0) {
      await this.listPresent(folder);
      missing = named(missing);
    }
    for (const gap of gapsOf(missing, this.segmentBytes))
      this.hole(gap, `point-in-time recovery cannot pass ${this.state.archivedThrough?.endLsn ?? 'them'}`);
  }

  /** Every name in the archive's folder, as Blob lists it now. */
  private async listPresent(folder: string): Promise<void> {
    const present = new Set<string>();
    for await (const b of this.o.store.container.listBlobsFlat({ prefix: folder })) present.add(b.name.slice(folder.length));
    this.present = present;
  }

  /** The switches on the way to `timeline`, from its history file in the spool, else in Blob; none when unreadable. */
  private async switchesTo(folder: string, timeline: number): Promise<{ parent: number; switchLsn: bigint }[]> {
    const name = historyFileName(timeline);
    const text =
      (await readFile(join(this.o.spoolDir, name), 'utf8').catch(() => null)) ??
      (await this.o.store.container
        .getBlockBlobClient(folder + name)
        .downloadToBuffer()
        .then(
          (b) => b.toString('utf8'),
          () => '',
        ));
    try {
      return parseHistory(text).map((h) => ({ parent: h.parent, switchLsn: parseLsn(h.switchpoint) }));
    } catch {
      return [];
    }
  }

  private hole(gap: SegmentGap, why: string): void {
    const hole: WalArchiveHole = {
      ...gap,
      detail: gap.count === 0 ? why : `segments ${gap.from}..${gap.to} (${gap.count}) are not in the archive: ${why}`,
      foundAt: new Date().toISOString(),
    };
    this.state.holes.push(hole);
    this.o.onEvent?.({ type: 'hole', hole });
  }

  /**
   * A history file of that name already in Blob must be this server's: a restore that picked a timeline
   * number the archive already has would mix two histories under the same names, and skipping "already
   * there" files would then archive neither.
   */
  private async checkHistory(folder: string, name: string, path: string): Promise<void> {
    this.checkedHistory.add(name);
    const ours = await readFile(path);
    const theirs = await this.o.store.container.getBlockBlobClient(folder + name).downloadToBuffer();
    if (ours.equals(theirs)) return;
    const timeline = parseInt(name.slice(0, 8), 16);
    this.hole(
      { from: name, to: name, count: 0 },
      `timeline ${timeline} in the archive comes from another history than this server's (${name} differs): its segments here are not archived; restore with a restore_command that serves history files, so the new timeline gets a number of its own`,
    );
  }

  /**
   * The server cannot stream what the spool asks for next: a new primary whose slot was made after the
   * failover, a slot dropped by hand, or a database restored to an earlier point (its timeline forked
   * before the spool's end). What the spool holds is archived; it is emptied of segments so pg_receivewal
   * starts from the slot on the server's own timeline. Whatever the archive then misses is recorded as a
   * hole when the next segment arrives (checkGap), never skipped silently.
   */
  private async restartFromSlot(client: pg.Client, why: string): Promise<void> {
    const slot = await client.query<{ lsn: string | null }>(
      'SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
      [ARCHIVE_SLOT],
    );
    this.state.lastError = `the server cannot stream on from ${this.state.archivedThrough?.segment ?? 'the spool'}: ${why}; resuming from the slot's position ${slot.rows[0]?.lsn ?? '?'}`;
    for (const f of await readdir(this.o.spoolDir)) {
      if (HISTORY_FILE.test(f)) continue;
      // A .partial is the tail of a branch the server does not have (WAL nobody archived): kept aside, not lost.
      if (f.endsWith('.partial')) await rename(join(this.o.spoolDir, f), join(this.o.spoolDir, `${f}.abandoned`)).catch(() => {});
      else if (this.present.has(f)) await rm(join(this.o.spoolDir, f), { force: true });
    }
    await this.pruneAbandoned();
    this.writeState();
  }

  /**
   * Every failover or restore abandons one partial segment (16 MB): a lab that lives through many drills would fill
   * its disk. The newest few stay for whoever investigates the latest switch.
   */
  private async pruneAbandoned(): Promise<void> {
    const abandoned = (await readdir(this.o.spoolDir)).filter((f) => f.endsWith('.abandoned'));
    const byAge = await Promise.all(
      abandoned.map(async (f) => ({ f, mtime: (await stat(join(this.o.spoolDir, f)).catch(() => null))?.mtimeMs ?? 0 })),
    );
    for (const f of abandonedToDrop(byAge, KEEP_ABANDONED)) await rm(join(this.o.spoolDir, f), { force: true });
  }

  private note(state: WalArchiveState['state'], error: string | null): void {
    this.state.state = state;
    if (error !== null) {
      this.state.lastError = error;
      this.o.onEvent?.({ type: 'disconnected', detail: error });
    }
    this.writeState();
  }

  private writeState(): void {
    this.state.updatedAt = new Date().toISOString();
    this.state.baseBackup = this.o.baseBackup?.() ?? this.state.baseBackup;
    try {
      writeJsonAtomic(this.o.stateFile, this.state);
    } catch {
      // A full disk must not stop the shipping; status then reads an older state and reports the lag it implies.
    }
  }
}

export { gapsIn } from './wal-segments.ts';
