/**
 * The ledgers of the file-storage and log classes, beside the write ledger (ledger.ts): files.tsv holds
 * every attachment upload by blob name and the sha256 of what was sent, logs.tsv every request whose log
 * line the service should have written, by its token and the replica that answered. A row is settled when
 * its request is (its fate is the write ledger's: ok, failed, unknown), so the files say what the client
 * saw, and the RPO of each class can be re-checked offline against any read-back of the storage.
 */
import { createHash } from 'node:crypto';
import type { FileLedgerEntry, LogLedgerEntry } from '../measure/data-classes.ts';
import type { WriteOutcome } from '../measure/ledger.ts';

/** The attachment's bytes: the load's token inside, so a restored blob can be told from any other. */
export function attachmentBody(token: string, seq: number): Buffer {
  return Buffer.from(JSON.stringify({ token, seq, kind: 'drill-attachment' }) + '\n', 'utf8');
}

export function sha256Hex(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Blob name of order `id`'s attachment in the service's files container; the service and the read-back agree on it. */
export const attachmentBlobName = (orderId: string) => `orders/${orderId}/attachment`;

type Row<T> = Omit<T, 'outcome' | 'ackMs'> & { outcome: WriteOutcome | 'pending'; ackMs: number | null };

class ClassLedger<T extends { outcome: WriteOutcome; ackMs: number | null }> {
  readonly rows: Row<T>[] = [];

  push(row: Omit<T, 'outcome' | 'ackMs'>): number {
    this.rows.push({ ...row, outcome: 'pending', ackMs: null } as Row<T>);
    return this.rows.length - 1;
  }

  settle(row: number, outcome: WriteOutcome, ackMs: number | null): void {
    const r = this.rows[row]!;
    r.outcome = outcome;
    r.ackMs = outcome === 'ok' ? ackMs : null;
  }

  /** Every row, settled; a row still pending (the run ended with it in flight) counts as unknown. */
  entries(): T[] {
    return this.rows.map((r) => ({ ...r, outcome: r.outcome === 'pending' ? 'unknown' : r.outcome }) as T);
  }
}

export class FileLedger extends ClassLedger<FileLedgerEntry> {}
export class LogLedger extends ClassLedger<LogLedgerEntry> {}

export const FILES_TSV_HEADER = 'seq\tname\tsha256\tsent_ms\tack_ms\toutcome';
export const LOGS_TSV_HEADER = 'seq\ttoken\treplica\tsent_ms\tack_ms\toutcome';

const ms = (v: number | null) => (v === null ? '' : v.toFixed(3));

export function filesTsv(entries: readonly FileLedgerEntry[]): string {
  return (
    [FILES_TSV_HEADER, ...entries.map((e) => `${e.seq}\t${e.name}\t${e.sha256}\t${ms(e.sentMs)}\t${ms(e.ackMs)}\t${e.outcome}`)].join(
      '\n',
    ) + '\n'
  );
}

export function logsTsv(entries: readonly LogLedgerEntry[]): string {
  return (
    [LOGS_TSV_HEADER, ...entries.map((e) => `${e.seq}\t${e.token}\t${e.replica}\t${ms(e.sentMs)}\t${ms(e.ackMs)}\t${e.outcome}`)].join(
      '\n',
    ) + '\n'
  );
}

function parseRows(text: string, header: string, file: string, columns: number): string[][] {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines[0] !== header) throw new Error(`not a ${file} (expected the header "${header.replace(/\t/g, '\\t')}")`);
  return lines.slice(1).map((l, k) => {
    const f = l.split('\t');
    const outcome = f[columns - 1];
    if (f.length !== columns || (outcome !== 'ok' && outcome !== 'failed' && outcome !== 'unknown'))
      throw new Error(`${file} line ${k + 2}: expected ${columns} fields ending in ok/failed/unknown`);
    return f;
  });
}

export function parseFilesTsv(text: string): FileLedgerEntry[] {
  return parseRows(text, FILES_TSV_HEADER, 'files.tsv', 6).map(([seq, name, sha256, sent, ack, outcome]) => ({
    seq: Number(seq),
    name: name!,
    sha256: sha256!,
    sentMs: Number(sent),
    ackMs: ack === '' ? null : Number(ack),
    outcome: outcome as WriteOutcome,
  }));
}

export function parseLogsTsv(text: string): LogLedgerEntry[] {
  return parseRows(text, LOGS_TSV_HEADER, 'logs.tsv', 6).map(([seq, token, replica, sent, ack, outcome]) => ({
    seq: Number(seq),
    token: token!,
    replica: replica!,
    sentMs: Number(sent),
    ackMs: ack === '' ? null : Number(ack),
    outcome: outcome as WriteOutcome,
  }));
}
