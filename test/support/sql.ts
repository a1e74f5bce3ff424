import pg from 'pg';

/**
 * One statement as the superuser on a loopback PostgreSQL, on a connection of its own: what a test reads back
 * is what a new client sees, never a session the code under test left behind.
 */
export async function sqlRows<T extends pg.QueryResultRow = Record<string, unknown>>(
  port: number,
  sql: string,
  params: unknown[] = [],
  database = 'orders',
): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}
