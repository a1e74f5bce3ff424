/**
 * The WAL archive in Blob, filled by `pg_receivewal` from a physical replication slot: the slot keeps
 * every segment on the server until it has been shipped, so successive runs (a cron every few minutes
 * sets the achievable RPO) leave no hole between them. Segments already in Blob are not uploaded again.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { uploadStream } from '../../blob/index.ts';
import { WAL_SEGMENT, walFolder } from '../../../backup/naming.ts';
import { lastLines, runTool } from './tools.ts';
import type { PgSource } from './source.ts';
import type { BackupStore } from './store.ts';
import { parseLsn, parseSegmentName, segmentEnd } from '../../../backup/wal-names.ts';

export const ARCHIVE_SLOT = 'drill_wal_archive';
/** object_in_use: the slot is held by another walsender. */
const SLOT_ACTIVE = '55006';
const SLOT_TAKEN = /replication slot "[^"]+" is active for PID/;

export async function ensureArchiveSlot(client: pg.ClientBase): Promise<void> {
  // immediately_reserve: the slot holds WAL from now on, before pg_receivewal first connects.
  // A shipper and a base backup may both get here at once: the loser of that race finds the slot made.
  await client
    .query(
      `SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
      [ARCHIVE_SLOT],
    )
    .catch((e: { code?: string }) => {
      if (e.code !== '42710') throw e;
    });
}

/**
 * The archive slot of a cluster whose new timeline began at `lsn` from WAL the archive already holds (a point-in-time
 * restore, promoted without waiting for a checkpoint): held from where the new timeline begins. Made before the new
 * timeline's first checkpoint, the slot would hold WAL from the last restartpoint of the replay, on older timelines
 * whose segments this cluster never had in pg_wal; pg_receivewal would then ask for a segment "already removed" and
 * never archive again (a lab reused for a day of drills did, 2026-12-06). Left as it is when it is past `lsn` or in use.
 */
export async function startArchiveSlotAt(client: pg.ClientBase, lsn: string): Promise<void> {
  await ensureArchiveSlot(client);
  await client.query(
    'SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active AND restart_lsn < $2::pg_lsn',
    [ARCHIVE_SLOT, lsn],
  );
}

/** PID of the walsender streaming from the archive slot (a WAL shipper's pg_receivewal); null when none does. */
export async function archiveSlotHolder(client: pg.ClientBase): Promise<number | null> {
  const r = await client.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [
    ARCHIVE_SLOT,
  ]);
  return r.rows[0]?.pid ?? null;
}

export interface WalArchiveResult {
  /** Segments uploaded by this run. */
  uploaded: string[];
  /** Segments received that were already in Blob. */
  alreadyThere: number;
  /** Everything before this LSN is in the archive. */
  upToLsn: string;
}

/**
 * Closes the current segment (pg_switch_wal), receives everything up to it and uploads complete
 * segments. Needs a superuser or a role with REPLICATION and EXECUTE on pg_switch_wal.
 */
export async function archiveWal(
  client: pg.ClientBase,
  src: PgSource,
  store: BackupStore,
  cluster: string,
  signal?: AbortSignal,
): Promise<WalArchiveResult> {
  await ensureArchiveSlot(client);
  const holder = await archiveSlotHolder(client);
  await client.query('SELECT pg_switch_wal()');
  const end = (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  // A WAL shipper streams from the slot (`--follow`, the lab's): it ships the segment just closed itself.
  if (holder !== null) return waitForShipper(store, cluster, end, signal);
  // pg_receivewal notices its end position only when WAL past it arrives: write a record so it does
  // at once instead of at the next keep-alive (10 s).
  await client.query(`SELECT pg_logical_emit_message(false, 'drill', 'wal archive checkpoint')`);
  const dir = await mkdtemp(join(tmpdir(), 'drill-wal-'));
  try {
    const r = await runTool(
      'pg_receivewal',
      ['-h', src.host, '-p', String(src.port), '-U', src.user, '-D', dir, '-S', ARCHIVE_SLOT, `--endpos=${end}`, '--no-loop', '--no-sync'],
      { signal },
    );
    // The lab's shipper may have (re)connected between the check above and now: it ships `end` itself.
    if (r.code !== 0 && SLOT_TAKEN.test(r.stderr)) return waitForShipper(store, cluster, end, signal);
    if (r.code !== 0) throw new Error(`pg_receivewal failed (exit ${r.code}): ${lastLines(r.stderr)}`);
    const files = (await readdir(dir)).filter((f) => WAL_SEGMENT.test(f) || /^[0-9A-F]{8}\.history$/.test(f)).sort();
    const folder = walFolder(store.prefix, cluster);
    const present = new Set<string>();
    for await (const b of store.container.listBlobsFlat({ prefix: folder })) present.add(b.name.slice(folder.length));
    const uploaded: string[] = [];
    let alreadyThere = 0;
    for (const f of files) {
      if (present.has(f)) {
        alreadyThere++;
        continue;
      }
      await uploadStream(store.container, folder + f, createReadStream(join(dir, f)), { metadata: { wal_segment: f }, signal });
      uploaded.push(f);
    }
    // Only now, with every segment before `end` in Blob, may the server recycle them. (pg_receivewal
    // run with --no-sync reports nothing as flushed, so the slot does not move on its say-so.)
    await releaseArchivedWal(client, end);
    return { uploaded, alreadyThere, upToLsn: end };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Lets the server recycle WAL before `end`, now in Blob. A shipper that took the slot after
 * pg_receivewal let go moves it on as it ships: the slot is then left to it.
 */
export async function releaseArchivedWal(client: pg.ClientBase, end: string): Promise<void> {
  await client.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [ARCHIVE_SLOT, end]).catch((e: { code?: string }) => {
    if (e.code !== SLOT_ACTIVE) throw e;
  });
}

const SHIPPER_WAIT_MS = 60_000;

async function waitForShipper(store: BackupStore, cluster: string, end: string, signal?: AbortSignal): Promise<WalArchiveResult> {
  const last = parseLsn(end) - 1n;
  const deadline = Date.now() + SHIPPER_WAIT_MS;
  for (;;) {
    const names = await listArchivedWal(store, cluster);
    const segments = names.map((n) => parseSegmentName(n)).filter((x) => x !== null);
    if (segments.some((x) => segmentEnd(x) > last)) return { uploaded: [], alreadyThere: names.length, upToLsn: end };
    if (Date.now() > deadline || signal?.aborted)
      throw new Error(
        `a WAL shipper holds slot ${ARCHIVE_SLOT} but did not archive up to ${end} within ${SHIPPER_WAIT_MS / 1000}s: is it stuck? (drill lab status, or its own output, says)`,
      );
    await sleep(250);
  }
}

/** WAL segment names in the archive, sorted (history files excluded). */
export async function listArchivedWal(store: BackupStore, cluster: string): Promise<string[]> {
  const folder = walFolder(store.prefix, cluster);
  const out: string[] = [];
  for await (const b of store.container.listBlobsFlat({ prefix: folder })) {
    const f = b.name.slice(folder.length);
    if (WAL_SEGMENT.test(f) || /\.history$/.test(f)) out.push(f);
  }
  return out.sort();
}
