/**
 * A loopback HTTP server in its own process, for load tests whose assertion is about the generator's timing
 * (test/integration/load-rate.test.ts): in the test's own process the server's handlers would share the
 * generator's event loop, and a send-lag bound would measure how busy that loop was, not when the generator
 * sent. Started by startArrivalServer() in load-servers.ts with an IPC channel, as test/bench/outage-server.ts.
 *
 * It answers every request 200 "ok" and stamps the arrival of each request's JSON `seq` field (taken when the
 * body has been read) as epoch ms with sub-ms resolution (performance.timeOrigin + performance.now()).
 * Messages from the parent:
 *   { type: 'ping', id }  -> { type: 'pong', id, epochMs }
 *   { type: 'dump', id }  -> { type: 'arrivals', id, arrivals: [seq, epochMs][], loopMaxMs }
 * loopMaxMs is the longest event-loop stall this process measured on itself (monitorEventLoopDelay).
 * On start it sends { type: 'ready', port }. It exits when the parent disconnects or sends SIGTERM.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const epochNow = (): number => performance.timeOrigin + performance.now();

if (!process.send) {
  console.error('arrival-server.ts must be started with an IPC channel (by startArrivalServer in load-servers.ts)');
  process.exit(2);
}
const send = (m: unknown): void => void process.send!(m);

const arrivals: Array<[number, number]> = [];
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => {
    const at = epochNow();
    const seq = Number((JSON.parse(body || '{}') as { seq?: string }).seq);
    if (Number.isFinite(seq)) arrivals.push([seq, at]);
    res.end('ok');
  });
});
server.keepAliveTimeout = 65_000;

process.on('message', (m: { type: string; id: number }) => {
  if (m.type === 'ping') send({ type: 'pong', id: m.id, epochMs: epochNow() });
  else if (m.type === 'dump') send({ type: 'arrivals', id: m.id, arrivals, loopMaxMs: loopDelay.max / 1e6 });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => send({ type: 'ready', port: (server.address() as AddressInfo).port }));
