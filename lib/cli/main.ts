import yargs from 'yargs';
import { ExitCode, UserError, formatUserError } from '../errors.ts';
import { listCommand, validateCommand, planCommand } from './commands/inspect.ts';
import { runCommand } from './commands/run.ts';
import { labCommand } from './commands/lab.ts';
import { recoverCommand } from './commands/recover.ts';

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
    await yargs(argv)
      .scriptName('drill')
      .usage('$0 <command> [options]\n\nChaos and disaster-recovery drills: pod kill, database failover, restore, under load, scored against RTO, RPO and SLOs.')
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
            .option('yes', { type: 'boolean', default: false, describe: 'do not ask before acting on a non-lab target' }),
        async (a) =>
          set(await runCommand({ file: a.file, only: a.scenario as string[], json: a.json, junit: a.junit, resultsDir: a.results, yes: a.yes })),
      )
      .command(labCommand(set))
      .command(
        'recover [run]',
        'run the rollbacks that a crashed or killed run journaled but did not finish',
        (y) =>
          y
            .positional('run', { type: 'string', describe: 'run id (default: every unfinished run)' })
            .option('results', { type: 'string', default: 'results' }),
        async (a) => set(await recoverCommand(a.results, a.run)),
      )
      .demandCommand(1, 'name a command: list, validate, plan, run, lab, recover')
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
    process.stderr.write(`drill: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nThis is a bug in drill, not in the system under test. Rollbacks journaled so far can be run with \`drill recover\`.\n`);
    return ExitCode.internal;
  }
  return code;
}
