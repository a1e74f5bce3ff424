/** Minimal JSON over HTTP for the lab's control API, on both sides. No pooling: calls are rare and short. */
import http from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function requestJson<T>(
  url: string,
  options: { method?: string; body?: unknown; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const req = http.request(url, {
      method: options.method ?? 'GET',
      agent: false,
      timeout: options.timeoutMs ?? 5000,
      signal: options.signal,
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no answer within ${options.timeoutMs ?? 5000} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text === '' ? null : JSON.parse(text);
        } catch {
          return reject(new HttpError(res.statusCode ?? 0, `${url}: not JSON: ${text.slice(0, 200)}`));
        }
        if ((res.statusCode ?? 0) >= 400) {
          return reject(
            new HttpError(res.statusCode ?? 0, (parsed as { error?: string } | null)?.error ?? `${url}: HTTP ${res.statusCode}`),
          );
        }
        resolve(parsed as T);
      });
    });
    req.end(payload);
  });
}

export async function readJsonBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpError(413, 'body too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
