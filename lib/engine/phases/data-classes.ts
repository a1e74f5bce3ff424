import type { DataClass } from '../../config/types.ts';
import type { ClassMeasurement } from '../../score/rpo-classes.ts';
import { errText, type RunState } from './state.ts';

/** The read-back's own limit: a log shipper's pass, then one download per file of the ledger. */
const READ_BACK_LIMIT_MS = 5 * 60_000;
const OTHER_CLASSES: DataClass[] = ['file-storage', 'logs'];

/**
 * Data classes: after the load stopped (every request settled, so the file and log ledgers are final), the
 * target reads the file-storage and logs classes back from where it keeps them and they are scored beside the
 * entry's own (objectives.rpoClasses). Only for a load that uploaded attachments (load.attachments): the others
 * have no file ledger. A class that cannot be read back is recorded with its reason, never as nothing lost.
 */
export async function measureDataClasses(s: RunState): Promise<void> {
  const { facts } = s;
  const ledgers = facts.load?.classes;
  if (!ledgers) return;
  s.tell({ type: 'phase', name: 'data-classes' });
  const notMeasured = (reason: string): ClassMeasurement[] => OTHER_CLASSES.map((dataClass) => ({ dataClass, reason }));
  const fault = s.timeline.get('fault-injected');
  const adapter = s.input.adapters.dataClasses;
  let measured: ClassMeasurement[];
  if (!fault) measured = notMeasured('no fault was injected (the run stopped before it): there is no data loss to measure');
  else if (facts.abort?.kind === 'signal')
    // Whoever pressed Ctrl-C wants the harness gone: a read-back could wait on a log shipper for minutes.
    measured = notMeasured(`the run was interrupted (${facts.abort.message}): the classes were not read back`);
  else if (!adapter)
    measured = notMeasured(`target ${s.drill.target.kind} cannot read the file-storage and logs classes back (no data-class read-back)`);
  else {
    try {
      measured = await adapter.readBack({
        files: ledgers.files,
        logs: ledgers.logs,
        faultMs: fault.ms,
        sinceEpochMs: s.clock.epochMs,
        // Not the run's signal: as the rollbacks, the read-back runs after an abort too, the data lost is still the data lost.
        signal: AbortSignal.timeout(READ_BACK_LIMIT_MS),
        log: (line) => s.record({ type: 'log', level: 'info', message: line }),
      });
    } catch (e) {
      measured = notMeasured(`the read-back from ${adapter.where} failed: ${errText(e)}`);
    }
  }
  facts.rpoClasses = measured;
  s.record({
    type: 'rpo.classes',
    classes: measured.map((m) =>
      'reason' in m
        ? { dataClass: m.dataClass, reason: m.reason }
        : {
            dataClass: m.dataClass,
            acknowledged: m.acknowledged,
            survived: m.survived,
            lost: m.lost,
            unknown: m.unknown,
            rpoSeconds: m.rpoSeconds,
            lostSample: m.lostSample.slice(0, 5),
          },
    ),
  });
}
