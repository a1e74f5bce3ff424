import type { Clock } from './clock.ts';

/** A named instant of a run: `fault-injected`, `recovered`, or one a scenario puts down. */
export interface Mark {
  name: string;
  /** ISO wall-clock time. */
  at: string;
  /** Monotonic ms since run start. */
  ms: number;
}

/** The timeline of one run: marks in run-relative monotonic ms, sorted when read. */
export class Timeline {
  private readonly marks: Mark[] = [];

  constructor(private readonly clock: Clock) {}

  mark(name: string, ms = this.clock.now()): Mark {
    const m = { name, at: this.clock.iso(ms), ms: Math.round(ms * 1000) / 1000 };
    this.marks.push(m);
    return m;
  }

  get(name: string): Mark | undefined {
    return this.marks.find((m) => m.name === name);
  }

  all(): Mark[] {
    return [...this.marks].sort((a, b) => a.ms - b.ms);
  }
}
