import yargs from 'yargs';
import { ExitCode, UserError, formatUserError } from '../errors.ts';
import { listCommand, validateCommand, planCommand } from './commands/inspect.ts';
import { runCommand } from './commands/run.ts';
import { announceCommand } from './commands/announce.ts';
import { labCommand } from './commands/lab.ts';
import { recoverCommand } from './commands/recover.ts';
import { backupCommand } from './commands/backup.ts';
import { recordCommand } from './commands/record.ts';
import { reportCommand } from './commands/report.ts';
import { verifyCommand } from './commands/verify.ts';
import { readSecretsFile, SECRETS_FILE_VAR } from '../util/child-env.ts';
import { registerSecret } from '../util/secrets.ts';

/**
 * The CLI's one exit point: every command returns its exit code; expected failures are UserErrors
 * printed without a stack; anything else is a harness bug (70) and says where to look.
 */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.ok;
  const set = (c: number) => {
    code = c;
  };
  try {
    adoptHandedSecrets();
    await yargs(argv)
      .scriptName('drill')
      .usage(
        '$0 <command> [options]\n\nChaos and disaster-recovery drills: pod kill, database failover, restore, under load, scored against RTO, RPO and SLOs.',
      )
      .command(
        'list',
        'scenarios and drills found, one line each',
        (y) => y.option('drills', { type: 'string', default: 'drills', describe: 'folder of drill files' }),
        async (a) => set(await listCommand(a.drills)),
      )
      .command(
        'validate <files..>',
        'validate drill files; prints file:line:col: path: message for each problem',
        (y) => y.positional('files', { type: 'string', array: true, demandOption: true }),
        async (a) => set(await validateCommand(a.files as string[])),
      )
      .command(
        'plan <file>',
        'the resolved plan: target, scenarios, each action with its rollback, guards, load; touches nothing',
        (y) =>
          y
            .positional('file', { type: 'string', demandOption: true })
            .option('scenario', { type: 'string', array: true, default: [] as string[], describe: 'only these scenario entries' })
            .option('json', { type: 'boolean', default: false }),
        async (a) => set(await planCommand(a.file, a.scenario as string[], a.json)),
      )
      .command(
        'run <file>',
        'run the drill; prints a live summary and a final verdict',
        (y) =>
          y
            .positional('file', { type: 'string', demandOption: true })
            .option('scenario', { type: 'string', array: true, default: [] as string[], describe: 'rerun only these scenario entries' })
            .option('json', { type: 'boolean', default: false, describe: 'print the run records as JSON on stdout' })
            .option('junit', { type: 'string', describe: 'write a JUnit XML file, one test case per objective' })
            .option('results', { type: 'string', default: 'results', describe: 'results folder' })
            .option('yes', { type: 'boolean', default: false, describe: 'do not ask before acting on a non-lab target' })
            .option('outside-window', {
              type: 'boolean',
              default: false,
              describe: 'start outside the maintenance window (or overrunning it); needs --reason, which the record keeps',
            })
            .option('reason', { type: 'string', describe: 'why the drill cannot wait for the window (with --outside-window)' }),
        async (a) =>
          set(
            await runCommand({
              file: a.file,
              only: a.scenario as string[],
              json: a.json,
              junit: a.junit,
              resultsDir: a.results,
              yes: a.yes,
              outsideWindow: a['outside-window'],
              reason: a.reason,
            }),
          ),
      )
      .command(
        'announce <file>',
        'write the notice of a drill: plan, maintenance window and blast radius, as Markdown and an iCalendar event',
        (y) =>
          y
            .positional('file', { type: 'string', demandOption: true })
            .option('at', {
              type: 'string',
              demandOption: true,
              describe: 'when the drill starts, ISO with zone, e.g. 2026-12-06T02:00:00Z',
            })
            .option('out', { type: 'string', describe: 'folder for the .md and .ics (default <results>/announcements)' })
            .option('results', { type: 'string', default: 'results', describe: 'results folder; drill run finds the notice there' }),
        async (a) => set(await announceCommand({ file: a.file, at: a.at, resultsDir: a.results, outDir: a.out })),
      )
      .command(labCommand(set))
      .command(backupCommand(set))
      .command(
        'recover [run]',
        'run the rollbacks that a crashed or killed run journaled but did not finish',
        (y) =>
          y
            .positional('run', { type: 'string', describe: 'run id (default: every unfinished run)' })
            .option('results', { type: 'string', default: 'results' }),
        async (a) => set(await recoverCommand(a.results, a.run)),
      )
      .command(
        'record',
        'build the quarterly drill record: record.json, record.md and record.html under <results>/records/<quarter>',
        (y) =>
          y
            .option('quarter', { type: 'string', demandOption: true, describe: 'YYYY-Qn, e.g. 2026-Q4' })
            .option('results', { type: 'string', default: 'results', describe: 'results folder (runs/ is read, records/ written)' })
            .option('out', { type: 'string', describe: 'records folder (default <results>/records)' })
            .option('from', { type: 'string', describe: 'read run folders from Blob: blob://container/prefix' })
            .option('drills', { type: 'string', default: 'drills', describe: 'drill files stating the policy (kind quarterly / monthly)' })
            .option('pdf', { type: 'boolean', default: false, describe: 'also print record.pdf through Chromium' })
            .option('approver', { type: 'string' })
            .option('participant', { type: 'string', array: true, default: [] as string[] })
            .option('signed-by', { type: 'string' })
            .option('signed-at', { type: 'string' }),
        async (a) =>
          set(
            await recordCommand({
              quarter: a.quarter,
              resultsDir: a.results,
              outDir: a.out,
              from: a.from,
              drillsDir: a.drills,
              pdf: a.pdf,
              people: { participants: a.participant as string[], approver: a.approver, signedBy: a['signed-by'], signedAt: a['signed-at'] },
            }),
          ),
      )
      .command(
        'report <run>',
        'render one run as HTML and Markdown (report.html, report.md in its folder)',
        (y) =>
          y
            .positional('run', { type: 'string', demandOption: true, describe: 'run id' })
            .option('results', { type: 'string', default: 'results' })
            .option('pdf', { type: 'boolean', default: false }),
        async (a) => set(await reportCommand(a.results, a.run, a.pdf)),
      )
      .command(
        'verify [record]',
        'check the sha256 digests and hash chain of the run records in a quarterly record (default: every record)',
        (y) =>
          y
            .positional('record', {
              type: 'string',
              describe: 'record folder, e.g. results/records/2026-Q4 (default: every one under <results>/records)',
            })
            .option('results', { type: 'string', describe: 'results folder holding runs/ (default: where the record read them)' })
            .option('from', { type: 'string', describe: 'read run folders from Blob: blob://container/prefix' }),
        async (a) => set(await verifyCommand(a.record, { resultsDir: a.results, from: a.from })),
      )
      .demandCommand(1, 'name a command: list, validate, plan, run, announce, lab, recover, backup, record, report, verify')
      .strict()
      .help()
      .version(false)
      .fail((msg, err) => {
        if (err) throw err;
        throw new UserError(msg, { next: 'see `drill --help`' });
      })
      .parseAsync();
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(formatUserError(e) + '\n');
      return e.exitCode;
    }
    process.stderr.write(
      `drill: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nThis is a bug in drill, not in the system under test. Rollbacks journaled so far can be run with \`drill recover\`.\n`,
    );
    return ExitCode.internal;
  }
  return code;
}

/**
 * A runbook step's credentials (exec's `passSecrets`) arrive in a file, not our environment: read into this
 * process only, where the adapters look for them. A variable already set wins.
 */
function adoptHandedSecrets(): void {
  const file = process.env[SECRETS_FILE_VAR];
  if (!file) return;
  let handed: Record<string, string>;
  try {
    handed = readSecretsFile(file);
  } catch (e) {
    throw new UserError(`cannot read the credentials handed over in $${SECRETS_FILE_VAR}: ${(e as Error).message}`, {
      untouched: 'everything: the command did not start',
      next: `run drill from the drill step that set ${SECRETS_FILE_VAR}, or unset it`,
    });
  }
  for (const [name, value] of Object.entries(handed)) {
    registerSecret(value);
    if (process.env[name] === undefined) process.env[name] = value;
  }
}
