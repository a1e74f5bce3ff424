/**
 * `drill record`, `drill verify` and `drill report` as functions: read the inputs (sources.ts), build
 * (build.ts, pure), render, write. The CLI only maps options and exit codes.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-file.ts';
import { renderRecordHtml, renderRunHtml } from '../render/html.ts';
import { renderRecordMarkdown, runMarkdown } from '../render/markdown.ts';
import { buildQuarterlyRecord } from './build.ts';
import { checkChain, type ChainProblem } from './integrity.ts';
import { parseQuarter, previousQuarter, type Quarter } from './quarter.ts';
import { summarizeRun } from './rollup.ts';
import {
  parseBlobUrl,
  readPolicy,
  readPreviousRecord,
  readRunsFolder,
  readRunsFromBlob,
  type OpenRunStore,
  type RunsRead,
} from './sources.ts';
import type { QuarterlyRecord } from './types.ts';

export const HARNESS_VERSION: string = (() => {
  try {
    return (
      (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
})();

export function quarterOrThrow(text: string): Quarter {
  const q = parseQuarter(text);
  if (q === null) {
    throw new UserError(`--quarter ${JSON.stringify(text)} is not a quarter: write YYYY-Qn with n from 1 to 4 (e.g. 2026-Q4)`, {
      untouched: 'nothing was read or written',
    });
  }
  return q;
}

export interface RecordOptions {
  quarter: string;
  resultsDir: string;
  /** Default <resultsDir>/records. */
  outDir?: string;
  drillsDir: string;
  from?: string;
  people?: { participants?: string[]; approver?: string; signedBy?: string; signedAt?: string };
  now?: string;
  env?: Record<string, string | undefined>;
  /** Opens the Blob container `from` names (the CLI's, backed by the Blob adapter). */
  openRunStore: OpenRunStore;
}

export interface RecordWritten {
  record: QuarterlyRecord;
  dir: string;
  files: string[];
}

async function readSource(o: RecordOptions): Promise<{ read: RunsRead; source: QuarterlyRecord['source'] }> {
  if (o.from) {
    const src = parseBlobUrl(o.from);
    const read = await readRunsFromBlob(src, o.openRunStore(src, o.env ?? process.env));
    return { read, source: { kind: 'blob', url: src.url, endpoint: read.endpoint } };
  }
  const runsDir = join(o.resultsDir, 'runs');
  if (!existsSync(runsDir)) {
    throw new UserError(`no run folders: ${runsDir} does not exist`, {
      untouched: 'nothing was written',
      next: 'run a drill first (`drill run drills/lab.yaml`), or point --results at the folder that holds runs/',
    });
  }
  return { read: readRunsFolder(runsDir), source: { kind: 'folder', path: runsDir } };
}

export async function makeRecord(o: RecordOptions): Promise<RecordWritten> {
  const quarter = quarterOrThrow(o.quarter);
  const outDir = o.outDir ?? join(o.resultsDir, 'records');
  const { read, source } = await readSource(o);
  const policy = readPolicy(o.drillsDir);
  const prevQ = previousQuarter(quarter);
  const prev = readPreviousRecord(join(outDir, prevQ.id, 'record.json'));
  const record = buildQuarterlyRecord({
    quarter,
    generatedAt: o.now ?? new Date().toISOString(),
    harnessVersion: HARNESS_VERSION,
    source,
    runs: read.runs,
    excluded: [...read.excluded, ...(prev.excluded ? [prev.excluded] : [])],
    requirements: policy.requirements,
    policyReason: policy.reason,
    policyDrills: policy.drills,
    previous: prev.record,
    previousReason: prev.reason,
    people: o.people ?? {},
    warnings: [...read.warnings, ...policy.warnings],
  });
  const dir = join(outDir, quarter.id);
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, 'record.json'), join(dir, 'record.md'), join(dir, 'record.html')];
  writeJsonAtomic(files[0]!, record);
  writeFileAtomic(files[1]!, renderRecordMarkdown(record));
  writeFileAtomic(files[2]!, renderRecordHtml(record));
  return { record, dir, files };
}

export interface VerifyResult {
  record: QuarterlyRecord;
  checked: number;
  problems: ChainProblem[];
  /** Runs of the quarter in the source now that the record does not hold (made after it, or held back). */
  notInRecord: string[];
  source: string;
}

export async function verifyRecord(
  recordDir: string,
  o: { resultsDir?: string; from?: string; env?: Record<string, string | undefined>; openRunStore: OpenRunStore },
): Promise<VerifyResult> {
  const path = existsSync(join(recordDir, 'record.json')) ? join(recordDir, 'record.json') : recordDir;
  if (!existsSync(path) || !path.endsWith('.json')) {
    throw new UserError(`no record at ${recordDir}: expected a folder with record.json`, {
      untouched: 'nothing',
      next: 'name a folder made by `drill record`, e.g. results/records/2026-Q4',
    });
  }
  let record: QuarterlyRecord;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as QuarterlyRecord;
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message}): the record itself is damaged`, {
      exitCode: 1,
      untouched: 'nothing',
      next: 'rebuild it with `drill record --quarter ...` from the run records, then verify again',
    });
  }
  if (record?.kind !== 'drill-quarterly-record' || !record.integrity?.entries) {
    throw new UserError(`${path} is not a drill quarterly record`, { untouched: 'nothing', next: 'name a folder made by `drill record`' });
  }
  const quarter = parseQuarter(record.quarter);
  let read: RunsRead;
  let source: string;
  const from = o.from ?? (o.resultsDir === undefined && record.source.kind === 'blob' ? record.source.url : undefined);
  if (from) {
    const src = parseBlobUrl(from);
    read = await readRunsFromBlob(src, o.openRunStore(src, o.env ?? process.env));
    source = from;
  } else {
    const runsDir =
      o.resultsDir !== undefined
        ? join(o.resultsDir, 'runs')
        : record.source.kind === 'folder'
          ? record.source.path
          : join('results', 'runs');
    read = readRunsFolder(runsDir);
    source = runsDir;
  }
  // Digests are of the bytes as stored, parseable or not: a damaged run record is a mismatch, not a missing run.
  const actual = new Map<string, string | null>();
  for (const e of record.integrity.entries) {
    const folder = e.file.split('/').at(-2) ?? e.id;
    actual.set(e.id, read.digests.get(folder) ?? read.digests.get(e.id) ?? null);
  }
  const problems = checkChain(record.integrity, actual);
  const inRecord = new Set(record.integrity.entries.map((e) => e.id));
  const notInRecord =
    quarter === null
      ? []
      : read.runs
          .filter(
            (r) =>
              !inRecord.has(r.record.id) &&
              Date.parse(r.record.startedAt) >= Date.parse(quarter.from) &&
              Date.parse(r.record.startedAt) < Date.parse(quarter.to),
          )
          .map((r) => r.record.id);
  return { record, checked: record.integrity.entries.length, problems, notInRecord, source };
}

export interface ReportWritten {
  files: string[];
  runDir: string;
}

/** `drill report RUN_ID`: report.html and report.md beside the run's run.json. */
export function makeRunReport(resultsDir: string, runId: string): ReportWritten {
  const runsDir = join(resultsDir, 'runs');
  const runDir = join(runsDir, runId);
  if (!existsSync(runDir)) {
    throw new UserError(`no run ${runId} in ${runsDir}`, { untouched: 'nothing', next: `list the runs with \`ls ${runsDir}\`` });
  }
  const read = readRunsFolder(runsDir);
  const run = read.runs.find((r) => r.record.id === runId || r.file.endsWith(`/${runId}/run.json`));
  if (!run) {
    const why = read.excluded.find((e) => e.file.endsWith(`/${runId}/run.json`))?.reason ?? 'run.json could not be read';
    throw new UserError(`cannot report run ${runId}: ${join(runDir, 'run.json')}: ${why}`, { untouched: 'nothing' });
  }
  const summary = summarizeRun(run);
  const files = [join(runDir, 'report.html'), join(runDir, 'report.md')];
  writeFileAtomic(files[0]!, renderRunHtml(summary, run.record.findings));
  const findings = run.record.findings.length
    ? run.record.findings.map((f) => `- **${f.severity}** ${f.title}: ${f.detail}${f.due ? ` (due ${f.due})` : ''}`).join('\n')
    : 'No findings.';
  writeFileAtomic(files[1]!, `# Drill run ${summary.scenario}\n\n${runMarkdown(summary, '##')}\n## Findings\n\n${findings}\n`);
  return { files, runDir };
}
