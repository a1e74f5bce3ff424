/**
 * The crash-point matrix: a drill run SIGKILLed right after each line of its journal in turn
 * (DRILL_CRASH_AFTER_EVENT), then `drill recover`, then the lab judged by its own status. The drills are
 * short on purpose (two replicas, 20 req/s, a one-second baseline): every kill point is a whole run.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { labTarget } from '../../lib/targets/lab/index.ts';
import { labDown, labStatus, labUp, type LabUpOptions } from '../../lib/lab/index.ts';
import { waitForSecondaryCopy } from './secondary-copy.ts';
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
   * Before every run after the first: a drill whose recovery leaves the lab changed on purpose (serving from the
   * secondary region) starts each kill point from the lab it expects.
   */
  beforeEachRun?: (labDir: string) => Promise<void>;
}

/** A fresh two-region lab serving from the primary, its secondary holding a base backup and WAL to restore from. */
const TWO_REGIONS: Partial<LabUpOptions> = {
  regions: 2,
  replicationLagMs: 1000,
  archiveLagMs: 4000,
  logShipIntervalMs: 3000,
};
async function freshTwoRegions(labDir: string): Promise<void> {
  // Purged: a restored secondary left from the last point would be reused, not restored again.
  await labDown({ dir: labDir, purge: true });
  const info = await labUp({ dir: labDir, replicas: 2, ...TWO_REGIONS });
  await waitForSecondaryCopy(labDir, info.serviceUrl, 2);
}

export const CRASH_DRILLS: CrashDrill[] = [
  {
    label: 'pod-kill',
    scenario: 'pod-kill',
    yaml: drill('pod-kill', '  - { scenario: pod-kill, name: kill-one, params: { count: 1 }, timeout: 1m }\n'),
  },
  {
    label: 'db-failover',
    scenario: 'db-failover',
    yaml: drill(
      'db-failover',
      '  - { scenario: db-failover, name: fail-over, params: { kill: sigkill, failoverTimeout: 30s }, timeout: 2m }\n',
    ),
  },
  {
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
    // Every point starts from a fresh two-region lab; recover must end with one region serving, the other stopped.
    label: 'region-loss',
    scenario: 'region-loss',
    yaml: drill(
      'region-loss',
      '  - { scenario: region-loss, name: lose-region, timeout: 5m }\n',
      '{ kind: lab, replicas: 2, regions: 2, replicationLag: 1s, archiveLag: 4s, logShipInterval: 3s }',
    ),
    lab: TWO_REGIONS,
    prepare: async (labDir) => {
      const s = await labStatus({ dir: labDir });
      await waitForSecondaryCopy(labDir, s.info!.serviceUrl, 2);
    },
    beforeEachRun: freshTwoRegions,
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
 * The kill points of a passing run's journal. Every line, with DRILL_CRASH_EVERY_LINE=1. By default, inside a
 * stretch of read-only lines (steady-state and recovery probes polled every 100 ms, verification) only the
 * first and the last are kept: between them the harness only asks, nothing it journals or does changes, so a
 * kill there leaves the same journal state and the same target as at either end. Every line that acts or
 * changes what recover must do (run.start, action.*, log lines written inside an action, rollback.*, run.end)
 * is always a kill point.
 */
export function killPoints(events: JournalEvent[], everyLine = process.env.DRILL_CRASH_EVERY_LINE === '1'): KillPoint[] {
  const out: KillPoint[] = [];
  const readOnly = (e: JournalEvent | undefined) => e !== undefined && READ_ONLY.has(e.type);
  const seen = new Map<string, number>();
  events.forEach((e, i) => {
    const key = e.name ? `${e.type}:${e.name}` : e.type;
    const k = (seen.get(key) ?? 0) + 1;
    seen.set(key, k);
    if (!everyLine && readOnly(e) && readOnly(events[i - 1]) && readOnly(events[i + 1])) return;
    out.push({ line: i + 1, event: eventLabel(e), spec: `${key}#${k}` });
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
