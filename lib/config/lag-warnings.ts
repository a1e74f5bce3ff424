/**
 * A lag the target is configured with that is longer than a data class's RPO target: the drill can run, but a
 * region loss (or the loss of the logs not yet shipped) loses more of that class than its objective allows, by
 * design. `drill plan` shows these as warnings and a run carries each as a finding; they do not stop a drill.
 */
import { formatDuration } from './duration.ts';
import type { ConfigProblem, DataClass, Drill } from './types.ts';
import type { PathKey, Position } from './yaml-source.ts';

/** Which lag delays which classes: replication delays every class the secondary holds, shipping only the logs. */
const LAGS: { field: 'replicationLag' | 'logShipInterval'; classes: DataClass[]; loses: string }[] = [
  {
    field: 'replicationLag',
    classes: ['database', 'file-storage', 'logs'],
    loses: "a region loss can lose that much of it: the secondary region's copy trails the primary by the lag",
  },
  { field: 'logShipInterval', classes: ['logs'], loses: 'losing the replicas loses the lines written since the last shipment' },
];

function lagOf(drill: Drill, field: (typeof LAGS)[number]['field']): number | undefined {
  const t = drill.target;
  if (t.kind !== 'lab') return undefined;
  return field === 'replicationLag' ? t.replicationLagMs : t.logShipIntervalMs;
}

/** Every lag longer than an RPO target, at the position of the lag in the drill file. */
export function lagOverRpoWarnings(drill: Drill, positionOf: (path: readonly PathKey[]) => Position): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const { field, classes, loses } of LAGS) {
    const lagMs = lagOf(drill, field);
    if (lagMs === undefined) continue;
    const path = ['target', field];
    for (const cls of classes) {
      const rpoMs = drill.policy.rpoMs[cls];
      if (lagMs <= rpoMs) continue;
      out.push({
        file: drill.file,
        ...positionOf(path),
        path: path.join('.'),
        message: `${formatDuration(lagMs)} is longer than the ${cls} RPO target of ${formatDuration(rpoMs)} (policy.rpo.${cls}): ${loses}; the run records this as a finding`,
      });
    }
  }
  return out;
}
