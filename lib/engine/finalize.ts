import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scoreRun } from '../score/score-run.ts';
import { buildRunRecord, describeEnvironment, type RunRecord } from '../record/run-record.ts';
import { writeRequestsTsv } from '../record/files.ts';
import { writeJsonAtomic } from '../util/atomic-file.ts';
import type { RunFacts } from './facts.ts';
import { writesTsv } from '../load/ledger.ts';
import { filesTsv, logsTsv } from '../load/class-ledgers.ts';

export interface FinalizedRun {
  record: RunRecord;
  exitCode: number;
  /** The run folder: run.json, events.jsonl, metrics.jsonl, requests.tsv. */
  dir: string;
}

// Read once: the record names the harness version that scored it, so a re-score can be told apart.
const HARNESS_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/**
 * Scores a run, shapes its record, and writes what an auditor or a re-score needs: run.json (atomically) and
 * requests.tsv (every request). The engine's journal (events.jsonl) and metrics.jsonl were
 * already written while the run went on.
 */
export function finalizeRun(facts: RunFacts): FinalizedRun {
  const scored = scoreRun(facts);
  const record = buildRunRecord({ ...facts, environment: describeEnvironment(HARNESS_VERSION) }, scored);
  if (facts.load) writeRequestsTsv(join(facts.dir, 'requests.tsv'), facts.load.log);
  if (facts.load?.ledger && facts.load.ledger.count > 0) writeFileSync(join(facts.dir, 'writes.tsv'), writesTsv(facts.load.ledger));
  // The file-storage and logs ledgers beside it, so each class's RPO can be re-checked offline against any read-back.
  if (facts.load?.classes) {
    writeFileSync(join(facts.dir, 'files.tsv'), filesTsv(facts.load.classes.files));
    writeFileSync(join(facts.dir, 'logs.tsv'), logsTsv(facts.load.classes.logs));
  }
  writeJsonAtomic(join(facts.dir, 'run.json'), record);
  return { record, exitCode: record.exitCode, dir: facts.dir };
}
