import { createInterface } from 'node:readline/promises';
import { runDrill } from '../../engine/drill.ts';
import type { RunEvent } from '../../engine/events.ts';
import { ExitCode, UserError } from '../../errors.ts';
import { LiveUi } from '../ui.ts';
import { ttyProgress } from '../transfer-line.ts';
import { jsonReporter, junitReporter, summaryReporter, type Reporter } from '../reporters.ts';
import { validatedDrill } from './load-drill.ts';
import { redactSecrets } from '../../util/secrets.ts';
import { plannedDuration } from '../../plan/duration.ts';
import { describeJudgement, drillNow, judgeWindow, windowApplies } from './window.ts';

export interface RunCommandOptions {
  file: string;
  only: string[];
  json: boolean;
  junit?: string;
  resultsDir: string;
  yes: boolean;
  /** Start outside the maintenance window (or overrunning it); needs `reason`, which the record keeps. */
  outsideWindow?: boolean;
  reason?: string;
}

/** A drill against anything but the throwaway lab breaks real things: ask, or demand --yes when nobody can answer. */
async function confirmTarget(what: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) {
    throw new UserError(`refusing to act on ${what} without confirmation`, {
      untouched: 'nothing: no load was sent and no action ran',
      next: 'add --yes to run unattended (CI), after reading `drill plan` for this drill',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`This drill breaks things on ${what}. Type "yes" to go on: `);
  rl.close();
  if (answer.trim() !== 'yes') {
    throw new UserError('not confirmed', {
      untouched: 'nothing: no load was sent and no action ran',
      next: 'read `drill plan` and run again',
    });
  }
}

export async function runCommand(o: RunCommandOptions): Promise<number> {
  const { drill, catalog } = await validatedDrill(o.file, o.only);
  if (o.outsideWindow && !o.reason?.trim()) {
    throw new UserError('--outside-window needs --reason "why it cannot wait for the window"', {
      untouched: 'nothing: no target was contacted',
      next: 'add --reason "...": the run record and the quarterly record show it to auditors',
    });
  }
  const entries = o.only.length === 0 ? drill.scenarios : drill.scenarios.filter((e) => o.only.includes(e.name));
  const window = !windowApplies(drill.target)
    ? null
    : judgeWindow(
        drill,
        plannedDuration(drill, catalog, entries),
        { outsideWindow: o.outsideWindow ?? false, reason: o.reason?.trim() },
        o.resultsDir,
        drillNow(),
      );
  // A blob target only reads backups and restores into scratch clusters: nothing live to confirm.
  if (drill.target.kind === 'kubernetes')
    await confirmTarget(
      `${(await import('../../adapters/kubernetes/target.ts')).describeKubeTarget(drill.target)}; load to ${redactSecrets(drill.target.url)}`,
      o.yes,
    );
  else if (drill.target.kind === 'http') await confirmTarget(`http target ${redactSecrets(drill.target.url)}`, o.yes);

  const ui = new LiveUi();
  // A fixed clock moves the window check: whoever reads the run's output must see that it was not now.
  const fixedClock = process.env.DRILL_NOW ? ` (judged at DRILL_NOW=${process.env.DRILL_NOW}, not the machine's clock)` : '';
  if (window) ui.say(`window: ${describeJudgement(window, drill.policy.maintenance)}${fixedClock}`);
  const reporters: Reporter[] = [
    o.json ? jsonReporter() : summaryReporter(),
    ...(o.junit ? [junitReporter(o.junit, (l) => ui.say(l))] : []),
  ];
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      ui.say(`\n${sig}: aborting; rollbacks run now, each under its own time limit (press Ctrl-C twice more to leave them unfinished)`);
      abort.abort(sig);
    } else if (interrupts === 2) {
      ui.say(`${sig} again: rollbacks are still running; once more leaves the target as it is`);
    } else {
      ui.say(`${sig}: leaving now. Rollbacks may be unfinished: run \`drill recover\` to finish them from the journal.`);
      process.exit(ExitCode.rollbackFailed);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const hooks = {
      event: (e: RunEvent) => {
        ui.event(e);
        for (const r of reporters) r.onEvent?.(e);
      },
      loadStarted: ui.loadStarted.bind(ui),
      progress: ttyProgress(),
      stop: ui.stop.bind(ui),
    };
    const outcome = await runDrill(drill, catalog, { resultsDir: o.resultsDir, only: o.only, signal: abort.signal, hooks, window });
    for (const r of reporters) r.onEnd?.(drill, outcome);
    return outcome.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
