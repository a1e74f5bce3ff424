import { createHash } from 'node:crypto';
import type { RunRecord } from '../run-record.ts';
import type { DataClass, DrillKind, Tier } from '../../config/types.ts';
import type { SecondStats } from '../../measure/request-log.ts';
import type { RunContext, RunSeries, SeriesPoint } from './types.ts';

/**
 * Reading run folders' text into what the record builder takes. Pure: the caller reads the bytes,
 * these functions judge them, so a truncated or foreign file is a reason in the record, not a crash.
 */

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const STATUSES = new Set(['passed', 'failed', 'aborted', 'error']);

/** run.json's bytes as a RunRecord, or why they are not one. */
export function parseRunRecord(text: string): Parsed<RunRecord> {
  if (text.trim() === '') return { ok: false, reason: 'empty file' };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    // A file cut short fails where it ends: at its last character, whatever the parser calls it.
    const pos = /at position (\d+)/.exec(msg);
    const truncated = /end of (JSON )?input/i.test(msg) || (pos !== null && Number(pos[1]) >= text.trimEnd().length - 1);
    return { ok: false, reason: `not valid JSON${truncated ? ', the file looks truncated' : ''} (${msg})` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { ok: false, reason: 'not a drill run record: the JSON is not an object' };
  const r = v as Record<string, unknown>;
  if (r.schemaVersion === undefined && r.id === undefined) {
    const keys = Object.keys(r).slice(0, 4).join(', ');
    return { ok: false, reason: `not a drill run record: no schemaVersion or id (keys: ${keys || 'none'})` };
  }
  if (r.schemaVersion !== 1)
    return { ok: false, reason: `unsupported run record schemaVersion ${JSON.stringify(r.schemaVersion)} (this drill reads 1)` };
  const missing: string[] = [];
  for (const k of ['id', 'drill', 'scenario', 'startedAt', 'endedAt', 'status', 'tier', 'dataClass'])
    if (typeof r[k] !== 'string') missing.push(k);
  const o = r.objectives as Record<string, unknown> | undefined;
  if (typeof o !== 'object' || o === null || typeof o.rto !== 'object' || typeof o.rpo !== 'object' || !Array.isArray(o.slo))
    missing.push('objectives');
  if (!Array.isArray(r.marks)) missing.push('marks');
  if (typeof r.load !== 'object' || r.load === null) missing.push('load');
  if (typeof r.errorBudget !== 'object' || r.errorBudget === null) missing.push('errorBudget');
  if (!Array.isArray(r.findings)) missing.push('findings');
  if (missing.length > 0) return { ok: false, reason: `not a complete drill run record: missing or wrong ${missing.join(', ')}` };
  if (Number.isNaN(Date.parse(r.startedAt as string)))
    return { ok: false, reason: `startedAt ${JSON.stringify(r.startedAt)} is not a time` };
  if (!STATUSES.has(r.status as string)) return { ok: false, reason: `unknown status ${JSON.stringify(r.status)}` };
  return { ok: true, value: v as RunRecord };
}

const KINDS = new Set(['quarterly', 'monthly', 'annual', 'adhoc']);

/** The drill as the run's journal recorded it at `run.start`: kind, owner, people, service. */
export function runContext(events: ReadonlyArray<Record<string, unknown>>): RunContext {
  const start = events.find((e) => e.type === 'run.start');
  const d = (start?.drill ?? {}) as Record<string, unknown>;
  const service = d.service as { name?: unknown; tier?: unknown; dataClass?: unknown } | undefined;
  return {
    drillKind: typeof d.kind === 'string' && KINDS.has(d.kind) ? (d.kind as DrillKind) : null,
    drillFile: typeof d.file === 'string' ? d.file : null,
    owner: typeof d.owner === 'string' ? d.owner : null,
    participants: Array.isArray(d.participants) ? d.participants.filter((p): p is string => typeof p === 'string') : [],
    approver: typeof d.approver === 'string' ? d.approver : null,
    service:
      service && typeof service.name === 'string'
        ? { name: service.name, tier: service.tier as Tier, dataClass: service.dataClass as DataClass }
        : null,
  };
}

/** JSON lines where a bad line is skipped and counted, so one torn line does not hide a run's charts. */
export function parseJsonLines(text: string): { values: unknown[]; bad: number[] } {
  const values: unknown[] = [];
  const bad: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      values.push(JSON.parse(line));
    } catch {
      bad.push(i + 1);
    }
  });
  return { values, bad };
}

/** Above this many seconds a run's series is bucketed: a 2 h soak would otherwise make the record megabytes. */
export const MAX_POINTS = 900;

/** metrics.jsonl as chart points; long runs are bucketed keeping the worst latency of each bucket. */
export function seriesFromMetrics(lines: ReadonlyArray<Partial<SecondStats>>): RunSeries {
  const seconds = lines
    .filter((l) => typeof l.t === 'number' && typeof l.scheduled === 'number')
    .sort((a, b) => a.t! - b.t!)
    .map((l) => {
      const errors = l.errors ? Object.values(l.errors).reduce((s, n) => s + (n ?? 0), 0) : 0;
      const failed = errors + (l.dropped ?? 0);
      return {
        t: l.t!,
        scheduled: l.scheduled!,
        ok: l.ok ?? 0,
        failed,
        errorRate: l.scheduled! > 0 ? failed / l.scheduled! : null,
        p50Ms: l.p50Ms ?? null,
        p95Ms: l.p95Ms ?? null,
        p99Ms: l.p99Ms ?? null,
      } satisfies SeriesPoint;
    });
  const size = Math.max(1, Math.ceil(seconds.length / MAX_POINTS));
  if (size === 1) return { resolutionSeconds: 1, points: seconds };
  const points: SeriesPoint[] = [];
  for (let i = 0; i < seconds.length; i += size) {
    const b = seconds.slice(i, i + size);
    const sum = (f: (p: SeriesPoint) => number) => b.reduce((s, p) => s + f(p), 0);
    const worst = (f: (p: SeriesPoint) => number | null) => {
      const xs = b.map(f).filter((x): x is number => x !== null);
      return xs.length ? Math.max(...xs) : null;
    };
    const scheduled = sum((p) => p.scheduled);
    const failed = sum((p) => p.failed);
    points.push({
      t: b[0]!.t,
      scheduled,
      ok: sum((p) => p.ok),
      failed,
      errorRate: scheduled > 0 ? failed / scheduled : null,
      p50Ms: worst((p) => p.p50Ms),
      p95Ms: worst((p) => p.p95Ms),
      p99Ms: worst((p) => p.p99Ms),
    });
  }
  return { resolutionSeconds: size, points };
}
