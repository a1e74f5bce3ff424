import type { LoadGenerator } from '../load/generator.ts';
import type { Clock } from '../measure/clock.ts';
import type { RunHooks } from '../engine/run.ts';
import type { RunEvent } from '../engine/events.ts';
import { renderProgress } from '../record/summary.ts';

/**
 * The line a person reads for one event, or null for the events that only the journal wants (every
 * probe answer, the run's start and end). One case per kind: a new kind does not compile until it is here.
 */
export function formatEvent(e: RunEvent): string | null {
  switch (e.type) {
    case 'drill.start':
      return `drill ${e.drill} (${e.kind}) from ${e.file}: ${e.entries.join(', ')}`;
    case 'target.note':
      return e.line;
    case 'scenario.start':
      return `\n▶ ${e.entry} (${e.scenario}, tier ${e.tier}, data ${e.dataClass})`;
    case 'phase':
      return `  [${e.name}]`;
    case 'baseline.start':
      return `  baseline: ${e.rate} req/s for ${e.baselineMs / 1000}s`;
    case 'log':
      return `  ${e.level === 'warn' ? `warning: ${e.message}` : e.message}`;
    case 'action.intent':
      return `  ${e.name}: ${e.targets.join(', ') || '(no targets)'}`;
    case 'recovered':
      return `  recovered ${(e.afterMs / 1000).toFixed(2)}s after the fault`;
    case 'recovery.failed':
      return `  not recovered: ${e.probe.detail}`;
    case 'recovery.deadline':
      return `  not recovered within ${e.timeoutMs / 1000}s (+${e.windowMs / 1000}s SLO window)`;
    case 'rpo.classes':
      return e.classes
        .map((c) =>
          'reason' in c
            ? `  ${c.dataClass}: not measured: ${c.reason}`
            : `  ${c.dataClass}: ${c.survived}/${c.acknowledged} acknowledged read back, ${c.lost} lost, RPO ${c.rpoSeconds.toFixed(3)}s`,
        )
        .join('\n');
    case 'probe.skipped':
      return `  skipped ${e.name}: ${e.reason}`;
    case 'run.abort':
      return `  ${e.kind === 'steady-state' ? 'not injecting' : 'aborting'}: ${e.reason}`;
    case 'harness.error':
      return `  harness error: ${e.message}`;
    case 'rollback.done':
      return e.alreadyHeld ? `  ${e.name}: ${e.detail}` : `  rolled back ${e.name}${e.detail ? `: ${e.detail}` : ''}`;
    case 'rollback.failed':
      return `  ROLLBACK FAILED for ${e.name}: ${e.error}`;
    // The run.abort line that follows says why the stop condition stopped the run.
    case 'stop-condition':
    // `recovery.deadline` says it for the person; this one is the journal's.
    case 'recovery.timeout':
    case 'run.start':
    case 'probe':
    case 'rpo.measured':
    case 'action.done':
    case 'action.failed':
    case 'rollback.none':
    case 'rollback.start':
    case 'run.end':
    case 'run.recovered':
      return null;
    default:
      return unknownEvent(e);
  }
}

function unknownEvent(e: never): never {
  throw new Error(`no line for event ${JSON.stringify(e)}`);
}

/**
 * What a person sees while a drill runs: event lines on stderr and, on a TTY, one live progress line
 * (phase, req/s, p95, errors) redrawn every second instead of the phase lines. stdout stays clean for `--json`.
 */
export class LiveUi implements RunHooks {
  private current = 'starting';
  private timer: NodeJS.Timeout | null = null;
  private drawn = false;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY) && process.env.CI !== 'true';
  }

  event(e: RunEvent): void {
    if (e.type === 'phase') {
      this.current = e.name;
      if (this.tty) return;
    }
    const line = formatEvent(e);
    if (line !== null) this.say(line);
  }

  say(line: string): void {
    this.clear();
    this.out.write(line + '\n');
  }

  loadStarted(load: LoadGenerator, clock: Clock): void {
    if (!this.tty) return;
    const t0 = clock.now();
    this.timer = setInterval(() => {
      const w = load.window(1000);
      const line = renderProgress({
        phase: this.current,
        reqPerSec: w.scheduled,
        p95Ms: w.p95Ms,
        errors: w.errors + w.dropped,
        elapsedMs: clock.now() - t0,
      });
      this.clear();
      this.out.write(line);
      this.drawn = true;
    }, 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }

  private clear(): void {
    if (this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }
}
