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
  out.push(...combinedLagWarnings(drill, positionOf, out));
  return out;
}

/**
 * A region loss loses a class's own lag on top of the replication lag: the database what the archive had not
 * shipped when the replicator last copied, the logs what the shipper had not. Warned when the sum is over the RPO
 * and neither lag alone already was (that one is warned above).
 */
function combinedLagWarnings(drill: Drill, positionOf: (path: readonly PathKey[]) => Position, already: ConfigProblem[]): ConfigProblem[] {
  const t = drill.target;
  if (t.kind !== 'lab' || t.regions !== 2 || t.replicationLagMs === undefined) return [];
  const own: { cls: DataClass; field: 'archiveLag' | 'logShipInterval'; ms: number | undefined; what: string }[] = [
    { cls: 'database', field: 'archiveLag', ms: t.archiveLagMs, what: 'the WAL the archive had not shipped' },
    { cls: 'logs', field: 'logShipInterval', ms: t.logShipIntervalMs, what: 'the lines the shipper had not shipped' },
  ];
  const out: ConfigProblem[] = [];
  for (const { cls, field, ms, what } of own) {
    if (ms === undefined) continue;
    const rpoMs = drill.policy.rpoMs[cls];
    const sum = t.replicationLagMs + ms;
    if (sum <= rpoMs || already.some((w) => w.message.includes(`the ${cls} RPO target`))) continue;
    const path = ['target', 'replicationLag'];
    out.push({
      file: drill.file,
      ...positionOf(path),
      path: path.join('.'),
      message: `${formatDuration(t.replicationLagMs)} plus target.${field} ${formatDuration(ms)} is ${formatDuration(sum)}, longer than the ${cls} RPO target of ${formatDuration(rpoMs)} (policy.rpo.${cls}): a region loss loses the replication lag and ${what} before it; the run records this as a finding`,
    });
  }
  return out;
}
