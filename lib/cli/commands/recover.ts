import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadCatalog } from '../../scenario/catalog.ts';
import { recoverRun, unfinishedRuns, type RecoverResult } from '../../engine/recover.ts';
import { ExitCode, UserError } from '../../errors.ts';
import { formatEvent } from '../ui.ts';

/** done: the condition was reached, or already held (nothing done); failed: it does not hold, exit 5. */
function verb(r: RecoverResult): string {
  if (r.status === 'failed') return 'FAILED';
  if (r.status === 'nothing-left') return 'nothing left';
  return r.alreadyHeld ? 'already held' : 'rolled back';
}

export async function recoverCommand(resultsDir: string, runId?: string): Promise<number> {
  if (runId && !existsSync(join(resultsDir, 'runs', runId, 'events.jsonl'))) {
    throw new UserError(`no run ${runId} in ${join(resultsDir, 'runs')}`, {
      untouched: 'nothing',
      next: `list the runs with \`ls ${join(resultsDir, 'runs')}\``,
    });
  }
  const ids = runId ? [runId] : unfinishedRuns(resultsDir);
  if (ids.length === 0) {
    console.log(`nothing to recover: every action journaled in ${join(resultsDir, 'runs')} has its rollback finished`);
    return ExitCode.ok;
  }
  const catalog = await loadCatalog();
  let failed = 0;
  for (const id of ids) {
    console.log(`recovering ${id}`);
    const results = await recoverRun(resultsDir, id, catalog, (e) => {
      const line = formatEvent(e);
      if (line !== null) console.log(line);
    });
    if (results.length === 0) console.log('  nothing pending');
    for (const r of results) {
      console.log(`  ${verb(r)}: ${r.action}: ${r.alreadyHeld ? r.detail.replace(/^already held: /, '') : r.detail}`);
      if (r.status === 'failed') failed++;
    }
  }
  if (failed > 0) {
    console.error(
      `${failed} rollback${failed === 1 ? '' : 's'} failed: the target is not back to where it was; a person must look (details above and in events.jsonl), then run \`drill recover\` again: it checks each condition before it closes the run`,
    );
    return ExitCode.rollbackFailed;
  }
  return ExitCode.ok;
}
