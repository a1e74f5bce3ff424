/**
 * The lab's log shipping (the logs data class): each replica appends one JSON line per request to
 * `service-logs/<replica>.jsonl`; the shipper (daemon/log-shipper.ts) uploads what was appended since its
 * last pass as one segment blob per replica every `logShipInterval`, as a log agent (Fluent Bit, the Azure
 * Monitor agent) does. A line not yet shipped when the region goes is lost: that is the logs RPO.
 */

/** What a lab ships by default: well inside the logs class's 24 h target, short enough to see in a drill. */
export const DEFAULT_LOG_SHIP_INTERVAL_MS = 60_000;

/** Blob name of the segment of `replica`'s log starting at byte `offset`: sorted by name is sorted by offset. */
export function segmentBlobName(replica: string, offset: number): string {
  return `${replica}/${String(offset).padStart(14, '0')}.jsonl`;
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
