/**
 * The crash-point matrix: a drill run SIGKILLed right after each line of its journal in turn
 * (DRILL_CRASH_AFTER_EVENT), then `drill recover`, then the lab judged by its own status. The drills are
 * short on purpose (two replicas, 20 req/s, a one-second baseline): every kill point is a whole run.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { labTarget } from '../../lib/targets/lab/index.ts';
import type { LabUpOptions } from '../../lib/lab/index.ts';
import { type RegionDrill, regionLabOptions, upRegionLabInTurn } from './region-drill.ts';
import { loadCatalog } from '../../lib/scenario/catalog.ts';
import { drillCli, type CliResult } from './cli.ts';

const LOAD = `load:
  rate: 20
  requests:
    - { method: GET, path: '/orders?limit=5', weight: 1 }
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 1 }
  timeout: 2s
  baseline: 1s
  cooldown: 0s
`;

/** Loose SLOs: the matrix judges recovery after a crash, not the service under a shared 2-core machine. */
function drill(name: string, entry: string, target = '{ kind: lab, replicas: 2 }'): string {
  return `name: crash-${name}
kind: adhoc
service: { name: orders, tier: critical, dataClass: database }
target: ${target}
policy:
  recoveryWindow: 1s
  slo: { availability: ['rate>=50%'], errors: ['rate<50%'], latency: ['p(95)<5s'] }
${LOAD}scenarios:
${entry}`;
}

export interface CrashDrill {
  /** The row of the matrix. */
  label: string;
  /** The scenario module it runs. */
  scenario: string;
  yaml: string;
  /** How the lab is brought up (default: two replicas, one region). */
  lab?: Partial<LabUpOptions>;
  /** What the lab needs before the first run (a backup to restore). */
  prepare?: (labDir: string) => Promise<void>;
  /**
   * Where npm test kills in this row (DRILL_CRASH_POINTS overrides it): `steps` unless set.
   */
  density?: KillPointDensity;
  /**
   * Before every run after the first: a drill whose recovery leaves the lab changed on purpose (serving from the
   * secondary region) starts each kill point from the lab it expects.
   */
  beforeEachRun?: (labDir: string) => Promise<void>;
}

/** The region-loss row's lab figures; every kill point starts from the same kept lab (upRegionLabInTurn). */
const REGION_FIGURES: RegionDrill = { name: 'crash', replicationLagS: 1, logShipS: 3 };
const regionLabInTurn = async (labDir: string): Promise<void> => void (await upRegionLabInTurn(labDir, REGION_FIGURES));

export const CRASH_DRILLS: CrashDrill[] = [
  {
    label: 'pod-kill',
    scenario: 'pod-kill',
    yaml: drill('pod-kill', '  - { scenario: pod-kill, name: kill-one, params: { count: 1 }, timeout: 1m }\n'),
  },
  {
    // Its journal holds every line of a plain failover's (kill primary, fail over, their rollbacks) and the stall
    // before them, so one row covers both.
    label: 'db-failover (replicationStall 500ms)',
    scenario: 'db-failover',
    yaml: drill(
      'db-failover-stall',
      '  - { scenario: db-failover, name: fail-over-stalled, params: { kill: sigkill, replicationStall: 500ms, failoverTimeout: 30s }, timeout: 2m }\n',
    ),
  },
  {
    label: 'exec (pause-front)',
    scenario: 'exec',
    yaml: drill(
      'exec',
      `  - scenario: exec
    name: front-down
    params: { fault: drill lab pause-front --for 1s, rollback: drill lab resume-front }
    timeout: 1m
`,
    ),
  },
  {
    label: 'blob-restore',
    scenario: 'blob-restore',
    yaml: drill(
      'blob-restore',
      `  - scenario: blob-restore
    name: restore
    params: { kind: logical, database: orders, smokeQuery: 'SELECT count(*) > 0 FROM orders' }
    timeout: 5m
`,
    ),
    async prepare(labDir) {
      const r = await drillCli(['backup', 'lab', '--kind', 'logical'], { DRILL_LAB_DIR: labDir }).done;
      if (r.code !== 0) throw new Error(`drill backup lab exited ${r.code}: ${r.stderr}${r.stdout}`);
    },
  },
  {
    // Killed at every line, the restore included: recover must end on the database restored to the point before the DROP.
    label: 'data-loss (drop-table)',
    scenario: 'data-loss',
    yaml: drill(
      'data-loss',
      '  - { scenario: data-loss, name: drop-table, params: { fault: drop-table }, timeout: 5m }\n',
      "{ kind: lab, replicas: 2, allowDataLoss: true, dataLossReason: 'crash matrix on test data' }",
    ),
  },
  {
    // Every point starts from the same two-region lab (a stopped copy put back); recover must end with one region
    // serving, the other stopped.
    label: 'region-loss',
    scenario: 'region-loss',
    yaml: drill(
      'region-loss',
      '  - { scenario: region-loss, name: lose-region, timeout: 5m }\n',
      '{ kind: lab, replicas: 2, regions: 2, replicationLag: 1s, archiveLag: 4s, logShipInterval: 3s }',
    ),
    lab: regionLabOptions(REGION_FIGURES),
    // Each point here costs about twice a one-region point (two regions to start and to put back): npm test kills
    // before each action and each rollback; `lines` covers the rest (36 points, every one recovered, 2026-12-05).
    density: 'intents',
    prepare: regionLabInTurn,
    beforeEachRun: regionLabInTurn,
  },
];

/** Scenarios the lab can run (every capability they require is one the lab target has). */
export async function labScenarios(): Promise<string[]> {
  const caps = new Set<string>(labTarget.capabilities({ kind: 'lab', replicas: 2 } as never));
  return [...(await loadCatalog()).values()].filter((s) => s.requires.every((c) => caps.has(c))).map((s) => s.name);
}

export interface JournalEvent {
  type: string;
  name?: string;
  message?: string;
}

export async function readJournalLines(runDir: string): Promise<JournalEvent[]> {
  return (await readFile(join(runDir, 'events.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalEvent];
      } catch {
        return [];
      }
    });
}

/** `action.done (kill primary)`, `log: killed orders-...`: one journal line, short enough for a table cell. */
export function eventLabel(e: JournalEvent): string {
  if (e.type === 'log')
    return `log: ${(e.message ?? '')
      .replace(/\b(pid )?\d{3,}\b/g, 'N')
      .replace(/orders-[0-9a-f]+-\d+/g, 'orders-X')
      .slice(0, 48)}`;
  return e.name ? `${e.type} (${e.name})` : e.type;
}

export interface KillPoint {
  /** The line in the reference run. */
  line: number;
  event: string;
  /**
   * DRILL_CRASH_AFTER_EVENT: that line by what it is (`action.done:kill primary#1`), not by its number: a probe
   * polled more or fewer times than in the reference run shifts every later line number, never the step.
   */
  spec: string;
}

/** Lines that only read: a probe's answer, a measured RPO. Between two of them the harness changes nothing. */
const READ_ONLY = new Set(['probe', 'probe.skipped', 'rpo.measured', 'stop-condition']);

/**
 * How densely a row kills. DRILL_CRASH_POINTS sets it for every row; unset, each row kills at its own (`steps`
 * unless the row says otherwise):
 * - `intents`: each `action.intent` and `rollback.start`: every action and every rollback cut off before it ran.
 * - `steps`: `run.start`; each `action.intent`, `action.done` and `rollback.start`; of each stretch of log lines an
 *   action or rollback writes while it works, the first and the last. Left out are lines after which recover finds
 *   what it finds one line earlier or later: probes and measurements (the harness only asks), `rollback.none` and
 *   `rollback.done` (nothing happens between them and the next rollback's start), `run.end` (nothing is pending),
 *   an `action.done` right before the next `action.intent` (that point has the same done and one more intent), and
 *   the log lines in the middle of a stretch (a restore's inner stages; a SIGKILL mid-restore also has its own test
 *   in drill-run-data-loss and in drill-run-region-loss).
 * - `lines`: every line that acts or changes what recover must do, and the two ends of each stretch of read-only
 *   lines (the matrix as npm test ran it until 2026-12-05, 138 points over seven rows).
 * - `every-line`: every line of the journal.
 */
export type KillPointDensity = 'intents' | 'steps' | 'lines' | 'every-line';
const DENSITIES: readonly KillPointDensity[] = ['intents', 'steps', 'lines', 'every-line'];

/** DRILL_CRASH_POINTS, or `fallback` (the row's own density) when it is unset. */
export function killPointDensity(env: NodeJS.ProcessEnv = process.env, fallback: KillPointDensity = 'steps'): KillPointDensity {
  const v = env.DRILL_CRASH_POINTS || fallback;
  if ((DENSITIES as readonly string[]).includes(v)) return v as KillPointDensity;
  throw new Error(`DRILL_CRASH_POINTS=${v}: expected ${DENSITIES.join(', ')}`);
}

const STEP = new Set(['run.start', 'action.intent', 'action.done', 'rollback.start']);
const INTENT = new Set(['action.intent', 'rollback.start']);

/** The kill points of a passing run's journal, at the given density (see KillPointDensity). */
export function killPoints(events: JournalEvent[], density: KillPointDensity = killPointDensity()): KillPoint[] {
  const out: KillPoint[] = [];
  const readOnly = (e: JournalEvent | undefined) => e !== undefined && READ_ONLY.has(e.type);
  const isLog = (e: JournalEvent | undefined) => e?.type === 'log';
  const step = (e: JournalEvent, next: JournalEvent | undefined) =>
    STEP.has(e.type) && !(e.type === 'action.done' && next?.type === 'action.intent');
  const seen = new Map<string, number>();
  events.forEach((e, i) => {
    const key = e.name ? `${e.type}:${e.name}` : e.type;
    const k = (seen.get(key) ?? 0) + 1;
    seen.set(key, k);
    const keep =
      density === 'every-line' ||
      (density === 'lines' && !(readOnly(e) && readOnly(events[i - 1]) && readOnly(events[i + 1]))) ||
      (density === 'steps' && (step(e, events[i + 1]) || (isLog(e) && !(isLog(events[i - 1]) && isLog(events[i + 1]))))) ||
      (density === 'intents' && INTENT.has(e.type));
    if (keep) out.push({ line: i + 1, event: eventLabel(e), spec: `${key}#${k}` });
  });
  return out;
}

export async function onlyRun(resultsDir: string): Promise<string> {
  const runs = join(resultsDir, 'runs');
  const ids = existsSync(runs) ? await readdir(runs) : [];
  if (ids.length !== 1) throw new Error(`expected one run in ${runs}, found ${ids.length}`);
  return join(runs, ids[0]!);
}

/** `drill run FILE` on the lab in labDir, optionally dying after the journal line `crashAfter` names. Bounded: a hung run is killed. */
export async function runDrill(file: string, resultsDir: string, labDir: string, crashAfter?: string): Promise<CliResult> {
  const env: Record<string, string> = { DRILL_LAB_DIR: labDir, DRILL_CRASH_AFTER_EVENT: crashAfter ?? '' };
  const run = drillCli(['run', file, '--results', resultsDir, '--yes'], env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 180_000);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

export interface Cell {
  drill: string;
  line: number;
  /** The reference run's event at that line. */
  event: string;
  /** The last line the crashed run journaled; null when the run ended without reaching the kill point. */
  crashedAfter: string | null;
  /** How the crashed run ended: `SIGKILL`, or `exit N` when it finished before reaching the line. */
  run: string;
  /** `drill recover`'s exit code. */
  recoverExit: number | null;
  /** Rollbacks still pending in the run's journal after recover. */
  pending: number;
  /** The lab's own status: no problem listed (within the settle time). */
  healthy: boolean;
  /** What status still listed, when not healthy. */
  problems: string[];
  /** A write through the front was acknowledged. */
  write: boolean;
  /** Scratch clusters of a restore still running after recover. */
  leftovers: number;
  /** Wall time of the crashed run, of recover, and of the whole kill point. */
  runMs: number;
  recoverMs: number;
  ms: number;
}

export const recovered = (c: Cell): boolean => c.recoverExit === 0 && c.pending === 0 && c.healthy && c.write && c.leftovers === 0;

/** The matrix as Markdown: one row per kill point, grouped by drill. */
export function matrixTable(cells: Cell[]): string {
  const rows = [
    '| drill | line | killed right after | recover exit | journal closed | lab status | write | recovered |',
    '|---|---:|---|---:|---|---|---|---|',
  ];
  for (const c of cells) {
    const status = c.healthy ? 'healthy' : `BROKEN: ${c.problems.join('; ').slice(0, 160)}`;
    const event = c.crashedAfter === null ? `${c.event} (not reached: ${c.run})` : c.event;
    rows.push(
      `| ${c.drill} | ${c.line} | ${event} | ${c.recoverExit ?? '-'} | ${c.pending === 0 ? 'yes' : `no (${c.pending} pending)`} | ${status}${c.leftovers ? `, ${c.leftovers} scratch cluster(s) left` : ''} | ${c.write ? 'ok' : 'FAILED'} | ${recovered(c) ? 'yes' : '**NO**'} |`,
    );
  }
  return rows.join('\n');
}

export async function writeMatrix(path: string, cells: Cell[]): Promise<void> {
  const byDrill = new Map<string, Cell[]>();
  for (const c of cells) byDrill.set(c.drill, [...(byDrill.get(c.drill) ?? []), c]);
  const summary = [...byDrill].map(([d, cs]) => `- ${d}: ${cs.filter(recovered).length} of ${cs.length} kill points recovered`);
  await writeFile(path, `${summary.join('\n')}\n\n${matrixTable(cells)}\n`);
}
