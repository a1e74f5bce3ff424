import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { durationParam } from '../lib/scenario/params.ts';
import { parseDuration } from '../lib/config/duration.ts';
import { scenario, type ScenarioContext } from '../lib/scenario/define.ts';
import {
  dropScratch,
  makeScratchRoot,
  pickBackup,
  readCatalog,
  restoreBackup,
  type CatalogEntry,
  type RestoreOutcome,
} from '../lib/adapters/postgres/backup/index.ts';
import { checkBackupPolicy, failsDrill, type PolicyCheck, type PolicyFinding } from '../lib/backup/policy.ts';

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)) && /T/.test(s), 'expected an ISO time like 2026-12-01T23:00:00Z');
const duration = (fallback: string) => durationParam('24h or 30d', { positive: true }).default(fallback);

const params = z
  .object({
    /** logical: pg_dump -Fc + pg_restore -j; physical: base backup + WAL recovery (point in time). */
    kind: z.enum(['logical', 'physical']).default('logical'),
    /** Database whose backups are restored; default any (the newest backup of the kind). */
    database: z.string().min(1).optional(),
    /** Cluster name in the blob names (default: any). */
    cluster: z.string().min(1).optional(),
    /** Restore the newest backup taken at or before this time instead of the newest of all. */
    before: isoTime.optional(),
    /** Physical only: recover to this ISO time, or `latest` (replay every archived WAL segment). Default: the backup's own end point. */
    pointInTime: z.union([isoTime, z.literal('latest')]).optional(),
    /** pg_restore -j. */
    jobs: z.number().int().min(1).max(32).default(2),
    /** Ranged reads in flight while downloading. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** SQL run on the restored database; passes when it returns a row whose first column is truthy. */
    smokeQuery: z.string().min(1).optional(),
    /** SQL returning the time of the newest row (e.g. SELECT max(created_at) FROM orders): the RPO's newest data. */
    freshnessQuery: z.string().min(1).optional(),
    /** Check the backup policy (age, coverage, retention) as part of verification. */
    policy: z.boolean().default(true),
    maxAge: duration('24h'),
    coverage: duration('30d'),
    retention: duration('30d'),
    /** Policy findings at or above this severity fail the drill; milder ones are reported in the probe detail. */
    failOn: z.enum(['SEV1', 'SEV2', 'SEV3', 'SEV4']).default('SEV2'),
  })
  .strict();
type Params = z.output<typeof params>;

/** What the action hits, journaled before it runs: enough for the rollback to find the scratch cluster. */
interface Selected {
  root: string;
  backup: { folder: string; takenAt: string; kind: string; database: string | null; problem: string | null } | null;
  /** Why nothing can be restored; the action then touches nothing. */
  problem: string | null;
  findings: PolicyFinding[];
}

interface Restored {
  ok: boolean;
  problem: string | null;
  selectionProblem: string | null;
  outcome: Omit<RestoreOutcome, 'scratch' | 'tables'> | null;
  findings: PolicyFinding[];
  /** The point the restore was asked for (the RPO's reference). */
  requestedAt: string;
}

type Ctx = ScenarioContext<Params, 'backups'>;
const { probe, action, define } = scenario({ params, requires: ['backups'] });

function what(p: Params): string {
  return `${p.kind} backups${p.database ? ` of ${p.database}` : ''}`;
}

async function select(ctx: Ctx): Promise<Selected> {
  const b = ctx.adapters.backups;
  const p = ctx.params;
  const root = join(b.scratchParent, `restore-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`);
  const entries = await readCatalog(b.store, { kind: p.kind, database: p.database, cluster: p.cluster });
  const findings = p.policy
    ? checkBackupPolicy(
        entries.map((e) => ({
          folder: e.folder,
          kind: e.kind,
          database: e.database,
          takenAt: e.takenAt,
          usable: e.problem === null,
          problem: e.problem ?? undefined,
        })),
        new Date(),
        what(p),
        {
          maxAgeMs: parseDuration(p.maxAge),
          coverMs: parseDuration(p.coverage),
          retentionMs: parseDuration(p.retention),
          scheduleSlackMs: 86_400_000,
        },
      )
    : [];
  const limit = p.before ?? (p.pointInTime && p.pointInTime !== 'latest' ? p.pointInTime : undefined);
  const chosen: CatalogEntry | null = pickBackup(entries, limit);
  if (!chosen) {
    const problem = entries.length === 0 ? `no ${what(p)} found in ${b.where}` : `no ${what(p)} in ${b.where} taken before ${limit}`;
    return { root, backup: null, problem, findings };
  }
  const backup = { folder: chosen.folder, takenAt: chosen.takenAt, kind: chosen.kind, database: chosen.database, problem: chosen.problem };
  // The newest backup is broken: say so rather than quietly restoring an older one.
  return { root, backup, problem: chosen.problem ? `backup ${chosen.folder} cannot be restored: ${chosen.problem}` : null, findings };
}

async function restore(ctx: Ctx, s: Selected): Promise<Restored> {
  const p = ctx.params;
  const requestedAt = p.pointInTime && p.pointInTime !== 'latest' ? p.pointInTime : new Date().toISOString();
  const base = { findings: s.findings, requestedAt };
  if (s.problem || !s.backup) {
    ctx.reportRpo({
      measuredSeconds: null,
      lostWrites: 0,
      unknownWrites: 0,
      method: 'restore',
      reason: `nothing was restored: ${s.problem}`,
    });
    return { ok: false, problem: s.problem, selectionProblem: s.problem, outcome: null, ...base };
  }
  const b = ctx.adapters.backups;
  // Read the manifest again: the selection was journaled without it, and it is what the restore is checked against.
  const entry = (await readCatalog(b.store, { kind: p.kind, database: p.database, cluster: p.cluster })).find(
    (e) => e.folder === s.backup!.folder,
  );
  if (!entry?.manifest) {
    const problem = `backup ${s.backup.folder} disappeared or lost its manifest before the restore started`;
    ctx.reportRpo({ measuredSeconds: null, lostWrites: 0, unknownWrites: 0, method: 'restore', reason: problem });
    return { ok: false, problem, selectionProblem: problem, outcome: null, ...base };
  }
  const m = entry.manifest;
  const root = await makeScratchRoot(s.root);
  ctx.log.info(
    `restoring ${m.kind} backup ${s.backup.folder} (${(m.blob.bytes / 1e6).toFixed(1)} MB, taken ${m.startedAt}) into a scratch cluster in ${root}`,
  );
  const outcome = await restoreBackup({
    store: b.store,
    manifest: m,
    root,
    pointInTime: p.pointInTime,
    jobs: p.jobs,
    concurrency: p.concurrency,
    smokeQuery: p.smokeQuery,
    freshnessQuery: p.freshnessQuery,
    onProgress: (_phase, ev) => ctx.progress({ label: 'download', bytes: ev.bytes, totalBytes: ev.totalBytes }),
    log: (l) => ctx.log.info(l),
    signal: ctx.signal,
  });
  ctx.progress({ label: 'download', done: true });
  const t = outcome.timings;
  const mbps = outcome.bytes / 1e6 / Math.max(t.downloadMs / 1000, 0.001);
  ctx.log.info(
    `download ${(t.downloadMs / 1000).toFixed(2)}s (${(outcome.bytes / 1e6).toFixed(1)} MB, ${mbps.toFixed(1)} MB/s), restore ${(t.restoreMs / 1000).toFixed(2)}s, verify ${(t.verifyMs / 1000).toFixed(2)}s${outcome.ok ? '' : `: failed in ${outcome.failedPhase}: ${outcome.problem}`}`,
    { timings: t, bytes: outcome.bytes, scratchPort: outcome.scratch?.port ?? null },
  );
  if (outcome.ok && outcome.newestDataAt) {
    const rpoMs = Math.max(0, Date.parse(requestedAt) - Date.parse(outcome.newestDataAt));
    ctx.reportRpo({
      measuredSeconds: Math.round(rpoMs) / 1000,
      lostWrites: 0,
      unknownWrites: 0,
      method: `restore point requested (${requestedAt}) - newest data in the restored database (${outcome.newestDataAt}, ${outcome.newestDataMethod})`,
    });
  } else {
    ctx.reportRpo({
      measuredSeconds: null,
      lostWrites: 0,
      unknownWrites: 0,
      method: 'restore',
      reason: `the restore did not verify: ${outcome.problem ?? 'no newest data time'}`,
    });
  }
  const { scratch: _s, tables: _t, ...kept } = outcome;
  return { ok: outcome.ok, problem: outcome.problem, selectionProblem: null, outcome: kept, ...base };
}

const restoreIntoScratch = action<Selected, Restored>({
  name: 'restore backup into a scratch cluster',
  description:
    'download the backup with ranged parallel reads (size and sha256 checked against its manifest), restore it into a new scratch PostgreSQL cluster, verify it; the live database is never touched',
  select,
  describeTargets: (s) =>
    s.backup ? [`${s.backup.folder} (taken ${s.backup.takenAt}) -> scratch cluster in ${s.root}`] : [`nothing: ${s.problem}`],
  run: restore,
  rollback: {
    description: 'drop the scratch cluster: stop it and delete its folder',
    restores: 'no scratch cluster of this restore is left: its folder is gone, and with it the server that ran from it',
    byHand: 'stop the scratch server (pg_ctl stop -D <folder>/data -m immediate, as the postgres user) and delete the folder named above',
    timeout: '2m',
    holds: async (_ctx, { selected }) =>
      existsSync(selected.root)
        ? { ok: false, detail: `scratch folder ${selected.root} is still there` }
        : { ok: true, detail: `scratch folder ${selected.root} is gone` },
    converge: async (_ctx, { selected }) => {
      await dropScratch(selected.root);
      return `stopped the scratch cluster in ${selected.root} and deleted its folder`;
    },
  },
});

const step = (name: string, pick: (r: Restored) => { ok: boolean; detail: string } | null) =>
  probe(name, async (ctx) => {
    const r = ctx.resultOf(restoreIntoScratch);
    if (!r) return { ok: false, detail: 'the restore did not run' };
    // A step after the one that failed is reported, but as a note: the failure's own probe carries the severity.
    return pick(r) ?? { ok: false, severity: 'SEV4', detail: `not reached: ${r.problem ?? 'an earlier step failed'}` };
  });

const POLICY: Array<{ name: string; checks: PolicyCheck[] }> = [
  { name: 'backup policy: newest backup younger than the maximum age', checks: ['exists', 'newest-age'] },
  { name: 'backup policy: backups reach back over the coverage, without gaps', checks: ['coverage', 'gap', 'manifest'] },
  { name: 'backup policy: nothing older than the retention', checks: ['retention'] },
];

const policyProbe = (name: string, checks: PolicyCheck[]) =>
  probe(name, async (ctx) => {
    const r = ctx.resultOf(restoreIntoScratch);
    if (!r) return { ok: false, detail: 'the backup listing was not read' };
    const mine = r.findings.filter((f) => checks.includes(f.check));
    if (mine.length === 0) return { ok: true, detail: 'holds' };
    const failing = mine.filter((f) => failsDrill(f, ctx.params.failOn));
    const text = mine.map((f) => `${f.severity} ${f.title}: ${f.detail}`).join('; ');
    if (failing.length === 0) return { ok: true, detail: `below the ${ctx.params.failOn} threshold: ${text}` };
    const worst = failing.map((f) => f.severity).sort()[0]!;
    return { ok: false, severity: worst, detail: text };
  });

export default define({
  name: 'blob-restore',
  description:
    'Restore the latest PostgreSQL backup (or the one before a time; point in time for physical backups) from Blob into a scratch cluster and verify it; check the backup policy.',
  tier: 'critical',
  dataClass: 'database',
  validate: (p) =>
    p.pointInTime && p.kind !== 'physical'
      ? [{ path: 'pointInTime', message: 'a point-in-time restore needs kind: physical (a logical dump has one point only)' }]
      : [],
  steadyState: [
    probe('backup store answers', async (ctx) => {
      const n = (
        await readCatalog(ctx.adapters.backups.store, { kind: ctx.params.kind, database: ctx.params.database, cluster: ctx.params.cluster })
      ).length;
      return { ok: true, detail: `${n} ${what(ctx.params)} listed in ${ctx.adapters.backups.where}` };
    }),
  ],
  actions: [restoreIntoScratch],
  recovery: {
    description: 'the backup is restored and verified (RTO = restore start to verified)',
    pollMs: 200,
    until: probe('restored database verified', async (ctx) => {
      const r = ctx.resultOf(restoreIntoScratch);
      if (!r) return { ok: false, detail: 'restore not finished' };
      return r.ok ? { ok: true, detail: 'restored and verified' } : { ok: false, final: true, detail: r.problem ?? 'restore failed' };
    }),
  },
  verify: [
    step('backup found, with its manifest', (r) =>
      r.selectionProblem ? { ok: false, detail: r.selectionProblem } : { ok: true, detail: 'manifest read' },
    ),
    step('download: size and sha256 match the manifest', (r) => {
      if (!r.outcome) return null;
      if (r.outcome.failedPhase === 'download') return { ok: false, detail: r.outcome.problem ?? 'download failed' };
      return { ok: true, detail: `${(r.outcome.bytes / 1e6).toFixed(1)} MB in ${(r.outcome.timings.downloadMs / 1000).toFixed(2)}s` };
    }),
    step('restore completed', (r) => {
      if (!r.outcome || r.outcome.failedPhase === 'download') return null;
      if (r.outcome.failedPhase === 'restore') return { ok: false, detail: r.outcome.problem ?? 'restore failed' };
      return { ok: true, detail: `in ${(r.outcome.timings.restoreMs / 1000).toFixed(2)}s` };
    }),
    step('restored data verified (pg_amcheck, rows and checksums, smoke query)', (r) => {
      if (!r.outcome || r.outcome.checks.length === 0) return null;
      const bad = r.outcome.checks.filter((c) => !c.ok);
      return { ok: bad.length === 0, detail: r.outcome.checks.map((c) => `${c.name}: ${c.detail}`).join('; ') };
    }),
    ...POLICY.map((p) => policyProbe(p.name, p.checks)),
  ],
});
