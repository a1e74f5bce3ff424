import type { LoadGenerator } from '../load/generator.ts';
import type { Clock } from '../measure/clock.ts';
import type { RunHooks } from '../engine/run.ts';
import { renderProgress } from '../record/summary.ts';

/**
 * What a person sees while a drill runs: event lines on stderr and, on a TTY, one live progress line
 * (phase, req/s, p95, errors) redrawn every second. stdout stays clean for `--json`.
 */
export class LiveUi implements RunHooks {
  private current = 'starting';
  private timer: NodeJS.Timeout | null = null;
  private drawn = false;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY) && process.env.CI !== 'true';
  }

  say(line: string): void {
    this.clear();
    this.out.write(line + '\n');
  }

  phase(name: string): void {
    this.current = name;
    if (!this.tty) this.out.write(`  [${name}]\n`);
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
