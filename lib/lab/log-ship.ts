/**
 * The lab's log shipping (the logs data class): each replica appends one JSON line per request to
 * `service-logs/<replica>.jsonl`; the shipper (daemon/log-shipper.ts) uploads what was appended since its
 * last pass as one segment blob per replica every `logShipInterval`, as a log agent (Fluent Bit, the Azure
 * Monitor agent) does. A line not yet shipped when the region goes is lost: that is the logs RPO.
 */

/** What a lab ships by default: well inside the logs class's 24 h target, short enough to see in a drill. */
export const DEFAULT_LOG_SHIP_INTERVAL_MS = 60_000;

/** Where a replica rotates its request log (lab.json `logRotateBytes`): a shipped, closed file is then deleted. */
export const DEFAULT_LOG_ROTATE_BYTES = 8 * 1024 * 1024;

/**
 * Blob name of the segment of `replica`'s log starting at byte `offset` of its generation `gen`: sorted by
 * name is sorted by generation, then offset (generation 0 keeps the names it had before rotation existed).
 */
export function segmentBlobName(replica: string, offset: number, gen = 0): string {
  const at = String(offset).padStart(14, '0');
  return gen === 0 ? `${replica}/${at}.jsonl` : `${replica}/g${String(gen).padStart(6, '0')}-${at}.jsonl`;
}

/**
 * A replica's request-log file: generation 0 is `<replica>.jsonl`, each rotation starts `<replica>~<gen>.jsonl`.
 * The replica writes only its newest generation: once a newer one exists, an older file never grows again.
 */
export function logFileName(replica: string, gen: number): string {
  return gen === 0 ? `${replica}.jsonl` : `${replica}~${gen}.jsonl`;
}

export function parseLogFileName(file: string): { replica: string; gen: number } | null {
  const m = /^(.+?)(?:~(\d+))?\.jsonl$/.exec(file);
  return m ? { replica: m[1]!, gen: m[2] === undefined ? 0 : Number(m[2]) } : null;
}

/** The newest generation among `files` of `replica` (the one it writes), or -1 when it has none. */
export function newestGeneration(files: readonly string[], replica: string): number {
  let newest = -1;
  for (const f of files) {
    const p = parseLogFileName(f);
    if (p && p.replica === replica && p.gen > newest) newest = p.gen;
  }
  return newest;
}

/**
 * The request-log files no replica writes any more: an older generation of a replica that has a newer one.
 * Taken from one directory listing before any file is read, so a file counted closed had its last write
 * before the listing; once its complete lines are shipped it may be deleted without losing a line.
 */
export function closedLogFiles(files: readonly string[]): Set<string> {
  const newest = new Map<string, number>();
  for (const f of files) {
    const p = parseLogFileName(f);
    if (p) newest.set(p.replica, Math.max(newest.get(p.replica) ?? -1, p.gen));
  }
  const out = new Set<string>();
  for (const f of files) {
    const p = parseLogFileName(f);
    if (p && p.gen < newest.get(p.replica)!) out.add(f);
  }
  return out;
}

/** Bytes of `chunk` up to and including its last newline: a line still being written waits for the next pass. */
export function completeLinesLength(chunk: Buffer): number {
  return chunk.lastIndexOf(0x0a) + 1;
}

/** One request-log line as the service writes it (service.ts). */
export interface RequestLogLine {
  ts: string;
  replica: string;
  method: string;
  path: string;
  status: number;
  token: string | null;
  ms: number;
}

/**
 * The lines of shipped segments, read back after recovery: every token found, and per replica the number
 * of lines and the newest line's time. A line that does not parse is counted, not guessed at.
 */
export function readSegments(segments: Iterable<{ name: string; text: string }>): {
  tokens: Set<string>;
  replicas: Map<string, { lines: number; newestTs: string | null }>;
  unreadable: number;
} {
  const tokens = new Set<string>();
  const replicas = new Map<string, { lines: number; newestTs: string | null }>();
  let unreadable = 0;
  for (const s of segments) {
    for (const raw of s.text.split('\n')) {
      if (raw === '') continue;
      let line: RequestLogLine;
      try {
        line = JSON.parse(raw) as RequestLogLine;
      } catch {
        unreadable++;
        continue;
      }
      if (typeof line.token === 'string') tokens.add(line.token);
      const r = replicas.get(line.replica) ?? { lines: 0, newestTs: null };
      r.lines++;
      if (r.newestTs === null || line.ts > r.newestTs) r.newestTs = line.ts;
      replicas.set(line.replica, r);
    }
  }
  return { tokens, replicas, unreadable };
}
