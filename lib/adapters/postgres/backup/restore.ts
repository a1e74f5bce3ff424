/**
 * Restore a backup from Blob into a scratch cluster and verify it: download (ranged, parallel, sha256
 * and size checked against the manifest), restore (`pg_restore -j`, or base backup + WAL recovery),
 * verify (`pg_amcheck`, row counts and checksums against the manifest, a smoke query).
 * It never touches the database the backup came from. Each phase is timed for the RTO breakdown.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { downloadToFileParallel, type TransferProgressEvent } from '../../blob/index.ts';
import { BlobTransferError } from '../../blob/errors.ts';
import { walFolder } from '../../../backup/naming.ts';
import { compareTables, type BackupManifest, type TableFacts } from '../../../backup/manifest.ts';
import { STABLE_TEXT, newestDataAt, tableFacts } from './facts.ts';
import { lastLines, runTool } from './tools.ts';
import { initScratch, logTail, startFromBaseBackup, type RecoveryTarget, type ScratchCluster } from './scratch.ts';
import { listArchivedWal } from './wal.ts';
import type { BackupStore } from './store.ts';

export interface RestoreRequest {
  store: BackupStore;
  manifest: BackupManifest;
  /** A folder from scratchRoot(): downloads, data and socket all live in it. */
  root: string;
  /** Physical only: recover to this ISO time, or replay all archived WAL (`latest`); default the backup's own end point. */
  pointInTime?: string | 'latest';
  /** pg_restore -j. */
  jobs?: number;
  /** Download concurrency (ranges in flight). */
  concurrency?: number;
  smokeQuery?: string;
  freshnessQuery?: string;
  onProgress?: (phase: string, p: TransferProgressEvent) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RestoreCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export type RestorePhase = 'download' | 'restore' | 'verify';

export interface RestoreOutcome {
  ok: boolean;
  /** Where it stopped when not ok. */
  failedPhase: RestorePhase | null;
  problem: string | null;
  timings: { downloadMs: number; restoreMs: number; verifyMs: number };
  bytes: number;
  checks: RestoreCheck[];
  /** Newest data in the restored database (freshness query, last replayed commit, or the backup's consistency point). */
  newestDataAt: string | null;
  newestDataMethod: string | null;
  tables: TableFacts[];
  scratch: ScratchCluster | null;
}

class PhaseFailure extends Error {
  constructor(
    readonly phase: RestorePhase,
    message: string,
  ) {
    super(message);
  }
}

export async function restoreBackup(r: RestoreRequest): Promise<RestoreOutcome> {
  const m = r.manifest;
  const out: RestoreOutcome = {
    ok: false,
    failedPhase: null,
    problem: null,
    timings: { downloadMs: 0, restoreMs: 0, verifyMs: 0 },
    bytes: 0,
    checks: [],
    newestDataAt: null,
    newestDataMethod: null,
    tables: [],
    scratch: null,
  };
  const say = r.log ?? (() => {});
  let phaseStart = performance.now();
  const lap = (k: keyof RestoreOutcome['timings']) => {
    const now = performance.now();
    out.timings[k] = now - phaseStart;
    phaseStart = now;
  };
  try {
    // Download: the data blob, checked against the manifest's size and sha256 as it lands.
    const dl = join(r.root, 'download');
    await mkdir(dl, { recursive: true, mode: 0o755 });
    const file = join(dl, m.kind === 'logical' ? 'dump.pgc' : 'base.tar');
    try {
      const got = await downloadToFileParallel(r.store.container.getBlobClient(m.blob.name), file, {
        expectedBytes: m.blob.bytes,
        expectedSha256: m.blob.sha256,
        concurrency: r.concurrency ?? 4,
        onProgress: (p) => r.onProgress?.('download', p),
        signal: r.signal,
      });
      out.bytes += got.bytes;
    } catch (e) {
      throw new PhaseFailure('download', e instanceof BlobTransferError ? `${e.message} (${e.code})` : (e as Error).message);
    }
    const walDir = join(r.root, 'wal');
    if (m.kind === 'physical') {
      await mkdir(walDir, { recursive: true, mode: 0o755 });
      const all = await listArchivedWal(r.store, m.cluster.name);
      const start = m.walStartSegment ?? '';
      const needed = all.filter((f) => f.endsWith('.history') || f >= start);
      const folder = walFolder(r.store.prefix, m.cluster.name);
      for (const f of needed) {
        try {
          const got = await downloadToFileParallel(r.store.container.getBlobClient(folder + f), join(walDir, f), {
            concurrency: 2,
            signal: r.signal,
          });
          out.bytes += got.bytes;
        } catch (e) {
          throw new PhaseFailure('download', `WAL segment ${f}: ${(e as Error).message}`);
        }
      }
      say(`downloaded base backup and ${needed.length} WAL segment(s)`);
    }
    lap('downloadMs');

    // Restore into a scratch cluster.
    const db = m.database;
    if (m.kind === 'logical') {
      out.scratch = await initScratch(r.root).catch((e) => {
        throw new PhaseFailure('restore', `scratch cluster did not start: ${(e as Error).message}`);
      });
      const admin = new pg.Client({ ...out.scratch.conn('postgres') });
      try {
        await admin.connect();
        const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
        if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(db)}`);
      } catch (e) {
        throw new PhaseFailure('restore', `cannot create database ${db} in the scratch cluster: ${(e as Error).message}`);
      } finally {
        await admin.end().catch(() => {});
      }
      const res = await runTool(
        'pg_restore',
        [
          '-j',
          String(r.jobs ?? 2),
          '--no-owner',
          '--no-privileges',
          '--exit-on-error',
          '-h',
          '127.0.0.1',
          '-p',
          String(out.scratch.port),
          '-U',
          'postgres',
          '-d',
          db,
          file,
        ],
        { signal: r.signal },
      );
      if (res.code !== 0) throw new PhaseFailure('restore', `pg_restore failed (exit ${res.code}): ${lastLines(res.stderr)}`);
    } else {
      const target: RecoveryTarget = r.pointInTime === 'latest' ? { latest: true } : r.pointInTime ? { time: r.pointInTime } : {};
      try {
        out.scratch = await startFromBaseBackup(r.root, file, walDir, target);
      } catch (e) {
        throw new PhaseFailure('restore', `recovery did not complete: ${lastLines((e as Error).message, 10)}`);
      }
      await waitPromoted(out.scratch, db, r.signal);
    }
    lap('restoreMs');

    // Verify.
    const scratch = out.scratch!;
    const am = await runTool(
      'pg_amcheck',
      ['-h', '127.0.0.1', '-p', String(scratch.port), '-U', 'postgres', '--install-missing', '-d', db],
      { signal: r.signal },
    );
    out.checks.push({
      name: 'pg_amcheck',
      ok: am.code === 0,
      detail: am.code === 0 ? `no corruption found in ${db}` : `exit ${am.code}: ${lastLines(am.stdout + am.stderr)}`,
    });
    const client = new pg.Client(scratch.conn(db));
    await client.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      out.tables = await tableFacts(client);
      const rows = out.tables.reduce((s, t) => s + t.rows, 0);
      const atBackupPoint = m.kind === 'logical' || r.pointInTime === undefined;
      if (atBackupPoint) {
        const bad = compareTables(m.tables, out.tables);
        out.checks.push({
          name: 'rows match the manifest',
          ok: bad.length === 0,
          detail:
            bad.length === 0
              ? `${out.tables.length} tables, ${rows} rows: counts and checksums as at backup time`
              : bad
                  .slice(0, 5)
                  .map((b) => `${b.table}: ${b.problem}`)
                  .join('; '),
        });
      } else {
        const missing = m.tables.filter((t) => !out.tables.some((x) => x.schema === t.schema && x.name === t.name));
        out.checks.push({
          name: 'tables present',
          ok: missing.length === 0,
          detail:
            missing.length === 0
              ? `${out.tables.length} tables, ${rows} rows at ${r.pointInTime} (counts not compared: a later point than the backup)`
              : `missing: ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}`,
        });
      }
      if (r.smokeQuery) {
        try {
          const s = await client.query(r.smokeQuery);
          const first = s.rows[0] ? Object.values(s.rows[0] as Record<string, unknown>)[0] : undefined;
          const ok = s.rows.length > 0 && first !== false && first !== null && first !== 0 && first !== '0';
          out.checks.push({
            name: 'smoke query',
            ok,
            detail: ok ? `returned ${JSON.stringify(first)}` : `returned ${s.rows.length === 0 ? 'no row' : JSON.stringify(first)}`,
          });
        } catch (e) {
          out.checks.push({ name: 'smoke query', ok: false, detail: `failed: ${(e as Error).message}` });
        }
      }
      if (r.freshnessQuery) {
        out.newestDataAt = await newestDataAt(client, r.freshnessQuery).catch(() => null);
        out.newestDataMethod = 'freshness query on the restored database';
      } else if (m.kind === 'physical') {
        const t = await client.query<{ t: Date | null }>('SELECT pg_last_xact_replay_timestamp() AS t');
        out.newestDataAt = t.rows[0]?.t ? t.rows[0].t.toISOString() : m.consistentAt;
        out.newestDataMethod = t.rows[0]?.t
          ? 'commit time of the last transaction replayed'
          : "the backup's consistency point (no transaction replayed)";
      } else {
        out.newestDataAt = m.consistentAt;
        out.newestDataMethod = "the dump's snapshot time (nothing newer can be in it)";
      }
      await client.query('COMMIT');
    } finally {
      await client.end().catch(() => {});
    }
    lap('verifyMs');
    const failed = out.checks.filter((c) => !c.ok);
    out.ok = failed.length === 0;
    if (!out.ok) {
      out.failedPhase = 'verify';
      out.problem = failed.map((c) => `${c.name}: ${c.detail}`).join('; ');
    }
  } catch (e) {
    const phase = e instanceof PhaseFailure ? e.phase : out.scratch ? 'verify' : 'restore';
    const key = phase === 'download' ? 'downloadMs' : phase === 'restore' ? 'restoreMs' : 'verifyMs';
    lap(key);
    out.failedPhase = phase;
    out.problem = (e as Error).message;
    if (out.scratch && phase === 'restore') out.problem += `\n--- scratch log ---\n${await logTail(out.scratch)}`;
  }
  return out;
}

/** A recovering copy answers queries before it is promoted; the restore is done once it is. */
async function waitPromoted(s: ScratchCluster, db: string, signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + 300_000;
  let last = '';
  while (performance.now() < deadline) {
    signal?.throwIfAborted();
    const c = new pg.Client({ ...s.conn(db), connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      const r = await c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
      if (!r.rows[0]!.rec) return;
      last = 'still in recovery';
    } catch (e) {
      last = (e as Error).message;
    } finally {
      await c.end().catch(() => {});
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new PhaseFailure('restore', `the restored cluster was not promoted within 300 s (${last}): ${await logTail(s)}`);
}

export { STABLE_TEXT };
