/**
 * Runs every benchmark in test/bench, one after the other, each as its own process
 * (`node --import tsx <file>`), and prints their Markdown tables under a heading each.
 *
 *   node --import tsx test/bench/run.ts [--quick] [--only outage-accuracy] [--only ...]
 *   npm run bench -- --quick
 *
 * --quick runs each bench in its own short mode (the benches spell it differently; see QUICK below).
 * Progress of each bench goes to stderr as it runs; its table (stdout) is printed when it finishes.
 * A failing bench does not stop the others; the exit code is 1 when any failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');

interface Bench {
  name: string;
  file: string;
  /** What --quick becomes for this bench. */
  quick: string[];
  /** One line on what it needs or how long it takes, printed before it runs. */
  about: string;
}

const BENCHES: Bench[] = [
  {
    name: 'load-vs-autocannon',
    file: 'load-vs-autocannon.ts',
    quick: ['--seconds', '2', '--rounds', '1'],
    about: 'load generator vs autocannon and wrk, loopback; about 4 minutes (quick: about 30 s)',
  },
  {
    name: 'outage-accuracy',
    file: 'outage-accuracy.ts',
    quick: ['--quick'],
    about: 'measured downtime vs injected outages at 200, 1,000 and 5,000 req/s; about 2.5 minutes (quick: about 1 minute)',
  },
  {
    name: 'blob-transfer',
    file: 'blob-transfer.ts',
    quick: ['--mb', '32', '--rounds', '1'],
    about: 'blob upload/download against Azurite on local disk; 512 MB x 2 rounds (quick: 32 MB x 1)',
  },
  {
    name: 'failover-rto',
    file: 'failover-rto.ts',
    quick: ['--runs', '2', '--modes', 'async-stall'],
    about:
      'db-failover on the lab: 10 failovers per provider and replication mode, RTO and lost writes; about 15-20 minutes (quick: 2 failovers, about 2 minutes)',
  },
  {
    name: 'live-restore',
    file: 'live-restore.ts',
    quick: ['--mb', '10', '--wal-minutes', '0.5', '--archive-every', '10'],
    about:
      'live point-in-time restore of the lab database from Blob, 100 MB + 5 min of WAL, RTO per step; about 7-9 minutes (quick: about 1.5 minutes)',
  },
];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
  },
});
const unknown = (args.only ?? []).filter((n) => !BENCHES.some((b) => b.name === n));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench ${unknown.join(', ')}; there are: ${BENCHES.map((b) => b.name).join(', ')}\n`);
  process.exit(2);
}
const selected = args.only ? BENCHES.filter((b) => args.only!.includes(b.name)) : BENCHES;

let current: ChildProcess | null = null;

function runOne(b: Bench): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; seconds: number }> {
  const file = join(HERE, b.file);
  const argv = ['--import', 'tsx', file, ...(args.quick ? b.quick : [])];
  const started = performance.now();
  // cwd is the repository: the benches resolve tsx and write results/bench/ from there.
  const child = spawn(process.execPath, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  current = child;
  let stdout = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (stdout += d));
  return new Promise((res, rej) => {
    child.once('error', rej);
    child.once('close', (code, signal) => {
      current = null;
      res({ code, signal, stdout, seconds: (performance.now() - started) / 1000 });
    });
  });
}

async function main(): Promise<number> {
  const failed: string[] = [];
  for (const b of selected) {
    if (!existsSync(join(HERE, b.file))) {
      failed.push(`${b.name} (missing ${b.file})`);
      continue;
    }
    process.stderr.write(`\n== ${b.name}${args.quick ? ' (quick)' : ''}: ${b.about}\n`);
    const r = await runOne(b);
    const status = r.code === 0 ? 'ok' : `FAILED (${r.signal ?? `exit ${r.code}`})`;
    process.stdout.write(
      `\n## ${b.name}${args.quick ? ' (quick)' : ''}\n\n${r.stdout.trim() || '(no output)'}\n\n${status}, ${r.seconds.toFixed(0)} s\n`,
    );
    if (r.code !== 0) failed.push(b.name);
  }
  if (failed.length > 0) process.stderr.write(`\nfailed: ${failed.join(', ')}\n`);
  return failed.length > 0 ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    // The bench stops its own servers and tools on SIGTERM; we stop only the bench we started.
    if (current?.pid !== undefined && current.exitCode === null) process.kill(current.pid, 'SIGTERM');
    process.exit(130);
  });
}
process.exitCode = await main();
