import type { CommandModule } from 'yargs';
import {
  archiveWal,
  containerNameProblem,
  readCatalog,
  describeSource,
  parseSourceUrl,
  takeLogicalBackup,
  takePhysicalBackup,
} from '../../adapters/postgres/backup/index.ts';
import { connect } from '../../adapters/postgres/backup/logical.ts';
import { clusterIdentity } from '../../adapters/postgres/backup/facts.ts';
import { redactSecrets } from '../../util/secrets.ts';
import { BlobConfigError } from '../../adapters/blob/errors.ts';
import { ExitCode, UserError } from '../../errors.ts';
import { parseDuration } from '../../config/duration.ts';
import { resolveBackupStore } from '../../adapters/postgres/backup/resolve.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lab/azurite.ts';
import { defaultLabDir, labStatus } from '../../lab/index.ts';
import type { BackupStore, PgSource } from '../../adapters/postgres/backup/index.ts';
import { runWalShipper, type ShipperEvent } from '../../adapters/postgres/backup/wal-shipper.ts';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ttyTransferLine } from '../transfer-line.ts';

const MB = 1_000_000;

/**
 * `--kind wal --follow`: the WAL shipper in the foreground, one line per segment uploaded and a lag line
 * every 10 s. SIGINT/SIGTERM stop pg_receivewal, let the upload in flight finish, and exit 0.
 */
async function followWal(
  src: PgSource,
  store: BackupStore,
  spool: string,
  archiveLagMs: number,
  cluster: string | undefined,
  json: boolean,
): Promise<number> {
  const ac = new AbortController();
  const stop = (sig: string) => {
    if (ac.signal.aborted) return;
    process.stderr.write(`${sig}: stopping after the upload in flight\n`);
    ac.abort();
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const say = (human: string, e: ShipperEvent) =>
    process.stdout.write(json ? `${JSON.stringify({ at: new Date().toISOString(), ...e })}\n` : `${human}\n`);
  process.stderr.write(
    `shipping WAL of ${describeSource(src)} continuously (archive lag at most ${archiveLagMs / 1000}s, spool ${spool}); Ctrl-C stops\n`,
  );
  try {
    await runWalShipper(
      {
        src,
        store,
        cluster,
        spoolDir: spool,
        stateFile: join(spool, 'shipper-state.json'),
        archiveLagMs,
        firstConnect: 'fail',
        onEvent: (e) => {
          if (e.type === 'uploaded') say(`uploaded ${e.file} (${(e.bytes / MB).toFixed(1)} MB in ${Math.round(e.ms)} ms)`, e);
          else if (e.type === 'lag') say(`lag ${(e.lagMs / 1000).toFixed(1)}s, archived through ${e.archivedThrough ?? 'nothing yet'}`, e);
          else if (e.type === 'connected') say(`streaming from ${e.endpoint} (cluster ${e.cluster}, timeline ${e.timeline})`, e);
          else if (e.type === 'disconnected') say(`lost the server, reconnecting: ${redactSecrets(e.detail)}`, e);
          else if (e.type === 'hole') say(`HOLE in the archive: ${e.hole.detail}`, e);
        },
      },
      ac.signal,
    );
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  return ExitCode.ok;
}

/**
 * `drill backup postgres://user@host:port/db --container NAME [--kind logical|physical|wal]`:
 * a backup into Blob with its manifest, or (`wal`) the WAL archive brought up to date. Storage
 * credentials come from the environment only (AZURE_STORAGE_CONNECTION_STRING, or
 * AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY);
 * the database password from PGPASSWORD. With no storage variable set and a lab up, the lab's Azurite
 * (container lab-backups unless named); `lab` as the target is the lab's primary.
 */

/** The lab's current primary, as its superuser (trust on loopback, no password anywhere). */
async function labPrimary(dir: string): Promise<PgSource> {
  const s = await labStatus({ dir });
  if (!s.up || !s.info) {
    throw new UserError(`the lab in ${dir} is not running, so there is no lab primary to back up`, {
      untouched: 'nothing: no backup was started',
      next: 'run `drill lab up` first, or name a database: postgres://user@host:port/db',
    });
  }
  return { host: '127.0.0.1', port: s.info.db.port, user: s.info.db.superuser, database: s.info.db.database };
}

const MINUTE = 60_000;
function age(ms: number): string {
  return ms < MINUTE ? `${Math.round(ms / 1000)}s` : ms < 60 * MINUTE ? `${Math.round(ms / MINUTE)}m` : `${(ms / 3_600_000).toFixed(1)}h`;
}
export function backupCommand(set: (code: number) => void): CommandModule {
  return {
    command: 'backup <target>',
    describe: 'take a PostgreSQL backup into Blob with its manifest (target: postgres://user@host:port/db)',
    builder: (y) =>
      y
        .positional('target', {
          type: 'string',
          demandOption: true,
          describe: "postgres://user@host:port/db (password in PGPASSWORD), or `lab` for the lab's primary",
        })
        .option('kind', {
          choices: ['logical', 'physical', 'wal'] as const,
          default: 'logical' as const,
          describe: 'pg_dump -Fc; pg_basebackup + WAL archive; or only ship new WAL',
        })
        .option('container', {
          type: 'string',
          describe: "Blob container (default $DRILL_BACKUP_CONTAINER; on the lab's Azurite, lab-backups)",
        })
        .option('prefix', { type: 'string', default: '', describe: 'folder inside the container' })
        .option('cluster', { type: 'string', describe: 'cluster name in blob names (default: its system identifier)' })
        .option('freshness', { type: 'string', describe: 'SQL returning the time of the newest row, recorded in the manifest' })
        .option('concurrency', { type: 'number', default: 4, describe: 'blocks uploaded at once' })
        .option('block-size', { type: 'number', default: 8, describe: 'block size in MiB' })
        .option('if-older-than', {
          type: 'string',
          describe: 'take the backup only if the newest one of this kind and database is older than this (e.g. 10m), or there is none',
        })
        .option('follow', {
          type: 'boolean',
          default: false,
          describe: 'with --kind wal: keep shipping WAL as it is written, until SIGINT/SIGTERM',
        })
        .option('archive-lag', {
          type: 'string',
          default: '60s',
          describe: 'with --follow: the most the archive may lag the server; the current segment is closed at half of it',
        })
        .option('spool', {
          type: 'string',
          describe:
            'with --follow: folder for received segments until they are in Blob (default: ~/.local/state/drill/wal-spool/HOST-PORT)',
        })
        .option('json', { type: 'boolean', default: false }),
    handler: async (a) => {
      const labDir = defaultLabDir();
      const kind = a.kind as 'logical' | 'physical' | 'wal';
      const ifOlderThan = a['if-older-than'] as string | undefined;
      let freshEnoughMs: number | null = null;
      if (ifOlderThan !== undefined) {
        if (kind === 'wal')
          throw new UserError('--if-older-than applies to logical and physical backups, not to the WAL archive', {
            untouched: 'nothing: no backup was started',
          });
        try {
          freshEnoughMs = parseDuration(ifOlderThan);
        } catch (e) {
          throw new UserError(`--if-older-than: ${(e as Error).message}`, {
            untouched: 'nothing: no backup was started',
            next: 'e.g. --if-older-than 10m',
          });
        }
      }
      const follow = a.follow as boolean;
      if (follow && kind !== 'wal')
        throw new UserError('--follow applies to --kind wal only', {
          untouched: 'nothing: no backup was started',
          next: 'drill backup URL --kind wal --follow --container C',
        });
      let archiveLagMs = 60_000;
      try {
        archiveLagMs = parseDuration(a['archive-lag'] as string);
      } catch (e) {
        throw new UserError(`--archive-lag: ${(e as Error).message}`, {
          untouched: 'nothing: no backup was started',
          next: 'e.g. --archive-lag 60s',
        });
      }
      if (archiveLagMs < 2000)
        throw new UserError(`--archive-lag ${a['archive-lag']} is below 2s: every segment switch costs a whole segment`, {
          untouched: 'nothing: no backup was started',
        });
      const src = a.target === 'lab' ? await labPrimary(labDir) : parseSourceUrl(a.target as string);
      // The lab's backups live in lab-backups wherever the storage is, so a lab drill's restore finds them.
      const named =
        (a.container as string | undefined) ??
        (a.target === 'lab' && !process.env.DRILL_BACKUP_CONTAINER ? LAB_BACKUP_CONTAINER : undefined);
      if (named !== undefined || process.env.DRILL_BACKUP_CONTAINER) {
        const bad = containerNameProblem(named ?? process.env.DRILL_BACKUP_CONTAINER!);
        if (bad) throw new UserError(bad, { untouched: 'nothing: no backup was started' });
      }
      const resolved = await resolveBackupStore({ container: named, prefix: a.prefix as string, lab: labBlobSource(labDir) });
      if ('missing' in resolved)
        throw new UserError('no container named', {
          untouched: 'nothing: no backup was started',
          next: 'pass --container NAME or set DRILL_BACKUP_CONTAINER',
        });
      const store = resolved.store;
      const container = store.container.containerName;
      const where = `${store.describe().endpoint}/${container}/${store.prefix}`;
      if (resolved.origin === 'lab') process.stderr.write(`${resolved.note}\n`);
      if (freshEnoughMs !== null) {
        const entries = await readCatalog(store, {
          kind: kind as 'logical' | 'physical',
          database: src.database,
          cluster: a.cluster as string | undefined,
        }).catch(() => []);
        const newest = entries.filter((e) => e.problem === null).at(-1);
        const ageMs = newest ? Date.now() - Date.parse(newest.takenAt) : Infinity;
        if (newest && ageMs < freshEnoughMs) {
          const human = `a ${kind} backup of ${src.database} taken ${age(ageMs)} ago is newer than ${ifOlderThan}: none taken (${newest.folder} in ${where})`;
          process.stdout.write(
            a.json
              ? JSON.stringify({ kind, skipped: true, newest: { folder: newest.folder, takenAt: newest.takenAt }, store: where }, null, 2) +
                  '\n'
              : human + '\n',
          );
          return set(ExitCode.ok);
        }
      }
      process.stderr.write(`backup ${kind} of ${describeSource(src)} into ${where}\n`);
      const line = ttyTransferLine(`upload ${kind}`);
      try {
        if (kind === 'wal' && follow) {
          line.done();
          const spool =
            (a.spool as string | undefined) ?? join(homedir(), '.local', 'state', 'drill', 'wal-spool', `${src.host}-${src.port}`);
          return set(await followWal(src, store, spool, archiveLagMs, a.cluster as string | undefined, a.json as boolean));
        }
        if (kind === 'wal') {
          const client = connect(src);
          await client.connect();
          try {
            const cluster = (a.cluster as string | undefined) ?? (await clusterIdentity(client)).systemIdentifier;
            const r = await archiveWal(client, src, store, cluster);
            const human = `WAL archive up to ${r.upToLsn}: ${r.uploaded.length} segment(s) uploaded, ${r.alreadyThere} already there`;
            process.stdout.write(a.json ? JSON.stringify({ kind, cluster, ...r }, null, 2) + '\n' : human + '\n');
          } finally {
            await client.end().catch(() => {});
          }
          return set(ExitCode.ok);
        }
        const options = {
          cluster: a.cluster as string | undefined,
          freshnessQuery: a.freshness as string | undefined,
          concurrency: a.concurrency as number,
          blockSize: Math.round((a['block-size'] as number) * 1024 * 1024),
          onProgress: (p: { bytes: number; totalBytes: number | undefined }) => line.update(p.bytes, p.totalBytes),
        };
        const t = kind === 'logical' ? await takeLogicalBackup(src, store, options) : await takePhysicalBackup(src, store, options);
        line.done();
        const m = t.manifest;
        const secs = t.durationMs / 1000;
        const rows = m.tables.reduce((s, x) => s + x.rows, 0);
        const human = [
          `${kind} backup of ${m.database} done in ${secs.toFixed(1)}s: ${(m.blob.bytes / MB).toFixed(1)} MB (${(m.blob.bytes / MB / Math.max(secs, 0.001)).toFixed(1)} MB/s)`,
          `  data      ${m.blob.name}`,
          `  manifest  ${t.manifestBlob}`,
          `  sha256    ${m.blob.sha256}`,
          `  LSN       ${m.lsn.start} .. ${m.lsn.end}`,
          `  tables    ${m.tables.length}, ${rows} rows counted and checksummed at ${m.consistentAt}`,
        ].join('\n');
        process.stdout.write(
          a.json ? JSON.stringify({ kind, folder: t.folder, manifestBlob: t.manifestBlob, manifest: m }, null, 2) + '\n' : human + '\n',
        );
        return set(ExitCode.ok);
      } catch (e) {
        line.done();
        if (e instanceof UserError || e instanceof BlobConfigError) throw e;
        // The database was only read; a failed upload commits nothing (uploadStream), so no half backup is listed.
        throw new UserError(`backup failed: ${redactSecrets((e as Error).message)}`, {
          exitCode: ExitCode.objectiveMissed,
          untouched: 'the database (only read); no manifest was written, so no incomplete backup will be restored',
          next: 'fix the cause above and run the backup again',
        });
      }
    },
  };
}
