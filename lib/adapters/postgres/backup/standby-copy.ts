/**
 * A standby of a running primary on the same machine, its data directory copied between pg_backup_start and
 * pg_backup_stop (PostgreSQL's low-level base backup API: the same guarantee as pg_basebackup, whose WAL from the
 * backup's start the standby then streams through its slot). pg_basebackup sends every byte through a walsender
 * and a socket; the kernel copies the files several times faster (a 1 GB restore's standby took 10.5 s that way).
 * Any failure leaves nothing half-made at `dataDir`; the caller then falls back to pg_basebackup.
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crashCluster, giveToServerUser, isRoot, removeDataDir, type PgConn } from '../cluster.ts';
import { configureStandby, ensureSlot, withClient, type StandbyIdentity } from '../standby.ts';
import { run } from './scratch.ts';

/**
 * Left out of the copy (PostgreSQL's list for a low-level backup): the running server's own state, WAL the standby
 * streams instead, and the primary's slots, which on a standby would pin WAL for nobody. The folders among them
 * are made empty; the caller names files of its own to leave out too (the restore's marker).
 */
const LEFT_OUT = ['postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map', 'standby.signal', 'recovery.signal'];
const EMPTIED = [
  'pg_wal',
  'pg_wal/archive_status',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
];

export async function copyStandby(
  primary: PgConn,
  primaryData: string,
  dataDir: string,
  id: StandbyIdentity,
  leaveOut: string[] = [],
): Promise<void> {
  const partial = `${dataDir}.partial`;
  // A copy an earlier, cut-short call made and started must not be removed under its server.
  await crashCluster(dataDir);
  await removeDataDir(dataDir);
  await rm(partial, { recursive: true, force: true });
  if ((await readdir(join(primaryData, 'pg_tblspc'))).length > 0)
    throw new Error(`${primaryData} has tablespaces: a copy on the same machine would share them with the primary`);
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
  await giveToServerUser(dirname(dataDir));
  // The slot first, so the WAL from the backup's start stays until the standby has streamed it.
  await ensureSlot(primary, id.name, { fresh: true });
  try {
    const label = await withClient(primary, async (c) => {
      // fast: an immediate checkpoint rather than a spread one; the session must stay open until pg_backup_stop.
      await c.query('SELECT pg_backup_start($1, true)', [`drill standby ${id.name}`]);
      try {
        await mkdir(partial, { mode: 0o700 });
        const skip = new Set([...LEFT_OUT, ...EMPTIED, ...leaveOut]);
        const top = (await readdir(primaryData)).filter((f) => !skip.has(f));
        // -a keeps modes and, as root, the postgres owner; a file removed while copied fails the copy (fallback).
        await run('cp', ['-a', ...top.map((f) => join(primaryData, f)), `${partial}/`]);
      } catch (e) {
        await c.query('SELECT pg_backup_stop(false)').catch(() => undefined);
        throw e;
      }
      return (await c.query<{ labelfile: string; spcmapfile: string | null }>('SELECT labelfile, spcmapfile FROM pg_backup_stop(false)'))
        .rows[0]!;
    });
    for (const d of EMPTIED) await mkdir(join(partial, d), { mode: 0o700 });
    await writeFile(join(partial, 'backup_label'), label.labelfile, { mode: 0o600 });
    if (label.spcmapfile) await writeFile(join(partial, 'tablespace_map'), label.spcmapfile, { mode: 0o600 });
    if (isRoot()) await run('chown', ['-R', 'postgres:postgres', partial]);
    await configureStandby(partial, id);
    await rename(partial, dataDir);
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    throw e;
  }
}
