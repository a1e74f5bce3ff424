import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { azuriteAnswers, azuriteArgs, azuriteBlobEntry, freeLoopbackPort } from '../../lib/adapters/blob/azurite.ts';
import { labDown } from '../../lib/lab/index.ts';
import { drillCli, type CliResult } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

/**
 * Canary credentials in the harness's environment, unique random values, and the whole quarterly drill
 * (lab up, pod-kill, db-failover, the runbook backup step, blob-restore) plus `drill backup`, with the
 * storage account a separate Azurite whose account key is itself a canary. While each command runs, every
 * descendant's /proc/PID/environ and /proc/PID/cmdline is read every 100 ms; at the end every file the
 * runs wrote is read too. A canary may appear in one place only: PGPASSWORD in a PostgreSQL client tool's
 * environment (pg_dump needs it for its own connection). The CLI process itself holds them: it is the
 * harness, the one that reads them.
 */
const CLIENT_TOOLS = new Set(['pg_dump', 'pg_dumpall', 'pg_restore', 'pg_basebackup', 'pg_receivewal', 'psql', 'pg_amcheck']);

const rand = (n = 18) => randomBytes(n).toString('hex');
const ACCOUNT = 'canaryacct';
const ACCOUNT_KEY = randomBytes(48).toString('base64');
const CANARIES: Record<string, string> = {
  PGPASSWORD: `pgcanary${rand()}`,
  AZURE_STORAGE_KEY: `keycanary${rand()}`,
  AZURE_STORAGE_SAS_TOKEN: `sv=2022-11-02&sig=sascanary${rand()}`,
  PATRONI_RESTAPI_PASSWORD: `patronicanary${rand()}`,
  // Its account key is the canary: the connection string is the one the drill really uses.
  ACCOUNT_KEY,
};
const SEARCH = Object.entries(CANARIES).map(([name, v]) => ({ name, value: name === 'AZURE_STORAGE_SAS_TOKEN' ? v.split('sig=')[1]! : v }));

interface Hit {
  canary: string;
  where: string;
  process?: string;
}

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

function procs(): Map<number, { ppid: number }> {
  const out = new Map<number, { ppid: number }>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.set(Number(p), { ppid });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Every 100 ms: the harness's descendants, and every process naming the lab directory in its argv (the
 * lab's daemon, replicas, Azurite and PostgreSQL outlive the command that started them, reparented to
 * init) with their descendants. A fork not yet exec'd still shows its parent's environment: skipped when
 * its argv is the harness's own.
 */
function watch(root: ChildProcess, labDir: string): { stop(): { hits: Hit[]; sampled: number } } {
  const hits: Hit[] = [];
  const seen = new Set<string>();
  const processes = new Set<string>();
  const rootArgv = readFileSync(`/proc/${root.pid}/cmdline`, 'utf8');
  const tick = () => {
    const all = procs();
    const roots = new Set<number>([root.pid!]);
    for (const pid of all.keys()) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(labDir)) roots.add(pid);
      } catch {
        // gone
      }
    }
    const kids = new Map<number, number[]>();
    for (const [pid, { ppid }] of all) kids.set(ppid, [...(kids.get(ppid) ?? []), pid]);
    const todo = [...roots];
    const family = new Set<number>();
    while (todo.length > 0) {
      const pid = todo.pop()!;
      if (family.has(pid)) continue;
      family.add(pid);
      todo.push(...(kids.get(pid) ?? []));
    }
    family.delete(root.pid!);
    for (const pid of family) {
      let argv: string;
      let environ: string;
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      } catch {
        continue;
      }
      if (argv === rootArgv) continue;
      const name = argv.split('\0').join(' ').slice(0, 160);
      processes.add(name.split(' ').slice(0, 3).join(' '));
      const tool = basename(argv.split('\0')[0] ?? '');
      for (const { name: canary, value } of SEARCH) {
        if (argv.includes(value))
          seen.has(`${pid} argv ${canary}`) || (seen.add(`${pid} argv ${canary}`), hits.push({ canary, where: 'cmdline', process: name }));
        if (environ.includes(value) && !(canary === 'PGPASSWORD' && CLIENT_TOOLS.has(tool)))
          seen.has(`${pid} env ${canary}`) || (seen.add(`${pid} env ${canary}`), hits.push({ canary, where: 'environ', process: name }));
      }
    }
  };
  tick();
  const timer = setInterval(tick, 100);
  return { stop: () => (clearInterval(timer), tick(), { hits, sampled: processes.size }) };
}

async function run(args: string[], env: Record<string, string>, labDir: string, t: { diagnostic(s: string): void }) {
  const cli = drillCli(args, env);
  await new Promise((r) => setTimeout(r, 20));
  const w = watch(cli.child, labDir);
  const r: CliResult = await cli.done;
  const { hits, sampled } = w.stop();
  for (const { name, value } of SEARCH)
    for (const [stream, text] of [
      ['stdout', r.stdout],
      ['stderr', r.stderr],
    ] as const)
      if (text.includes(value)) hits.push({ canary: name, where: `${stream} of drill ${args[0]}` });
  t.diagnostic(`drill ${args.join(' ')}: exit ${r.code}, ${sampled} distinct processes sampled, ${hits.length} canary hits`);
  for (const h of hits) t.diagnostic(`  HIT ${h.canary} in ${h.where}${h.process ? ` of ${h.process}` : ''}`);
  return { r, hits };
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const p = join(dir, f);
    try {
      const st = statSync(p);
      if (st.isFile() && st.size < 64 << 20) out.push(p);
    } catch {
      // a socket or a file gone meanwhile
    }
  }
  return out;
}

/** Its own Azurite with one account whose key is a canary, so the drill's storage credential is a real one. */
async function canaryAzurite(root: string): Promise<string> {
  const dir = join(root, 'canary-azurite');
  mkdirSync(dir);
  const port = await freeLoopbackPort();
  const child = spawn(process.execPath, [azuriteBlobEntry(), ...azuriteArgs(dir, port)], {
    env: { PATH: '/usr/bin:/bin', AZURITE_ACCOUNTS: `${ACCOUNT}:${ACCOUNT_KEY}` },
    stdio: 'ignore',
  });
  cleanups.push(async () => {
    child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!(await azuriteAnswers(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('the canary Azurite did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:${port}/${ACCOUNT};`;
}

test('no canary credential reaches a child process, an argv or an output file through lab up, drill backup and the quarterly drill', {
  timeout: 900_000,
}, async (t) => {
  const root = scratchDir('secrets');
  const labDir = join(root, 'lab');
  const results = join(root, 'results');
  cleanups.push(async () => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => labDown({ dir: labDir }));
  const env = {
    ...Object.fromEntries(Object.entries(CANARIES).filter(([k]) => k !== 'ACCOUNT_KEY')),
    AZURE_STORAGE_CONNECTION_STRING: await canaryAzurite(root),
    AZURE_STORAGE_ACCOUNT: ACCOUNT,
    AZURE_STORAGE_ACCOUNT_URL: '',
    DRILL_LAB_DIR: labDir,
    DRILL_BACKUP_CONTAINER: 'canary-backups',
  };
  const hits: Hit[] = [];
  const step = async (args: string[]) => {
    const { r, hits: h } = await run(args, env, labDir, t);
    hits.push(...h);
    assert.equal(r.code, 0, `drill ${args.join(' ')}: exit ${r.code}\n${(r.stdout + r.stderr).slice(-3000)}`);
    return r;
  };

  await step(['lab', 'up']);
  // Into the canary account: the quarterly drill's restore then reads a backup only that account holds.
  const backup = await step(['backup', 'lab', '--kind', 'logical']);
  assert.match(backup.stdout + backup.stderr, new RegExp(`${ACCOUNT}`), 'drill backup used the storage account from the environment');
  await step(['run', 'drills/quarterly.yaml', '--results', results]);
  const runs = readdirSync(join(results, 'runs'));
  // delete-all-orders restores from the lab's own Azurite (where the lab's archiver keeps base backup and WAL).
  assert.equal(runs.length, 5, `five entries ran: ${runs.join(', ')}`);
  // The runbook step got the storage account through passSecrets' file: its `drill backup` said which account.
  const backupStep = runs.find((r) => r.includes('take-backup'));
  assert.ok(backupStep, `a take-backup run folder among ${runs.join(', ')}`);
  assert.match(readFileSync(join(results, 'runs', backupStep, 'events.jsonl'), 'utf8'), new RegExp(`/${ACCOUNT}/canary-backups`));

  const files = [...filesUnder(results), ...filesUnder(labDir)];
  for (const f of files) {
    const text = readFileSync(f, 'latin1');
    for (const { name, value } of SEARCH) if (text.includes(value)) hits.push({ canary: name, where: f });
  }
  t.diagnostic(`${files.length} output files read`);
  assert.deepEqual(
    hits.map((h) => `${h.canary} in ${h.where}${h.process ? ` of ${h.process}` : ''}`),
    [],
    'no canary anywhere but the harness itself and a client tool holding PGPASSWORD',
  );
});
