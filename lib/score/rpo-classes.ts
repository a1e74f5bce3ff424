/**
 * RPO per data class (DESIGN.md `objectives.rpoClasses`): the entry's own class as `objectives.rpo` scored
 * it, and beside it every other class a ledger of its own measured in the run (file storage by name and
 * sha256, logs by token), each against its own target from the policy (`policy.rpo`, default database 15m,
 * file-storage 1h, logs 24h). A class not measured is absent, or carried with a null value and the reason:
 * never a guess.
 */
import type { DataClass, Policy } from '../config/types.ts';
import type { ClassVerdict } from '../measure/data-classes.ts';
import type { RpoResult } from './objectives.ts';

export interface RpoClassResult {
  dataClass: DataClass;
  targetSeconds: number;
  measuredSeconds: number | null;
  method: string | null;
  lost: number | null;
  unknown: number | null;
  /** Items the class's ledger holds as acknowledged, and of those read back after recovery (other classes only; absent when not measured). */
  acknowledged?: number;
  survived?: number;
  met: boolean | null;
  reason?: string;
}

/** What a run measured for a class other than its entry's, or why it could not. */
export type ClassMeasurement = ClassVerdict | { dataClass: DataClass; reason: string };

export function scoreRpoClasses(i: {
  entryClass: DataClass;
  entryRpo: RpoResult;
  measured: readonly ClassMeasurement[];
  policy: Pick<Policy, 'rpoMs'>;
}): RpoClassResult[] {
  const out: RpoClassResult[] = [];
  const own = i.entryRpo;
  // The entry's class, only when something measured it (a scenario that writes no data has no database class).
  if (own.measuredSeconds !== null || own.method !== null) {
    out.push({
      dataClass: i.entryClass,
      targetSeconds: own.targetSeconds,
      measuredSeconds: own.measuredSeconds,
      method: own.method,
      lost: own.lostWrites,
      unknown: own.unknownWrites,
      met: own.met,
      ...(own.reason === undefined ? {} : { reason: own.reason }),
    });
  }
  for (const m of i.measured) {
    if (m.dataClass === i.entryClass) continue;
    const targetSeconds = i.policy.rpoMs[m.dataClass] / 1000;
    if ('reason' in m) {
      out.push({
        dataClass: m.dataClass,
        targetSeconds,
        measuredSeconds: null,
        method: null,
        lost: null,
        unknown: null,
        met: null,
        reason: m.reason,
      });
      continue;
    }
    out.push({
      dataClass: m.dataClass,
      targetSeconds,
      measuredSeconds: m.rpoSeconds,
      method: m.method,
      lost: m.lost,
      unknown: m.unknown,
      acknowledged: m.acknowledged,
      survived: m.survived,
      met: m.rpoSeconds <= targetSeconds,
    });
  }
  return out;
}
