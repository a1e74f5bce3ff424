/**
 * Our open-model generator against autocannon and wrk, on one machine, in one run.
 *
 *   node --import tsx test/bench/load-vs-autocannon.ts [--seconds 10] [--rounds 3]
 *
 * The target is a trivial node:http server in a child process, so the server and the load tool each
 * get a core (FIELD-NOTES: 2 cores). Tools run alternately, round after round, because runs on these
 * machines vary by about 20%: only numbers from the same run are compared. Prints a Markdown table
 * (median of the rounds, range of achieved req/s) and writes every round to
 * results/bench/load-vs-autocannon.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { summarize } from '../../lib/measure/summary.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = join(REPO, 'results/bench/load-vs-autocannon.json');
const AUTOCANNON = join(REPO, 'node_modules/autocannon/autocannon.js');
const WRK = '/usr/bin/wrk';
const RATES = [1000, 5000, 10_000, 20_000];
const CONNECTIONS = 50;

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' } } });
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);

const SERVER_JS = `
const http = require('node:http');
const body = Buffer.from('ok');
const s = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
s.keepAliveTimeout = 65000;
s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

const children = new Set<ChildProcess>();

/** Stops every child we started, by PID. */
function stopChildren(): void {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGTERM');
}

function startServer(): Promise<{ url: string; pid: number }> {
  const child = spawn(process.execPath, ['-e', SERVER_JS], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  return new Promise((res, rej) => {
    let out = '';
    child.once('exit', (code) => rej(new Error(`bench server exited (${code}) before listening`)));
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) res({ url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/`, pid: child.pid! });
    });
  });
}

/** Runs a tool as a child process, with a hard deadline so a hung tool cannot hang the bench. */
function run(cmd: string, argv: string[], deadlineMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), deadlineMs);
  return new Promise((res) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      res({ code, stdout, stderr });
    }),
  );
}

async function ours(url: string, rate: number, seconds: number, round: number): Promise<Row> {
  const clock = createClock();
  const gen = new LoadGenerator(
    { url, rate, requests: [{ method: 'GET', path: '/', weight: 1 }], timeoutMs: 2000, maxInFlight: 1000, connections: CONNECTIONS },
    clock,
  );
  gen.start(seconds * 1000);
  while (gen.log.count === 0) await sleep(5);
  await sleep(gen.log.scheduledMs[0]! + seconds * 1000 - clock.now() + 10);
  await gen.stop();
  const s = summarize(gen.log);
  return {
    tool: 'drill',
    mode: 'open, fixed rate',
    targetRate: rate,
    round,
    achieved: s.ok / seconds,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    errors: s.errors,
    dropped: s.dropped,
  };
}

async function autocannon(url: string, seconds: number, round: number): Promise<Row> {
  const r = await run(process.execPath, [AUTOCANNON, '-c', String(CONNECTIONS), '-d', String(seconds), '-j', url], (seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`autocannon exited ${r.code}: ${r.stderr.slice(-500)}`);
  const j = JSON.parse(r.stdout) as {
    requests: { average: number };
    latency: { p50: number; p99: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  };
  return {
    tool: 'autocannon',
    mode: 'closed, max',
    targetRate: null,
    round,
    achieved: j.requests.average,
    p50Ms: j.latency.p50,
    p99Ms: j.latency.p99,
    errors: j.errors + j.timeouts + j.non2xx,
    dropped: null,
  };
}

/** wrk from Debian; installs it when missing. Returns why it cannot run, or null. */
function ensureWrk(): string | null {
  if (existsSync(WRK)) return null;
  process.stderr.write('wrk not found: apt-get install -y wrk\n');
  const r = spawnSync('apt-get', ['install', '-y', 'wrk'], { encoding: 'utf8', timeout: 180_000 });
  if (r.status === 0 && existsSync(WRK)) return null;
  const why = (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-2).join(' ');
  return `apt-get install -y wrk failed (exit ${r.status}): ${why}`;
}

const WRK_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function wrkMs(text: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
  if (!m) throw new Error(`wrk output has no ${label} line:\n${text}`);
  return Number(m[1]) * WRK_UNIT_MS[m[2]!]!;
}

async function wrk(url: string, seconds: number, round: number): Promise<Row> {
  const r = await run(WRK, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url], (seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.stderr.slice(-500)}`);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(r.stdout);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  if (!rps) throw new Error(`wrk output has no Requests/sec:\n${r.stdout}`);
  const errors = (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return {
    tool: 'wrk',
    mode: 'closed, max',
    targetRate: null,
    round,
    achieved: Number(rps[1]),
    p50Ms: wrkMs(r.stdout, '50%'),
    p99Ms: wrkMs(r.stdout, '99%'),
    errors,
    dropped: null,
  };
}

interface Row {
  tool: 'drill' | 'autocannon' | 'wrk';
  mode: string;
  /** Fixed arrival rate (open model); null for a closed model running flat out. */
  targetRate: number | null;
  round: number;
  /** Answered requests per second (drill: ok responses over the schedule's length). */
  achieved: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  /** Open model only: requests not sent because the in-flight cap was reached. */
  dropped: number | null;
}

interface SummaryRow extends Omit<Row, 'round'> {
  rounds: number;
  achievedMin: number;
  achievedMax: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function medianOrNull(xs: Array<number | null>): number | null {
  const present = xs.filter((x): x is number => x !== null);
  return present.length ? median(present) : null;
}

function medianRow(rows: Row[]): SummaryRow {
  const first = rows[0]!;
  const achieved = rows.map((r) => r.achieved);
  return {
    tool: first.tool,
    mode: first.mode,
    targetRate: first.targetRate,
    rounds: rows.length,
    achieved: median(achieved),
    achievedMin: Math.min(...achieved),
    achievedMax: Math.max(...achieved),
    p50Ms: medianOrNull(rows.map((r) => r.p50Ms)),
    p99Ms: medianOrNull(rows.map((r) => r.p99Ms)),
    errors: median(rows.map((r) => r.errors)),
    dropped: medianOrNull(rows.map((r) => r.dropped)),
  };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number | null): string => (n === null ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1));

function formatTable(rows: SummaryRow[], wrkSkipped: string | null): string {
  const lines = [
    `Median of ${rows[0]?.rounds ?? 0} rounds, ${SECONDS} s each, ${CONNECTIONS} connections; achieved range in brackets.`,
    '',
    '| tool | mode | target rate | achieved req/s | p50 ms | p99 ms | errors / dropped |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.tool} | ${r.mode} | ${r.targetRate === null ? 'max' : int(r.targetRate)} | ${int(r.achieved)} (${int(r.achievedMin)}-${int(r.achievedMax)}) | ` +
        `${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${int(r.errors)} / ${r.dropped === null ? '-' : int(r.dropped)} |`,
    ),
  ];
  const ac = rows.find((r) => r.tool === 'autocannon');
  const wk = rows.find((r) => r.tool === 'wrk');
  const best = rows.filter((r) => r.tool === 'drill' && r.dropped === 0 && r.errors === 0 && r.achieved >= 0.99 * r.targetRate!).at(-1);
  lines.push('');
  if (best) lines.push(`Highest fixed rate drill held with no drops or errors: ${int(best.targetRate!)} req/s.`);
  if (ac && wk) lines.push(`autocannon max / wrk max: ${(ac.achieved / wk.achieved).toFixed(2)}.`);
  lines.push('drill times latency from the scheduled send (open model); autocannon and wrk from the actual send (closed model).');
  if (ac) lines.push('autocannon records latency in whole milliseconds (0 means under 1 ms).');
  if (wrkSkipped) lines.push(`wrk skipped: ${wrkSkipped}`);
  return lines.join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function main(): Promise<void> {
  const wrkSkipped = ensureWrk();
  if (wrkSkipped) process.stderr.write(`wrk skipped: ${wrkSkipped}\n`);
  const server = await startServer();
  process.stderr.write(`server pid ${server.pid} at ${server.url}; ${ROUNDS} rounds of ${SECONDS} s per tool and rate\n`);
  // Warm our process (JIT, undici) so round 1 is not the cold one; the CLI tools start fresh each run anyway.
  await ours(server.url, 2000, 2, 0);

  const rows: Row[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const steps: Array<() => Promise<Row>> = [
      ...RATES.map((rate) => () => ours(server.url, rate, SECONDS, round)),
      () => autocannon(server.url, SECONDS, round),
      ...(wrkSkipped ? [] : [() => wrk(server.url, SECONDS, round)]),
    ];
    for (const step of steps) {
      const row = await step();
      rows.push(row);
      process.stderr.write(
        `round ${round}: ${row.tool} ${row.targetRate ?? 'max'} -> ${Math.round(row.achieved)} req/s, p99 ${row.p99Ms} ms\n`,
      );
      await sleep(1000); // let the server's sockets and GC settle between tools
    }
  }

  const keys = [...new Set(rows.map((r) => `${r.tool}|${r.targetRate}`))];
  const summary = keys.map((k) => medianRow(rows.filter((r) => `${r.tool}|${r.targetRate}` === k)));
  const table = formatTable(summary, wrkSkipped);
  process.stdout.write(table + '\n');
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? null,
        server: 'node:http, one process, 2-byte body, keep-alive',
        secondsPerRun: SECONDS,
        rounds: ROUNDS,
        connections: CONNECTIONS,
        wrk: wrkSkipped ? { skipped: wrkSkipped } : { path: WRK },
        summary,
        rows,
      },
      null,
      2,
    ) + '\n',
  );
  process.stderr.write(`wrote ${OUT}\n`);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    stopChildren();
    process.exit(130);
  });
}
try {
  await main();
} finally {
  stopChildren();
}
