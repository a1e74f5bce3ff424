/**
 * The outcome a live restore fills in as it goes, whatever the target: nothing replaced until said otherwise, and
 * each step's time recorded and reported as it ends.
 */
import type { LiveRestoreOutcome, LiveRestoreStepName } from './types.ts';

export function beginLiveRestore(onStep?: (step: LiveRestoreStepName, ms: number) => void): {
  out: LiveRestoreOutcome;
  step: (s: LiveRestoreStepName, ms: number) => void;
} {
  const out: LiveRestoreOutcome = {
    ok: false,
    problem: null,
    missingSegments: [],
    replaced: false,
    backup: null,
    reachedLsn: null,
    newestCommitAt: null,
    timings: {},
    quarantine: null,
  };
  const step = (s: LiveRestoreStepName, ms: number) => {
    out.timings[s] = ms;
    onStep?.(s, ms);
  };
  return { out, step };
}
