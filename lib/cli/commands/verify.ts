import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, UserError } from '../../errors.ts';
import { verifyRecord } from '../../record/quarterly/make.ts';
import { openBlobRunStore } from '../run-store.ts';

/**
 * Exit 0 when every run record still has its recorded digest and every chain holds; 1 otherwise.
 * Without a record folder, every record under <results>/records is checked.
 */
export async function verifyCommand(recordDir: string | undefined, o: { resultsDir?: string; from?: string }): Promise<number> {
  const dirs = recordDir !== undefined ? [recordDir] : allRecords(o.resultsDir ?? 'results');
  let worst: number = ExitCode.ok;
  for (const dir of dirs) worst = Math.max(worst, await verifyOne(dir, o));
  return worst;
}

function allRecords(resultsDir: string): string[] {
  const records = join(resultsDir, 'records');
  const dirs = existsSync(records)
    ? readdirSync(records)
        .filter((d) => existsSync(join(records, d, 'record.json')))
        .sort()
        .map((d) => join(records, d))
    : [];
  if (dirs.length === 0)
    throw new UserError(`no quarterly records in ${records}`, {
      untouched: 'nothing',
      next: 'build one with `drill record --quarter YYYY-Qn`, or name a record folder',
    });
  return dirs;
}

async function verifyOne(recordDir: string, o: { resultsDir?: string; from?: string }): Promise<number> {
  const v = await verifyRecord(recordDir, { ...o, openRunStore: openBlobRunStore });
  for (const p of v.problems) console.log(`FAIL ${p.file ?? v.record.quarter}: ${p.problem}`);
  for (const id of v.notInRecord)
    console.log(`note ${id}: started in ${v.record.quarter} but is not in the record (made after it? rebuild the record to include it)`);
  if (v.problems.length > 0) {
    console.log(
      `drill verify ${v.record.quarter}: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'} in ${v.checked} run records from ${v.source}: the record no longer matches its evidence`,
    );
    return ExitCode.objectiveMissed;
  }
  console.log(
    `drill verify ${v.record.quarter}: ${v.checked} run records match their sha256 digests; chain head ${v.record.integrity.head} holds (runs read from ${v.source})`,
  );
  return ExitCode.ok;
}
