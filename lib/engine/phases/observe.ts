import { findRecovery } from '../../score/recovery.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunState } from './state.ts';

const RECOVERY_EVAL_MS = 250;

/**
 * Observe: until the scenario's recovery probe passes and the SLOs held for a full window after the
 * fault, or until the entry's time limit (plus that window) runs out, or the probe says it never will.
 */
export async function observe(s: RunState): Promise<void> {
  const { drill, entry, clock, timeline, facts } = s;
  s.tell({ type: 'phase', name: 'observe' });
  const faultMs = timeline.get('fault-injected')!.ms;
  const until = s.scenario.recovery.until;
  const pollMs = s.scenario.recovery.pollMs ?? 500;
  const windowMs = drill.policy.recoveryWindowMs;
  let probeOkMs: number | null = until ? null : faultMs;
  let lastProbeAt = -Infinity;
  const deadline = faultMs + entry.timeoutMs + windowMs;
  for (;;) {
    const now = clock.now();
    if (until && probeOkMs === null && now - lastProbeAt >= pollMs) {
      lastProbeAt = now;
      const f = await s.probe(until);
      facts.recoveryProbe = f;
      if (f.ok) probeOkMs = recoveryCheckHeldFrom(f.heldSinceMs, faultMs, clock.now());
      else if (f.final) {
        s.record({ type: 'recovery.failed', probe: f });
        return;
      }
    }
    const rec = s.load
      ? findRecovery(s.load.generator.log, { faultMs, slo: drill.policy.slo, windowMs, nowMs: clock.now() })
      : { recoveredMs: probeOkMs, outageDetectedMs: null };
    if (rec.recoveredMs !== null && probeOkMs !== null) {
      const recoveredMs = Math.max(rec.recoveredMs, probeOkMs);
      timeline.mark('recovered', recoveredMs);
      if (rec.outageDetectedMs !== null) timeline.mark('outage-detected', rec.outageDetectedMs);
      s.tell({ type: 'recovered', afterMs: recoveredMs - faultMs });
      return;
    }
    if (now > deadline) {
      s.tell({ type: 'recovery.deadline', timeoutMs: entry.timeoutMs, windowMs });
      s.record({ type: 'recovery.timeout', timeoutMs: entry.timeoutMs, probe: facts.recoveryProbe });
      return;
    }
    await sleep(Math.min(RECOVERY_EVAL_MS, pollMs), undefined, { signal: s.run.signal });
  }
}

/**
 * When a passing recovery check counts from: the instant its evidence dates, kept between the fault and now
 * (a check cannot have held before the fault it recovers from, nor after it was seen), else now.
 */
export function recoveryCheckHeldFrom(heldSinceMs: number | undefined, faultMs: number, nowMs: number): number {
  if (heldSinceMs === undefined || !Number.isFinite(heldSinceMs)) return nowMs;
  return Math.min(nowMs, Math.max(faultMs, heldSinceMs));
}
