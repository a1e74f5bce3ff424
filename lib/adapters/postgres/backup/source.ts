/**
 * The database a backup is taken from, named by a URL without a password. The password comes from
 * PGPASSWORD (or ~/.pgpass) and reaches the PostgreSQL tools through their environment, never argv,
 * so it cannot show in the process list or a log.
 */
import { UserError } from '../../../errors.ts';

export interface PgSource {
  host: string;
  port: number;
  user: string;
  database: string;
}

export function parseSourceUrl(text: string): PgSource {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UserError(`"${text}" is not a PostgreSQL URL`, {
      untouched: 'nothing: no backup was started',
      next: 'name the database like postgres://user@host:5432/dbname',
    });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new UserError(`expected a postgres:// URL, got ${u.protocol}//`, {
      untouched: 'nothing: no backup was started',
      next: 'name the database like postgres://user@host:5432/dbname',
    });
  }
  if (u.password) {
    throw new UserError('the database URL carries a password', {
      untouched: 'nothing: no backup was started',
      next: 'remove it from the URL (it would show in the process list and shell history) and set PGPASSWORD instead',
    });
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database)
    throw new UserError('the database URL names no database', {
      untouched: 'nothing: no backup was started',
      next: 'add it as the path: postgres://user@host:5432/dbname',
    });
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    database,
  };
}

export function describeSource(s: PgSource): string {
  return `postgres://${s.user}@${s.host}:${s.port}/${s.database}`;
}

/** libpq options for the client tools: who and where, nothing secret. */
export function libpqArgs(s: PgSource, database = s.database): string[] {
  return ['-h', s.host, '-p', String(s.port), '-U', s.user, '-d', database];
}
