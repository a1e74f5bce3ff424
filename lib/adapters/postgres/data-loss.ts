/**
 * The destructive changes of a data-loss drill, as a bad migration or a runbook mistake makes them: through the
 * service's own endpoint, on whatever primary it points at. Nothing here undoes them: only a restore from Blob does.
 */
import pg from 'pg';

export type DataChange = 'drop-table' | 'delete-rows';

export interface ChangeOutcome {
  /** Rows the table held just before the change (read in the same transaction). */
  rowsBefore: number;
  /** The statement as it ran. */
  statement: string;
}

/** DROP TABLE, or DELETE without WHERE, in one transaction that also counts what was there; waits at most 10 s for the lock. */
export async function destroyData(conn: pg.ClientConfig, change: DataChange, table: string, signal: AbortSignal): Promise<ChangeOutcome> {
  const client = new pg.Client({ ...conn, connectionTimeoutMillis: 5000, application_name: 'drill-data-loss' });
  signal.throwIfAborted();
  await client.connect();
  try {
    const t = client.escapeIdentifier(table);
    const statement = change === 'drop-table' ? `DROP TABLE ${t}` : `DELETE FROM ${t}`;
    await client.query('BEGIN');
    // Under load the writers hold row locks: a DROP waits for them, never for long.
    await client.query("SET LOCAL lock_timeout = '10s'");
    const before = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
    await client.query(statement);
    await client.query('COMMIT');
    return { rowsBefore: Number(before.rows[0]!.n), statement };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    await client.end().catch(() => undefined);
  }
}
