/**
 * What a test sees for itself while a database failover runs, to check a provider's `writableAt` against
 * instants the provider did not produce: when each candidate was last seen still in recovery (it cannot have
 * taken a write before then), and when the test's own first write through the stable address committed (the
 * provider, which commits through the same address right after its repoint, cannot be much later).
 *
 * The recovery watch starts at once (await `ready` before the kill, so each candidate is seen in recovery);
 * call `startWriting()` only after the old primary is dead, or the writer commits on it.
 */
import pg from 'pg';

export interface PgAddress {
  host: string;
  port: number;
}

export interface FailoverSighting {
  /** Per candidate port: when the last query that still answered `pg_is_in_recovery() = true` was sent. */
  lastInRecoverySentMs: Map<number, number>;
  /** When the test's first `txid_current()` (a real transaction id, which a standby refuses) through `writeTo` returned. */
  firstWriteMs: number | null;
  /** The writer's last error, for the message when it never got through. */
  lastWriteError: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function watchFailover(o: {
  candidates: PgAddress[];
  /** Where the application writes: the stable endpoint, or the new primary where there is none. */
  writeTo: PgAddress;
  user?: string;
  database: string;
  /** The clock to compare with: the provider's (Date.now for ISO instants taken with new Date(), or timeOrigin + performance.now()). */
  now?: () => number;
}): { ready: Promise<void>; startWriting(): void; stop(timeoutMs?: number): Promise<FailoverSighting> } {
  const now = o.now ?? Date.now;
  const user = o.user ?? 'postgres';
  const seen: FailoverSighting = { lastInRecoverySentMs: new Map(), firstWriteMs: null, lastWriteError: 'no attempt yet' };
  let stopping = false;
  const firstAnswer = new Map<number, () => void>();
  // At most 10 s: a candidate that never answers is reported by the test's own check of what was seen.
  const ready = Promise.race([
    Promise.all(o.candidates.map((c) => new Promise<void>((resolve) => firstAnswer.set(c.port, resolve)))).then(() => undefined),
    new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref()),
  ]);

  const watchRecovery = async (c: PgAddress) => {
    while (!stopping) {
      const client = new pg.Client({ ...c, user, database: o.database, connectionTimeoutMillis: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        while (!stopping) {
          const sent = now();
          const r = await client.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
          firstAnswer.get(c.port)!();
          if (!r.rows[0]!.rec) return; // promoted: every later answer is false too
          seen.lastInRecoverySentMs.set(c.port, sent);
          await sleep(10);
        }
      } catch {
        await sleep(20); // not up, or restarted by Patroni: connect again
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };

  const write = async () => {
    while (seen.firstWriteMs === null) {
      const client = new pg.Client({ ...o.writeTo, user, database: o.database, connectionTimeoutMillis: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query("SET statement_timeout = '1s'");
        await client.query('SELECT txid_current()');
        seen.firstWriteMs = now();
      } catch (e) {
        seen.lastWriteError = (e as Error).message;
        if (stopping) return;
        await sleep(10);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };

  const watchers = o.candidates.map(watchRecovery);
  let writer: Promise<void> = Promise.resolve();
  return {
    ready,
    startWriting() {
      writer = write();
    },
    /** Stops the recovery watchers; the writer keeps trying (up to timeoutMs) until one write went through. */
    async stop(timeoutMs = 10_000) {
      const deadline = now() + timeoutMs;
      while (seen.firstWriteMs === null && now() < deadline) await sleep(10);
      stopping = true;
      await Promise.all([...watchers, writer]);
      return seen;
    },
  };
}
