/**
 * The record's inputs: run folders from a results folder or a Blob container, the policy from drill
 * files, the previous quarter's record. Everything read is judged by the pure parsers in parse.ts; a
 * file that cannot be used becomes an ExcludedFile with its reason, never an exception. The Blob
 * container is reached through a RunStore the caller opens, so record/ does no storage I/O itself.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { DrillKind } from '../../config/types.ts';
import type { SecondStats } from '../../measure/request-log.ts';
import { UserError } from '../../errors.ts';
import { parseJsonLines, parseRunRecord, runContext, seriesFromMetrics, sha256 } from './parse.ts';
import { instantFromRunId } from './quarter.ts';
import type { ExcludedFile, PolicyRequirement, QuarterlyRecord, RunInput, RunSeries } from './types.ts';

export interface RunsRead {
  runs: RunInput[];
  excluded: ExcludedFile[];
  warnings: string[];
  /** sha256 of every run.json found, readable or not, by run folder name: what `drill verify` compares. */
  digests: Map<string, string>;
}

/**
 * Every run folder under `runsDir`. `label` is how files are named in messages and in the record
 * (the folder as typed, or the blob:// URL they were downloaded from).
 */
export function readRunsFolder(runsDir: string, label = runsDir): RunsRead {
  const out: RunsRead = { runs: [], excluded: [], warnings: [], digests: new Map() };
  if (!existsSync(runsDir)) return out;
  for (const name of readdirSync(runsDir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(runsDir, name);
    const file = `${label}/${name}`;
    if (!statSync(path).isDirectory()) {
      out.excluded.push({ file, reason: 'not a run folder: a stray file among the run folders', dated: instantFromRunId(name) });
      continue;
    }
    const runJson = join(path, 'run.json');
    if (!existsSync(runJson)) {
      const why = existsSync(join(path, 'events.jsonl'))
        ? 'the run did not finish: events.jsonl but no run.json (crashed or killed; `drill recover` runs its rollbacks)'
        : 'no run.json in the folder';
      out.excluded.push({ file: `${file}/run.json`, reason: why, dated: instantFromRunId(name) });
      continue;
    }
    const bytes = readFileSync(runJson);
    out.digests.set(name, sha256(bytes));
    const parsed = parseRunRecord(bytes.toString('utf8'));
    if (!parsed.ok) {
      out.excluded.push({ file: `${file}/run.json`, reason: parsed.reason, dated: instantFromRunId(name) });
      continue;
    }
    const events = readLines(join(path, 'events.jsonl'), `${file}/events.jsonl`, out.warnings);
    const metricsLines = readLines(join(path, 'metrics.jsonl'), `${file}/metrics.jsonl`, out.warnings);
    let series: RunSeries;
    if (metricsLines === null)
      series = { resolutionSeconds: 1, points: [], reason: 'no metrics.jsonl: the run is counted, its charts cannot be drawn' };
    else series = seriesFromMetrics(metricsLines as Array<Partial<SecondStats>>);
    if (metricsLines !== null && series.points.length === 0 && parsed.value.load.scheduled > 0)
      series.reason = 'metrics.jsonl holds no usable second';
    out.runs.push({
      file: `${file}/run.json`,
      digest: sha256(bytes),
      record: parsed.value,
      context: runContext((events ?? []) as Array<Record<string, unknown>>),
      series,
    });
  }
  return out;
}

function readLines(path: string, label: string, warnings: string[]): unknown[] | null {
  if (!existsSync(path)) return null;
  const { values, bad } = parseJsonLines(readFileSync(path, 'utf8'));
  if (bad.length > 0)
    warnings.push(
      `${label}: ${bad.length} unreadable line${bad.length === 1 ? '' : 's'} skipped (line ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ', …' : ''})`,
    );
  return values.filter((v) => typeof v === 'object' && v !== null);
}

export interface BlobSource {
  container: string;
  prefix: string;
  url: string;
}

/** `blob://container/prefix` */
export function parseBlobUrl(text: string): BlobSource {
  const m = /^blob:\/\/([a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?)(?:\/(.*))?$/.exec(text.trim());
  if (!m) {
    throw new UserError(`--from ${JSON.stringify(text)} is not a Blob location`, {
      next: 'write it as blob://CONTAINER/PREFIX (container: 3-63 lowercase letters, digits, hyphens), with the account in AZURE_STORAGE_CONNECTION_STRING',
      untouched: 'nothing was read or written',
    });
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { container: m[1]!, prefix, url: `blob://${m[1]}${prefix ? `/${prefix}` : ''}` };
}

/** Files of a run folder the record reads; requests.tsv is left in the container (it can be hundreds of MB). */
const RUN_FILES = new Set(['run.json', 'events.jsonl', 'metrics.jsonl']);

/** A Blob container as the record reads it: the files under a prefix, each copied to a local path on demand. */
export interface RunStore {
  /** The storage account's endpoint, as the record names its source. */
  endpoint: string;
  /** Every file name under the prefix. */
  list(prefix: string): Promise<string[]>;
  download(name: string, to: string): Promise<void>;
}

export type OpenRunStore = (src: BlobSource, env: Record<string, string | undefined>) => RunStore;

/**
 * Run folders stored in Blob as `<prefix>/<run id>/run.json` (+ events.jsonl, metrics.jsonl), so CI runs
 * from many machines add up. They are downloaded to a scratch folder and read like a local one.
 */
export async function readRunsFromBlob(src: BlobSource, store: RunStore): Promise<RunsRead & { endpoint: string }> {
  const base = src.prefix ? `${src.prefix}/` : '';
  const scratch = mkdtempSync(join(tmpdir(), 'drill-record-'));
  try {
    const names = await store.list(base);
    const stray: ExcludedFile[] = [];
    for (const name of names) {
      const rest = name.slice(base.length);
      const parts = rest.split('/');
      if (parts.length !== 2 || !parts[0]) {
        if (rest.endsWith('.json'))
          stray.push({
            file: `${src.url}/${rest}`,
            reason: 'not in a run folder (<run id>/run.json)',
            dated: instantFromRunId(parts[0] ?? rest),
          });
        continue;
      }
      if (!RUN_FILES.has(parts[1]!)) continue;
      const local = join(scratch, parts[0], parts[1]!);
      await mkdir(dirname(local), { recursive: true });
      try {
        await store.download(name, local);
      } catch (e) {
        stray.push({
          file: `${src.url}/${rest}`,
          reason: `could not be downloaded: ${(e as Error).message}`,
          dated: instantFromRunId(parts[0]),
        });
      }
    }
    const read = readRunsFolder(scratch, src.url);
    // A run whose run.json failed to download shows as unfinished: keep the download error instead.
    const failed = new Set(stray.map((s) => s.file));
    read.excluded = [...read.excluded.filter((x) => !failed.has(x.file)), ...stray];
    return { ...read, endpoint: store.endpoint };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export interface PolicyRead {
  requirements: PolicyRequirement[];
  drills: Array<{
    name: string;
    kind: DrillKind | null;
    file: string | null;
    owner: string | null;
    participants: string[];
    approver: string | null;
  }>;
  warnings: string[];
  reason?: string;
}

const KINDS = new Set(['quarterly', 'monthly', 'annual', 'adhoc']);

/**
 * The policy as the drill files state it: each scenario entry of a `quarterly` drill is required once
 * a quarter, of a `monthly` drill once a month. Read leniently (name, kind, entries): a drill that
 * fails full validation for another reason still states what the organisation requires.
 */
export function readPolicy(drillsDir: string): PolicyRead {
  const out: PolicyRead = { requirements: [], drills: [], warnings: [] };
  if (!existsSync(drillsDir)) {
    out.reason = `no drills folder at ${drillsDir}: the policy (drills of kind quarterly and monthly) is unknown`;
    return out;
  }
  for (const name of readdirSync(drillsDir).sort()) {
    if (!/\.ya?ml$/.test(name)) continue;
    const file = join(drillsDir, name);
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (e) {
      out.warnings.push(`${file}: not readable YAML (${(e as Error).message.split('\n')[0]}); its requirements are not in the coverage`);
      continue;
    }
    const d = (doc ?? {}) as Record<string, unknown>;
    if (typeof d.name !== 'string') {
      out.warnings.push(`${file}: no drill name; its requirements are not in the coverage`);
      continue;
    }
    const kind = typeof d.kind === 'string' && KINDS.has(d.kind) ? (d.kind as DrillKind) : null;
    const owner = typeof d.owner === 'string' ? d.owner : null;
    out.drills.push({
      name: d.name,
      kind,
      file,
      owner,
      participants: Array.isArray(d.participants) ? d.participants.filter((p): p is string => typeof p === 'string') : [],
      approver: typeof d.approver === 'string' ? d.approver : null,
    });
    if (kind !== 'quarterly' && kind !== 'monthly') continue;
    const entries = Array.isArray(d.scenarios) ? (d.scenarios as Array<Record<string, unknown>>) : [];
    for (const e of entries) {
      const module = typeof e?.scenario === 'string' ? e.scenario : null;
      const entry = typeof e?.name === 'string' ? e.name : module;
      if (!entry || !module) {
        out.warnings.push(`${file}: a scenario entry without a scenario name is left out of the coverage`);
        continue;
      }
      out.requirements.push({ cadence: kind, drill: d.name, scenario: entry, scenarioModule: module, drillFile: file, owner });
    }
  }
  if (out.requirements.length === 0) out.reason = `no drill of kind quarterly or monthly in ${drillsDir}: the policy requires nothing`;
  return out;
}

/** The previous quarter's record.json, or why there is none to compare with. */
export function readPreviousRecord(path: string): { record: QuarterlyRecord | null; reason?: string; excluded?: ExcludedFile } {
  if (!existsSync(path)) return { record: null, reason: `no previous record at ${path}` };
  const text = readFileSync(path, 'utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const reason = `not valid JSON (${(e as Error).message})`;
    return {
      record: null,
      reason: `${path}: ${reason}`,
      excluded: { file: path, reason: `previous record unusable for the trend: ${reason}`, dated: null },
    };
  }
  const r = v as Partial<QuarterlyRecord>;
  if (r?.kind !== 'drill-quarterly-record' || r.schemaVersion !== 1 || !r.summary || !Array.isArray(r.scenarios) || !r.integrity) {
    const reason = 'not a drill quarterly record (kind drill-quarterly-record, schemaVersion 1)';
    return {
      record: null,
      reason: `${path}: ${reason}`,
      excluded: { file: path, reason: `previous record unusable for the trend: ${reason}`, dated: null },
    };
  }
  return { record: v as QuarterlyRecord };
}
