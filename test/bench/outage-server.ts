/**
 * The ground-truth service of test/bench/outage-accuracy.ts, run as its own process (IPC channel
 * required): a trivial node:http server on 127.0.0.1 answering 200 with a small JSON body, which can
 * be paused like the lab's front (lib/lab/daemon/front.ts): the listener is closed and every open connection
 * destroyed, so new connections get ECONNREFUSED, then it listens again on the same port.
 *
 * Messages from the parent:
 *   { type: 'pause', id, ms }  -> { type: 'paused', id, closedAtEpochMs, reopenedAtEpochMs, closeSpanMs }
 *   { type: 'ping', id }       -> { type: 'pong', id, epochMs }
 * On start it sends { type: 'ready', port }. Times are epoch ms with sub-ms resolution
 * (performance.timeOrigin + performance.now(), as the lab's front takes them).
 * It exits when the parent disconnects or sends SIGTERM, so it cannot outlive the bench.
 */
import http from 'node:http';
import type { Socket } from 'node:net';

const epochNow = (): number => performance.timeOrigin + performance.now();

type Message = { type: 'pause'; id: number; ms: number } | { type: 'ping'; id: number };

if (!process.send) {
  console.error('outage-server.ts must be started with an IPC channel (by outage-accuracy.ts)');
  process.exit(2);
}
const send = (m: unknown): void => void process.send!(m);

const body = Buffer.from(JSON.stringify({ ok: true }));
const sockets = new Set<Socket>();
let port = 0;
let paused = false;

function createServer(): http.Server {
  const s = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  s.keepAliveTimeout = 65_000;
  s.on('connection', (c: Socket) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  return s;
}

let server = createServer();

/** Resolves with the instant of the 'listening' callback, which runs right after the listen() syscall. */
function listen(p: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, '127.0.0.1', () => {
      const t = epochNow();
      server.off('error', reject);
      const a = server.address();
      port = typeof a === 'object' && a ? a.port : p;
      resolve(t);
    });
  });
}

async function relisten(): Promise<number> {
  const deadline = performance.now() + 2000;
  for (;;) {
    try {
      return await listen(port);
    } catch (e) {
      // Someone may have bound the port for an instant while it was free: try again briefly.
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || performance.now() > deadline) throw e;
      server = createServer();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function pause(id: number, ms: number): Promise<void> {
  if (paused) return send({ type: 'error', id, error: 'already paused' });
  paused = true;
  try {
    const before = epochNow();
    server.close();
    // As lib/lab/daemon/front.ts: the listener is closed here, before the open connections are cut.
    const closedAtEpochMs = epochNow();
    for (const s of sockets) s.destroy();
    sockets.clear();
    const closeSpanMs = epochNow() - before;
    await new Promise((r) => setTimeout(r, ms));
    server = createServer();
    const reopenedAtEpochMs = await relisten();
    send({ type: 'paused', id, closedAtEpochMs, reopenedAtEpochMs, closeSpanMs });
  } catch (e) {
    send({ type: 'error', id, error: e instanceof Error ? e.message : String(e) });
  } finally {
    paused = false;
  }
}

process.on('message', (m: Message) => {
  if (m.type === 'ping') send({ type: 'pong', id: m.id, epochMs: epochNow() });
  else if (m.type === 'pause') void pause(m.id, m.ms);
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

await listen(0);
send({ type: 'ready', port });
