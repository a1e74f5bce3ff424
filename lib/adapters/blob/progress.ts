/**
 * A one-line transfer status for a TTY: `label  123.4/512.0 MB  68.2 MB/s  ETA 6s`.
 * MB are decimal (10^6 bytes), like the benchmark tables. The rate is taken over the last few
 * seconds, so the ETA follows a transfer that speeds up or stalls instead of its lifetime average.
 */

export interface TransferProgressOptions {
  label: string;
  /** Unknown totals (a stream of unknown length) show bytes and rate, no ETA. */
  totalBytes?: number;
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
  /** Span of the rate estimate. Default 5000 ms. */
  windowMs?: number;
}

export interface TransferProgress {
  /** Record the cumulative byte count (not a delta). */
  update(bytes: number): void;
  line(): string;
  readonly bytes: number;
}

const MB = 1_000_000;

export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function transferProgress(options: TransferProgressOptions): TransferProgress {
  const now = options.now ?? (() => performance.now());
  const windowMs = options.windowMs ?? 5000;
  const samples: Array<{ t: number; bytes: number }> = [{ t: now(), bytes: 0 }];
  let bytes = 0;

  const rate = (): number | undefined => {
    const t = now();
    // Base the rate on the newest sample at or before the window start: a stalled transfer then
    // shows 0 MB/s instead of its lifetime average.
    while (samples.length > 1 && (samples[1]?.t ?? t) <= t - windowMs) samples.shift();
    const first = samples[0];
    if (!first || t - first.t <= 0) return undefined;
    return ((bytes - first.bytes) / (t - first.t)) * 1000;
  };

  return {
    get bytes() {
      return bytes;
    },
    update(b: number) {
      bytes = b;
      samples.push({ t: now(), bytes: b });
    },
    line() {
      const total = options.totalBytes;
      const amount = total === undefined ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / MB).toFixed(1)}/${(total / MB).toFixed(1)} MB`;
      const r = rate();
      const speed = r === undefined ? '-- MB/s' : `${(r / MB).toFixed(1)} MB/s`;
      let eta = '';
      if (total !== undefined) {
        if (bytes >= total) eta = '  ETA 0s';
        else eta = r === undefined || r <= 0 ? '  ETA --' : `  ETA ${formatEta((total - bytes) / r)}`;
      }
      return `${options.label}  ${amount}  ${speed}${eta}`;
    },
  };
}
