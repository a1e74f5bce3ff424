/**
 * The lab's file-storage and logs classes measured after recovery: the load's ledgers (files.tsv, logs.tsv)
 * against what the lab's Azurite holds. What could not be read back is reported with its reason, never
 * guessed (DESIGN.md: a class not measured is null with a reason).
 *
 * The logs class reads what was shipped when it is called: a caller measuring a region loss calls it on
 * the surviving storage; on a plain scenario, after the shipper's next pass (logShipInterval) so lines
 * still waiting for it are not counted lost.
 */
import { checkFiles, checkLogs, type FileLedgerEntry, type LogLedgerEntry } from '../measure/data-classes.ts';
import type { ClassMeasurement } from '../score/rpo-classes.ts';
import { readShippedLogs, readStoredFiles } from './data-readback.ts';

export async function readBackLabClasses(
  labDir: string,
  ledgers: { files: readonly FileLedgerEntry[]; logs: readonly LogLedgerEntry[] },
  faultMs: number,
): Promise<ClassMeasurement[]> {
  const out: ClassMeasurement[] = [];
  try {
    out.push(checkFiles(ledgers.files, await readStoredFiles(labDir), faultMs));
  } catch (e) {
    out.push({ dataClass: 'file-storage', reason: `attachments could not be read back: ${(e as Error).message}` });
  }
  try {
    out.push(checkLogs(ledgers.logs, (await readShippedLogs(labDir)).tokens, faultMs));
  } catch (e) {
    out.push({ dataClass: 'logs', reason: `shipped log segments could not be read back: ${(e as Error).message}` });
  }
  return out;
}
