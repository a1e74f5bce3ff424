import { join } from 'node:path';
import { ExitCode } from '../../errors.ts';
import { makeRecord, type RecordOptions } from '../../record/quarterly/make.ts';
import { htmlToPdf } from '../../record/render/pdf.ts';
import { openBlobRunStore } from '../run-store.ts';

export interface RecordCommandOptions extends Omit<RecordOptions, 'openRunStore'> {
  pdf: boolean;
}

/**
 * Exit 0 when the quarter's runs met their objectives and the policy is covered; 1 when the record
 * shows a failed run or a coverage gap (the record is written either way: it is the evidence).
 */
export async function recordCommand(o: RecordCommandOptions): Promise<number> {
  const { record, dir, files } = await makeRecord({ ...o, openRunStore: openBlobRunStore });
  for (const e of record.excluded) process.stderr.write(`drill: excluded ${e.file}: ${e.reason}\n`);
  for (const w of record.warnings) process.stderr.write(`drill: warning: ${w}\n`);
  if (record.excluded.length > 0) {
    process.stderr.write(
      `drill: ${record.excluded.length} file${record.excluded.length === 1 ? '' : 's'} excluded (listed in the record); the other ${record.summary.runs} run${record.summary.runs === 1 ? ' is' : 's are'} counted\n`,
    );
  }
  if (o.pdf) {
    const pdf = join(dir, 'record.pdf');
    await htmlToPdf(files[2]!, pdf);
    files.push(pdf);
  }
  console.log(`drill record ${record.quarter}: ${record.summary.headline}`);
  for (const f of files) console.log(`  ${f}`);
  console.log(
    `  chain head ${record.integrity.head} over ${record.integrity.entries.length} run records (check with \`drill verify ${dir}\`)`,
  );
  const failed = record.runs.some((r) => r.status === 'failed') || record.coverage.gaps > 0;
  return failed ? ExitCode.objectiveMissed : ExitCode.ok;
}
