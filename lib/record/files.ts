import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Outcome, OUTCOME_NAMES, type RequestLog, type SecondStats } from '../measure/request-log.ts';
import type { RunRecord } from './run-record.ts';

/**
 * The only module of measure/score/record that touches the disk. A run folder holds everything needed
 * to re-score the run offline: run.json (marks), events.jsonl, metrics.jsonl and requests.tsv.
 */

/** One line of metrics.jsonl. */
export function metricsLine(s: SecondStats): string {
  return JSON.stringify(s) + '\n';
}

const TSV_HEADER = 'scheduledMs\tlatencyMs\toutcome\ttemplate';

/** The shortest decimal that reads back as the same float32, so latencies round-trip exactly. */
function float32Text(x: number): string {
  for (let p = 6; p <= 9; p++) {
    const t = Number(x.toPrecision(p));
    if (Math.fround(t) === x) return String(t);
  }
  return String(x);
}

/** Every request, one line each, in schedule order. Written in blocks: a 10 min run at 5,000 req/s is 3 million lines. */
export function writeRequestsTsv(path: string, log: RequestLog): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, TSV_HEADER + '\n');
    const BLOCK = 20_000;
    for (let start = 0; start < log.count; start += BLOCK) {
      const lines: string[] = [];
      const end = Math.min(log.count, start + BLOCK);
      for (let i = start; i < end; i++) {
        // scheduledMs is a float64: String() is its shortest exact form.
        lines.push(`${log.scheduledMs[i]}\t${float32Text(log.latencyMs[i]!)}\t${OUTCOME_NAMES[log.outcome[i]!]}\t${log.template[i]}`);
      }
      writeSync(fd, lines.join('\n') + '\n');
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const OUTCOME_CODE = new Map<string, number>(OUTCOME_NAMES.map((n) => [n, Outcome[n]]));

export function readRequestsTsv(path: string): RequestLog {
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[0] !== TSV_HEADER) throw new Error(`${path}: not a requests.tsv (expected the header "${TSV_HEADER.replace(/\t/g, '\\t')}")`);
  let n = lines.length - 1;
  while (n > 0 && lines[n] === '') n--;
  const log: RequestLog = {
    count: n,
    scheduledMs: new Float64Array(n),
    latencyMs: new Float32Array(n),
    outcome: new Uint8Array(n),
    template: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    const line = lines[i + 1]!;
    const [s, l, o, t] = line.split('\t');
    const code = o === undefined ? undefined : OUTCOME_CODE.get(o);
    if (t === undefined || code === undefined)
      throw new Error(`${path}:${i + 2}: expected scheduledMs, latencyMs, outcome, template; got ${JSON.stringify(line)}`);
    log.scheduledMs[i] = Number(s);
    log.latencyMs[i] = Number(l);
    log.outcome[i] = code;
    log.template[i] = Number(t);
  }
  return log;
}

/** JSON lines; a last line cut short by a crash is left out rather than failing the whole file. */
export function readJsonLines<T = unknown>(path: string): T[] {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const out: T[] = [];
  for (const [i, line] of lines.entries()) {
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      if (i === lines.length - 1) break;
      throw new Error(`${path}:${i + 1}: ${(e as Error).message}`);
    }
  }
  return out;
}

export interface RunFolder {
  dir: string;
  /** Null when the run never finished (crashed or killed before run.json was written). */
  record: RunRecord | null;
  events: Array<Record<string, unknown>>;
  metrics: SecondStats[];
  /** Null for runs recorded before requests.tsv existed, or that crashed before it was written. */
  requests: RequestLog | null;
}

export function readRunFolder(dir: string): RunFolder {
  const at = (name: string) => join(dir, name);
  if (!existsSync(dir)) throw new Error(`${dir}: no such run folder`);
  return {
    dir,
    record: existsSync(at('run.json')) ? (JSON.parse(readFileSync(at('run.json'), 'utf8')) as RunRecord) : null,
    events: existsSync(at('events.jsonl')) ? readJsonLines<Record<string, unknown>>(at('events.jsonl')) : [],
    metrics: existsSync(at('metrics.jsonl')) ? readJsonLines<SecondStats>(at('metrics.jsonl')) : [],
    requests: existsSync(at('requests.tsv')) ? readRequestsTsv(at('requests.tsv')) : null,
  };
}
