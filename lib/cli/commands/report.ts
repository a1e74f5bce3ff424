import { ExitCode } from '../../errors.ts';
import { makeRunReport } from '../../record/quarterly/make.ts';
import { htmlToPdf } from '../../record/render/pdf.ts';
import { join } from 'node:path';

export async function reportCommand(resultsDir: string, runId: string, pdf: boolean): Promise<number> {
  const { files, runDir } = makeRunReport(resultsDir, runId);
  if (pdf) {
    const out = join(runDir, 'report.pdf');
    await htmlToPdf(files[0]!, out);
    files.push(out);
  }
  console.log(`drill report ${runId}:`);
  for (const f of files) console.log(`  ${f}`);
  return ExitCode.ok;
}
