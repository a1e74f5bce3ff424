import { z } from 'zod';
import type { BackupKind } from './naming.ts';

/**
 * The manifest stored beside every backup: enough to verify a restore without trusting the backup
 * itself (size and sha256 of the data blob, row counts and checksums per table taken at backup time)
 * and to pick a backup for a point in time (start/end time, LSN range).
 */

export interface TableFacts {
  schema: string;
  name: string;
  rows: number;
  /** Order-independent checksum over the rows' text form (see tableFactsSql). */
  checksum: string;
}

export interface BackupManifest {
  schemaVersion: 1;
  kind: BackupKind;
  /** The database whose tables are counted (a physical backup holds the whole cluster). */
  database: string;
  cluster: { name: string; systemIdentifier: string; serverVersion: string; timeline: number };
  startedAt: string;
  endedAt: string;
  /** The instant the backup's data is consistent at: the exported snapshot (logical) or the backup end (physical). */
  consistentAt: string;
  lsn: { start: string; end: string };
  blob: { name: string; bytes: number; sha256: string; tool: string };
  /** First WAL segment a restore needs (physical only). */
  walStartSegment: string | null;
  tables: TableFacts[];
  /** Newest value of the freshness query at backup time, when one was given. */
  newestDataAt: string | null;
  harness: { version: string };
}

const Lsn = z.string().regex(/^[0-9A-F]+\/[0-9A-F]+$/i);
const Iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO time');

export const ManifestSchema = z.object({
  schemaVersion: z.literal(1),
  kind: z.enum(['logical', 'physical']),
  database: z.string().min(1),
  cluster: z.object({ name: z.string().min(1), systemIdentifier: z.string(), serverVersion: z.string(), timeline: z.number().int() }),
  startedAt: Iso,
  endedAt: Iso,
  consistentAt: Iso,
  lsn: z.object({ start: Lsn, end: Lsn }),
  blob: z.object({ name: z.string().min(1), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/), tool: z.string() }),
  walStartSegment: z.string().nullable(),
  tables: z.array(z.object({ schema: z.string(), name: z.string(), rows: z.number().int().min(0), checksum: z.string() })),
  newestDataAt: Iso.nullable(),
  harness: z.object({ version: z.string() }),
});

/** A manifest from its JSON text, or a sentence saying why it cannot be used. */
export function parseManifest(text: string): { manifest: BackupManifest } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: `manifest is not JSON (${(e as Error).message})` };
  }
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    return { problem: `manifest is malformed: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'unknown problem'}` };
  }
  return { manifest: r.data as BackupManifest };
}

export interface TableMismatch {
  table: string;
  problem: string;
}

/** Tables whose restored rows differ from the manifest, one sentence each; empty when all match. */
export function compareTables(expected: readonly TableFacts[], restored: readonly TableFacts[]): TableMismatch[] {
  const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
  const got = new Map(restored.map((t) => [key(t), t]));
  const out: TableMismatch[] = [];
  for (const e of expected) {
    const r = got.get(key(e));
    if (!r) out.push({ table: key(e), problem: 'missing after the restore' });
    else if (r.rows !== e.rows) out.push({ table: key(e), problem: `${r.rows} rows restored, ${e.rows} at backup time` });
    else if (r.checksum !== e.checksum)
      out.push({ table: key(e), problem: `same row count (${r.rows}) but the checksum differs: rows changed` });
  }
  const known = new Set(expected.map(key));
  for (const r of restored)
    if (!known.has(key(r))) out.push({ table: key(r), problem: 'present after the restore but not in the manifest' });
  return out;
}
