import * as hdr from 'hdr-histogram-js';

/**
 * Latency histograms: HDR, 3 significant digits, values recorded in microseconds so sub-millisecond
 * loopback latencies keep their resolution. Everything outside this module speaks milliseconds.
 */
export type Histogram = hdr.Histogram;

export function createHistogram(): Histogram {
  return hdr.build({ bitBucketSize: 32, autoResize: true, lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
}

export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

/** Value at percentile p (0-100] in ms; null for an empty histogram. */
export function percentileMs(h: Histogram, p: number): number | null {
  if (h.totalCount === 0) return null;
  return h.getValueAtPercentile(p) / 1000;
}

export function maxMs(h: Histogram): number | null {
  return h.totalCount === 0 ? null : h.maxValue / 1000;
}

export function meanMs(h: Histogram): number | null {
  return h.totalCount === 0 ? null : h.mean / 1000;
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}
