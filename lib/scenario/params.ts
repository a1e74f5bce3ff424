import { z } from 'zod';
import { parseDuration } from '../config/duration.ts';

/**
 * A duration parameter written as drills write durations (`500ms`, `30s`, `15m`, `1h`), kept as the
 * text the user wrote so plans and records show it as given. `positive` refuses `0s` where zero means
 * nothing sensible (a timeout, a retention); `example` goes into the message a bad value gets.
 */
export function durationParam(example: string, options: { positive?: boolean } = {}) {
  return z.string().refine((s) => {
    try {
      const ms = parseDuration(s);
      return options.positive ? ms > 0 : true;
    } catch {
      return false;
    }
  }, `expected a duration like ${example}`);
}
