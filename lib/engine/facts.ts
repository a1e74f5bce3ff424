import type { RpoMeasurement } from '../score/objectives.ts';
import type { Drill, ScenarioEntry } from '../config/types.ts';
import type { RequestLog, SecondStats } from '../measure/request-log.ts';
import type { WriteLedger } from '../load/ledger.ts';
import type { FileLedgerEntry, LogLedgerEntry } from '../measure/data-classes.ts';
import type { ClassMeasurement } from '../score/rpo-classes.ts';
import type { ProbeResult } from '../scenario/define.ts';
import type { Mark } from '../measure/timeline.ts';
import type { RunAbort } from './context.ts';
import type { ActionInput, WindowRecord } from '../record/run-record.ts';

/** What happened to one action and its rollback, as the record's `actions` lists it, with its place in the scenario. */
export interface ActionFact extends ActionInput {
  index: number;
}

export interface SkippedCheck {
  name: string;
  reason: string;
}

export interface ProbeFact extends ProbeResult {
  name: string;
  at: string;
}

/** Everything the engine observed in one run; scoring and the record are pure functions of it. */
export interface RunFacts {
  id: string;
  dir: string;
  drill: Drill;
  entry: ScenarioEntry;
  targetDetails: Record<string, unknown>;
  startedAt: string;
  endedAt: string;
  epochMs: number;
  marks: Mark[];
  steadyState: ProbeFact[];
  actions: ActionFact[];
  recoveryProbe: ProbeFact | null;
  verification: ProbeFact[];
  /** Verification probes that did not apply to this run, with why (no write ledger, no database). */
  skippedChecks: SkippedCheck[];
  abort: RunAbort | null;
  /** An unexpected exception inside the harness (exit 70), with its stack for the journal. */
  harnessError: { message: string; stack?: string } | null;
  load: {
    log: RequestLog;
    seconds: SecondStats[];
    startMs: number;
    endMs: number;
    ledger?: WriteLedger;
    /** The file and log ledgers, when the load uploaded attachments (load.attachments); written as files.tsv and logs.tsv. */
    classes?: { files: FileLedgerEntry[]; logs: LogLedgerEntry[] };
  } | null;
  /** Reported by the scenario (ctx.reportRpo); null when it writes no data or never measured. */
  rpo: RpoMeasurement | null;
  /** The other data classes read back after recovery (file storage, logs); absent when none was. */
  rpoClasses?: readonly ClassMeasurement[];
  /** The maintenance window and notice, as `drill run` judged them before starting; null on the lab. */
  window?: WindowRecord | null;
}
