import { setTimeout as sleep } from 'node:timers/promises';
import type { RunState } from './state.ts';

/** Baseline: the load runs for a while before anything is touched, so steady state is judged on it. */
export async function baseline(s: RunState): Promise<void> {
  if (!s.load) return;
  const { generator, config } = s.load;
  s.tell({ type: 'phase', name: 'baseline' });
  generator.start();
  s.input.hooks.loadStarted?.(generator, s.clock);
  s.timeline.mark('load-started');
  s.tell({ type: 'baseline.start', rate: config.rate, baselineMs: config.baselineMs });
  await sleep(config.baselineMs, undefined, { signal: s.run.signal });
}
