/**
 * Backup and restore of a >= 500 MB PostgreSQL database through Azurite (disk persistence, loopback):
 *   backup    - `drill backup` logical: pg_dump -Fc streamed into Blob (8 MiB blocks, 4 in flight), MB/s end to end;
 *   download  - the harness's ranged parallel reader (8 MiB ranges, 4 in flight) vs the SDK's single-stream
 *               downloadToFile, alternating in one run, each checked against the manifest's sha256;
 *   restore   - the blob-restore path timed in its phases: download, restore (pg_restore -j2), verify
 *               (pg_amcheck, row counts and checksums against the manifest).
 * The table holds incompressible bytea (random md5 bytes), so the dump is as large as the data.
 *
 *   node --import tsx test/bench/restore-transfer.ts [--mb 520] [--rounds 2]
 *
 * Not part of `npm test`. Writes results/bench/restore-transfer.json.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { downloadToFileParallel } from '../../lib/adapters/blob/index.ts';
import { dropScratch, restoreBackup, scratchRoot, takeLogicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { makeTempDir } from '../support/tmp.ts';
import { startBackupSource } from '../support/backup-source.ts';

const MB = 1_000_000;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), h);
  return h.digest('hex');
}

const { values } = parseArgs({ options: { mb: { type: 'string', default: '520' }, rounds: { type: 'string', default: '2' } } });
const targetMb = Number(values.mb);
const rounds = Number(values.rounds);
const tmp = await makeTempDir('bench-restore');
const source = await startBackupSource(tmp.path);
const rows: Array<Record<string, string | number>> = [];
try {
  // 32 KB of random bytes per row: TOAST cannot compress it and neither can pg_dump.
  const t0 = performance.now();
  const c = new pg.Client({ host: '127.0.0.1', port: source.port, user: 'postgres', database: 'orders' });
  await c.connect();
  await c.query('CREATE TABLE payload (id int PRIMARY KEY, body bytea NOT NULL)');
  const perRow = 2048 * 16;
  const n = Math.ceil((targetMb * MB) / perRow);
  for (let from = 1; from <= n; from += 2000) {
    await c.query(
      `INSERT INTO payload SELECT g, (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex') FROM generate_series(1, 2048) i) FROM generate_series($1::int, $2::int) g`,
      [from, Math.min(n, from + 1999)],
    );
  }
  await c.end();
  console.error(`source: ${n} rows of ${perRow} B in ${((performance.now() - t0) / 1000).toFixed(1)}s`);

  const store = source.store('bench');
  const taken = await takeLogicalBackup(source.src, store, {});
  const bytes = taken.manifest.blob.bytes;
  rows.push({
    operation: 'backup (pg_dump -Fc -> Blob)',
    method: 'drill backup: stream, 8 MiB blocks x4',
    bytes,
    seconds: taken.durationMs / 1000,
    mbPerSecond: bytes / MB / (taken.durationMs / 1000),
  });
  console.error(`backup: ${(bytes / MB).toFixed(1)} MB in ${(taken.durationMs / 1000).toFixed(1)}s`);

  const blob = store.container.getBlobClient(taken.manifest.blob.name);
  const dl = join(tmp.path, 'dl');
  await mkdir(dl, { recursive: true });
  for (let r = 1; r <= rounds; r++) {
    const order = r % 2 === 1 ? ['parallel', 'sdk'] : ['sdk', 'parallel'];
    for (const method of order) {
      const file = join(dl, `${method}-${r}.pgc`);
      const t = performance.now();
      if (method === 'parallel')
        await downloadToFileParallel(blob, file, { concurrency: 4, expectedBytes: bytes, expectedSha256: taken.manifest.blob.sha256 });
      else await blob.downloadToFile(file);
      const s = (performance.now() - t) / 1000;
      // The SDK's download is hashed afterwards, as a restore would have to (outside the timing).
      if (method === 'sdk' && (await sha256(file)) !== taken.manifest.blob.sha256) throw new Error('sdk download sha256 mismatch');
      rows.push({
        operation: 'download',
        method:
          method === 'parallel' ? 'drill ranged parallel (8 MiB x4, sha256 of the file on a worker)' : 'SDK downloadToFile (one stream)',
        round: r,
        bytes,
        seconds: s,
        mbPerSecond: bytes / MB / s,
      });
      console.error(`download ${method} round ${r}: ${(bytes / MB / s).toFixed(1)} MB/s`);
      await rm(file, { force: true });
    }
  }

  const root = await scratchRoot(tmp.path);
  try {
    const out = await restoreBackup({ store, manifest: taken.manifest, root, jobs: 2 });
    if (!out.ok) throw new Error(`restore failed: ${out.problem}`);
    const t = out.timings;
    const total = (t.downloadMs + t.restoreMs + t.verifyMs) / 1000;
    rows.push({
      operation: 'restore',
      method: 'download',
      bytes,
      seconds: t.downloadMs / 1000,
      mbPerSecond: bytes / MB / (t.downloadMs / 1000),
    });
    rows.push({
      operation: 'restore',
      method: 'restore (initdb + pg_restore -j2)',
      bytes,
      seconds: t.restoreMs / 1000,
      mbPerSecond: bytes / MB / (t.restoreMs / 1000),
    });
    rows.push({
      operation: 'restore',
      method: 'verify (pg_amcheck, counts + checksums)',
      bytes,
      seconds: t.verifyMs / 1000,
      mbPerSecond: bytes / MB / (t.verifyMs / 1000),
    });
    rows.push({ operation: 'restore', method: 'total (RTO of the restore)', bytes, seconds: total, mbPerSecond: bytes / MB / total });
  } finally {
    await dropScratch(root);
  }
} finally {
  await source.stop();
  await tmp.remove();
}
console.log('| operation | method | MB | s | MB/s |\n|---|---|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.operation}${r.round ? ` (round ${r.round})` : ''} | ${r.method} | ${(Number(r.bytes) / MB).toFixed(1)} | ${Number(r.seconds).toFixed(2)} | ${Number(r.mbPerSecond).toFixed(1)} |`,
  );
await mkdir('results/bench', { recursive: true });
await writeFile('results/bench/restore-transfer.json', JSON.stringify({ at: new Date().toISOString(), rows }, null, 2) + '\n');
