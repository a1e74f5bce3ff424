/** A Blob backup store: restores into scratch clusters; no service, so no load. */
import { createExec } from '../adapters/exec.ts';
import { backupsAdapter, backupsDetails, checkBackupsAccess } from '../adapters/postgres/backup/adapter.ts';
import type { TargetKind } from './types.ts';

export const blobTarget: TargetKind<'blob'> = {
  kind: 'blob',
  capabilities: () => ['backups'],
  async open(target, say) {
    // Credentials and container first: a wrong one is invalid input, found before any scenario starts.
    const backups = backupsAdapter(target);
    await checkBackupsAccess(backups);
    say(`backup store ${backups.where}; scratch clusters under ${backups.scratchParent}; no load (no service)`);
    return { adapters: { exec: createExec(), backups }, serviceUrl: null, details: backupsDetails(backups), async close() {} };
  },
  async peek(target) {
    // Building the client reads the environment only; no request is made.
    const backups = backupsAdapter(target);
    return {
      adapters: { exec: createExec(), backups },
      serviceUrl: null,
      note: `backup store ${backups.where}: restores go into scratch clusters under ${backups.scratchParent}`,
    };
  },
  async reopen(details) {
    // A restore's rollback finds its scratch cluster by the selection journaled before it ran: no store is needed.
    return { adapters: { exec: createExec({ DRILL_SERVICE_URL: String(details.url) }) } };
  },
};
