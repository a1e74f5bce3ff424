import { setTimeout as sleep } from 'node:timers/promises';
import type { RunState } from './state.ts';

/**
 * Cool down: the recovery phase needs traffic after the system is whole, unless the run was cut short.
 * Then the load stops and its log becomes the run's facts.
 */
export async function cooldown(s: RunState): Promise<void> {
  const { facts } = s;
  if (!s.load) return;
  const { generator, config } = s.load;
  if (!facts.abort && !facts.harnessError && config.cooldownMs > 0) {
    s.tell({ type: 'phase', name: 'cooldown' });
    await sleep(config.cooldownMs, undefined, { signal: s.input.signal }).catch(() => undefined);
  }
  await generator.stop();
  s.timeline.mark('load-stopped');
  facts.load = {
    log: generator.log,
    ledger: generator.ledger,
    ...(generator.files.rows.length > 0 ? { classes: generator.classLedgers() } : {}),
    seconds: generator.seconds(),
    startMs: s.timeline.get('load-started')?.ms ?? 0,
    endMs: s.timeline.get('load-stopped')!.ms,
  };
}
