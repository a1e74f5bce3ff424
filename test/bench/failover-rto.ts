/**
 * Failover RTO and lost writes: N db-failover runs per provider and replication mode on the lab, through
 * `drill run` as a person runs it (each mode is one drill of N entries on one lab, so every failover after
 * the first runs on the pair the previous rollback rebuilt). Prints a Markdown table; every run's figures
 * go to results/bench/failover-rto.json.
 *
 *   node --import tsx test/bench/failover-rto.ts                 # 10 failovers per mode, about 15-20 minutes
 *   node --import tsx test/bench/failover-rto.ts --runs 2        # a quick check that it runs
 *   node --import tsx test/bench/failover-rto.ts --modes async-stall,sync-stall --provider pg-promote
 *
 * Figures per run, from run.json and events.jsonl:
 *   RTO            recovered − fault-injected, as the record scores it (the fault starts with the stall, if any)
 *   kill→recovered recovered − primary-killed: the failover itself, the stall left out
 *   kill→writable  failover-writable − primary-killed: the provider promoted and a commit went through the endpoint
 *   lost           acknowledged writes absent from the new primary (write ledger); unknown = timed out or 5xx, absent
 *
 * patroni runs the lab under Patroni + etcd (`lab up --provider patroni`): the kill takes Patroni down with the
 * postmaster and its children, and Patroni elects once the dead leader's key expires (the lab's ttl 10 s,
 * loop_wait 1 s, retry_timeout 4 s), so its RTO is about ttl where pg-promote's is the promotion alone.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { labDown, labUp } from '../../lib/lab/index.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MODES = {
  async: { replication: 'async', stall: '0s' },
  'async-stall': { replication: 'async', stall: '1s' },
  'sync-stall': { replication: 'sync', stall: '1s' },
} as const;
type Mode = keyof typeof MODES;
const PROVIDERS = ['pg-promote', 'patroni'] as const;

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    modes: { type: 'string', default: Object.keys(MODES).join(',') },
    provider: { type: 'string', default: 'all' },
    rate: { type: 'string', default: '50' },
  },
});
const runs = Number(args.runs);
const rate = Number(args.rate);
const modes = args.modes!.split(',') as Mode[];
for (const m of modes) if (!(m in MODES)) throw new Error(`unknown mode ${m}; modes: ${Object.keys(MODES).join(', ')}`);
const providers = args.provider === 'all' ? [...PROVIDERS] : (args.provider!.split(',') as (typeof PROVIDERS)[number][]);

interface RunFigures {
  id: string;
  status: string;
  rtoS: number | null;
  killToRecoveredS: number | null;
  killToWritableS: number | null;
  lost: number;
  unknownAbsent: number;
  acknowledged: number;
  rpoS: number | null;
}

interface Row {
  provider: string;
  mode: Mode;
  runs: RunFigures[];
  skipped?: string;
  settings?: Record<string, unknown>;
}

function drillYaml(provider: string, mode: Mode): string {
  const m = MODES[mode];
  const entries = Array.from(
    { length: runs },
    (_, i) => `  - { scenario: db-failover, name: ${mode}-${i + 1}, params: { replicationStall: ${m.stall} }, timeout: 2m }`,
  );
  return [
    `name: bench-failover-${mode}`,
    'kind: adhoc',
    'service: { name: orders, tier: critical, dataClass: database }',
    `target: { kind: lab, replicas: 2, database: { replication: ${m.replication}, provider: ${provider} } }`,
    'policy:',
    '  recoveryWindow: 3s',
    "  slo: { availability: ['rate>=95%'], errors: ['rate<5%'], latency: ['p(95)<2s'] }",
    'load:',
    `  rate: ${rate}`,
    '  requests:',
    "    - { method: GET, path: '/orders?limit=10', weight: 1 }",
    "    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 1 }",
    '  timeout: 5s',
    '  baseline: 3s',
    '  cooldown: 1s',
    'scenarios:',
    ...entries,
    '',
  ].join('\n');
}

function runCli(argv: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [join(REPO, 'lib/cli/drill.mjs'), ...argv], {
      cwd: REPO,
      env: { ...process.env, CI: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      process.stderr.write(d);
    });
    const stop = () => child.kill('SIGINT');
    process.once('SIGINT', stop);
    child.on('close', (code) => {
      process.off('SIGINT', stop);
      res({ code, stdout, stderr });
    });
  });
}

const markMs = (rec: { marks: Array<{ name: string; ms: number }> }, name: string) => rec.marks.find((m) => m.name === name)?.ms ?? null;
const diffS = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.round(a - b) / 1000);

function figuresOf(dir: string): { figures: RunFigures; settings?: Record<string, unknown> } {
  const rec = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  const events = readFileSync(join(dir, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const done = events.find((e) => e.type === 'action.done' && e.name === 'fail over');
  const killed = markMs(rec, 'primary-killed');
  const l = rec.objectives.rpo.ledger;
  return {
    figures: {
      id: rec.id,
      status: rec.status,
      rtoS: rec.objectives.rto.measuredSeconds,
      killToRecoveredS: diffS(markMs(rec, 'recovered'), killed),
      killToWritableS: diffS(markMs(rec, 'failover-writable'), killed),
      lost: l?.lost ?? rec.objectives.rpo.lostWrites ?? 0,
      unknownAbsent: l?.unknownAbsent ?? 0,
      acknowledged: l?.acknowledged ?? 0,
      rpoS: rec.objectives.rpo.measuredSeconds,
    },
    settings: done?.result?.settings,
  };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const max = (xs: number[]) => (xs.length ? Math.max(...xs) : null);
const fmtS = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)} s`);
const nums = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);

async function benchOne(provider: string, mode: Mode): Promise<Row> {
  const work = mkdtempSync(join(tmpdir(), `drill-bench-fo-${mode}-`));
  chmodSync(work, 0o755);
  const lab = join(work, 'lab');
  const results = join(work, 'results');
  const drill = join(work, 'drill.yaml');
  writeFileSync(drill, drillYaml(provider, mode));
  try {
    await labUp({ dir: lab, replicas: 2, replication: MODES[mode].replication, provider: provider as 'pg-promote' | 'patroni' });
    process.stderr.write(`\n== ${provider} ${mode}: ${runs} failovers ==\n`);
    const r = await runCli(['run', drill, '--results', results], { DRILL_LAB_DIR: lab });
    const runsDir = join(results, 'runs');
    const dirs = existsSync(runsDir)
      ? readdirSync(runsDir, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => join(runsDir, d.name))
          .sort()
      : [];
    if (dirs.length === 0) {
      // Refused before anything ran (exit 2): the CLI's own message says why.
      const why =
        r.stderr
          .trim()
          .split('\n')
          .find((l) => l.startsWith('drill: ')) ?? `exit ${r.code}`;
      return { provider, mode, runs: [], skipped: why.replace(/^drill: /, '').slice(0, 200) };
    }
    const all = dirs.map(figuresOf);
    return { provider, mode, runs: all.map((x) => x.figures), settings: all.find((x) => x.settings)?.settings };
  } catch (e) {
    return { provider, mode, runs: [], skipped: (e as Error).message.split('\n')[0]!.slice(0, 200) };
  } finally {
    await labDown({ dir: lab }).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const provider of providers) for (const mode of modes) rows.push(await benchOne(provider, mode));

const out = join(REPO, 'results/bench');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'failover-rto.json'), JSON.stringify({ at: new Date().toISOString(), runs, rate, rows }, null, 2));

const lines = [
  `Failover on the lab: ${runs} failovers per provider and mode, ${rate} req/s (half writes), SIGKILL of the primary's postmaster and children (patroni: and its Patroni); stall = walsender SIGSTOPped before the kill.`,
  '',
  '| provider | replication | stall | runs ok | RTO median | RTO max | kill→recovered median | kill→recovered max | kill→writable median | lost writes median | lost writes max | unknown median | RPO max |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const row of rows) {
  const m = MODES[row.mode];
  if (row.skipped) {
    lines.push(`| ${row.provider} | ${m.replication} | ${m.stall} | not run: ${row.skipped.replace(/\|/g, '/')} | | | | | | | | | |`);
    continue;
  }
  const ok = row.runs.filter((r) => r.status === 'passed' || r.status === 'failed');
  const rto = nums(ok.map((r) => r.rtoS));
  const k2r = nums(ok.map((r) => r.killToRecoveredS));
  const k2w = nums(ok.map((r) => r.killToWritableS));
  const lost = ok.map((r) => r.lost);
  lines.push(
    `| ${row.provider} | ${m.replication} | ${m.stall} | ${ok.length}/${row.runs.length} | ${fmtS(median(rto))} | ${fmtS(max(rto))} | ${fmtS(median(k2r))} | ${fmtS(max(k2r))} | ${fmtS(median(k2w))} | ${median(lost) ?? 'n/a'} | ${max(lost) ?? 'n/a'} | ${median(ok.map((r) => r.unknownAbsent)) ?? 'n/a'} | ${fmtS(max(nums(ok.map((r) => r.rpoS))))} |`,
  );
}
const settings = rows.filter((r) => r.settings).map((r) => `- ${r.provider} (${r.mode}): ${JSON.stringify(r.settings)}`);
if (settings.length) lines.push('', 'Provider settings recorded with the runs:', ...settings);
process.stdout.write(lines.join('\n') + '\n');
