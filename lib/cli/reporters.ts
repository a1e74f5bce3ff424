import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Drill } from '../config/types.ts';
import type { DrillOutcome } from '../engine/drill.ts';
import type { RunEvent } from '../engine/events.ts';
import { renderSummary } from '../record/summary.ts';
import { renderJUnit } from '../record/junit.ts';

/**
 * What `drill run` produces besides the live lines: each output is a reporter, and every hook is
 * optional, so a new output (a webhook, a chat message) is one more object in the list.
 */
export interface Reporter {
  /** Every event, as it happens. */
  onEvent?(e: RunEvent): void;
  /** Once, after the last scenario, with every run's record. */
  onEnd?(drill: Drill, outcome: DrillOutcome): void;
}

/** `--json`: the records on stdout, nothing else there. */
export function jsonReporter(out: NodeJS.WritableStream = process.stdout): Reporter {
  return {
    onEnd: (drill, outcome) => {
      out.write(JSON.stringify({ drill: drill.name, exitCode: outcome.exitCode, runs: outcome.runs.map((r) => r.record) }, null, 2) + '\n');
    },
  };
}

/** The verdict and tables of each run, on stdout, in colour on a terminal. */
export function summaryReporter(out: NodeJS.WriteStream = process.stdout): Reporter {
  return {
    onEnd: (_drill, outcome) => {
      for (const r of outcome.runs)
        out.write('\n' + renderSummary(r.record, { color: Boolean(out.isTTY), dir: relative(process.cwd(), r.dir) || r.dir }) + '\n');
    },
  };
}

/** `--junit FILE`: one test case per run, for CI; says where it wrote. */
export function junitReporter(path: string, say: (line: string) => void): Reporter {
  return {
    onEnd: (_drill, outcome) => {
      writeFileSync(path, renderJUnit(outcome.runs.map((r) => r.record)));
      say(`JUnit: ${path}`);
    },
  };
}
