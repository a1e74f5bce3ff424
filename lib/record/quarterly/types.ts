import type { DataClass, DrillKind, Tier } from '../../config/types.ts';
import type { Severity } from '../../score/findings.ts';
import type { RunRecord } from '../run-record.ts';

/**
 * record.json: the quarterly drill record. Everything in it is derived from run records (and the
 * drill files that state the policy) by pure functions, so the same inputs always give the same record.
 */

/** One second of a run's load, as the charts draw it (metrics.jsonl without the histogram). */
export interface SeriesPoint {
  /** Seconds since the run's time zero (start of the bucket). */
  t: number;
  scheduled: number;
  ok: number;
  /** errors + dropped */
  failed: number;
  /** failed / scheduled; null when nothing was scheduled in the second. */
  errorRate: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface RunSeries {
  /** Seconds per point: 1 unless a long run was bucketed to keep the record small. */
  resolutionSeconds: number;
  points: SeriesPoint[];
  /** Set when metrics.jsonl was missing or unreadable: the run is counted, its charts are not drawn. */
  reason?: string;
}

/** What the run's own journal says about the drill it came from (events.jsonl, `run.start`). */
export interface RunContext {
  drillKind: DrillKind | null;
  drillFile: string | null;
  owner: string | null;
  participants: string[];
  approver: string | null;
  service: { name: string; tier: Tier; dataClass: DataClass } | null;
}

/** A readable run as the record builder takes it. */
export interface RunInput {
  /** Where it was read from, for messages and verify (relative to the source). */
  file: string;
  /** sha256 of run.json's exact bytes. */
  digest: string;
  record: RunRecord;
  context: RunContext;
  series: RunSeries;
}

/** A file the record could not use, and why: listed in the record, never silently skipped. */
export interface ExcludedFile {
  file: string;
  reason: string;
  /** The run's start when it could be told (from the folder name), else null. */
  dated: string | null;
}

export interface PolicyRequirement {
  cadence: 'quarterly' | 'monthly';
  drill: string;
  /** The drill's scenario entry name (what a run record calls `scenario`). */
  scenario: string;
  scenarioModule: string;
  drillFile: string;
  owner: string | null;
}

export type CoverageStatus = 'ran' | 'missing' | 'stale' | 'incomplete' | 'due';

export interface CoverageItem {
  cadence: 'quarterly' | 'monthly';
  /** `2026-Q4` or `2026-11`. */
  period: string;
  drill: string;
  scenario: string;
  /**
   * ran: a run in the period was judged (passed or failed); incomplete: runs in the period were all aborted or
   * errored; stale: the last run is from before it; missing: never ran; due: period not over yet.
   */
  status: CoverageStatus;
  runs: number;
  lastRunId: string | null;
  lastRunAt: string | null;
  lastStatus: RunRecord['status'] | null;
  owner: string | null;
}

export interface RunSummary {
  id: string;
  file: string;
  drill: string;
  drillKind: DrillKind | null;
  scenario: string;
  scenarioModule: string;
  service: string;
  target: string;
  tier: Tier;
  dataClass: DataClass;
  startedAt: string;
  endedAt: string;
  status: RunRecord['status'];
  exitCode: number;
  marks: RunRecord['marks'];
  rto: RunRecord['objectives']['rto'] & { resolutionMs: number | null; windowSeconds: number };
  rpo: RunRecord['objectives']['rpo'];
  /** The data classes other than the run's own (file storage, logs); empty for a run that measured none. */
  otherRpoClasses: RunRecord['objectives']['rpoClasses'];
  /** Every phase's SLOs (baseline, fault, recovery). */
  slo: Array<{
    phase: string;
    name: string;
    kind: string;
    threshold: string;
    measured: number | null;
    met: boolean | null;
    reason?: string;
  }>;
  load: {
    scheduled: number;
    ok: number;
    errors: number;
    dropped: number;
    availability: number | null;
    p50Ms: number | null;
    p95Ms: number | null;
    p99Ms: number | null;
    maxMs: number | null;
  };
  errorBudget: RunRecord['errorBudget'];
  findings: number;
  /** The maintenance window and notice the run started under; null on the lab and in records from before windows. */
  window: RunRecord['window'];
  digest: string;
  series: RunSeries;
}

/** A run that started outside its maintenance window, or without the policy's notice: what auditors ask about first. */
export interface WindowException {
  run: string;
  drill: string;
  scenario: string;
  target: string;
  startedAt: string;
  /** Started outside the window (or overrunning it) with --outside-window. */
  override: boolean;
  reason: string | null;
  noticeGivenAt: string | null;
  noticeInTime: boolean;
}

export interface FigureSpread {
  last: number | null;
  min: number | null;
  max: number | null;
  /** Runs that had a measured value. */
  measured: number;
}

export interface SloRollup {
  phase: string;
  name: string;
  kind: string;
  threshold: string;
  judged: number;
  met: number;
  /** The worst value any run measured: the lowest availability, the highest error rate or latency. */
  worst: number | null;
}

export interface ScenarioRollup {
  drill: string;
  scenario: string;
  scenarioModule: string;
  service: string;
  tier: Tier;
  dataClass: DataClass;
  runs: number;
  byStatus: Record<RunRecord['status'], number>;
  lastRun: { id: string; startedAt: string; status: RunRecord['status'] };
  rto: {
    targetSeconds: number;
    measured: FigureSpread;
    met: number;
    missed: number;
    method: string | null;
    resolutionMs: number | null;
    windowSeconds: number;
  };
  rpo: {
    targetSeconds: number;
    measured: FigureSpread;
    met: number;
    missed: number;
    method: string | null;
    lostWrites: number | null;
    unknownWrites: number | null;
  };
  slo: SloRollup[];
  errorBudget: { downtimeSeconds: number; consumedRatio: number | null };
}

export interface ServiceRollup {
  service: string;
  tier: Tier;
  runs: number;
  scenarios: number;
  downtimeSeconds: number;
  monthlyBudgetSeconds: number | null;
  /** Downtime the drills caused in each month, against that month's budget. */
  months: Array<{ month: string; downtimeSeconds: number; consumedRatio: number | null }>;
}

export interface RolledFinding {
  id: string;
  severity: Severity;
  title: string;
  detail: string;
  /** Null until a person takes it: shown as a blank to fill. */
  owner: string | null;
  due: string | null;
  source: 'run' | 'coverage';
  drill: string | null;
  scenario: string | null;
  objective: string | null;
  runs: string[];
  occurrences: number;
  firstSeen: string;
  lastSeen: string;
  /** Same drill, scenario and objective as a finding of the previous quarter. */
  recurring: boolean;
  key: string;
}

export interface RemediationAction {
  id: string;
  finding: string;
  action: string;
  owner: string | null;
  due: string | null;
  status: 'open';
}

export interface TrendMetric {
  name: string;
  previous: number | null;
  current: number | null;
  /** Whether a higher number is better (pass rate) or worse (RTO, findings). */
  better: 'higher' | 'lower';
  direction: 'better' | 'worse' | 'same' | 'n/a';
}

export interface Trend {
  previousQuarter: string;
  available: boolean;
  reason?: string;
  overall: TrendMetric[];
  scenarios: Array<{ drill: string; scenario: string; metrics: TrendMetric[] }>;
}

export interface ChainEntry {
  id: string;
  file: string;
  digest: string;
  /** sha256(previous chain value + "\n" + id + "\n" + digest), hex. */
  chain: string;
}

export interface Integrity {
  algorithm: 'sha256';
  rule: string;
  /** The previous quarter's chain head when its record existed, else 64 zeros. */
  genesis: string;
  genesisFrom: string | null;
  entries: ChainEntry[];
  head: string;
}

export interface QuarterlyRecord {
  schemaVersion: 1;
  kind: 'drill-quarterly-record';
  quarter: string;
  period: { from: string; to: string; months: string[] };
  generatedAt: string;
  harnessVersion: string;
  source: { kind: 'folder'; path: string } | { kind: 'blob'; url: string; endpoint: string };
  scope: {
    drills: Array<{ name: string; kind: DrillKind | null; file: string | null; owner: string | null }>;
    targets: string[];
    services: Array<{ name: string; tier: Tier; dataClass: DataClass }>;
    databases: string[];
    backupSets: string[];
  };
  people: { participants: string[]; approver: string | null; owners: string[] };
  signOff: { approver: string | null; signedBy: string | null; signedAt: string | null; statement: string };
  summary: {
    runs: number;
    byStatus: Record<RunRecord['status'], number>;
    scenarios: number;
    rtoMet: number;
    rtoMissed: number;
    rtoWorstSeconds: number | null;
    rpoMet: number;
    rpoMissed: number;
    lostWrites: number;
    unknownWrites: number;
    downtimeSeconds: number;
    findings: Record<Severity, number>;
    coverageGaps: number;
    excluded: number;
    headline: string;
  };
  scenarios: ScenarioRollup[];
  services: ServiceRollup[];
  runs: RunSummary[];
  findings: RolledFinding[];
  /** Runs on targets other than the lab that overrode the maintenance window or lacked timely notice. */
  windowExceptions: WindowException[];
  actions: RemediationAction[];
  trend: Trend;
  coverage: { requirements: number; items: CoverageItem[]; gaps: number; reason?: string };
  excluded: ExcludedFile[];
  warnings: string[];
  integrity: Integrity;
}
