/**
 * The lab's global front, its own detached process, belonging to neither region so it outlives the loss of
 * either: `node --import tsx/esm lib/lab/daemon/global-front.ts --lab DIR --port N --region R [--upstream P]`,
 * started by labUp on a two-region lab. The load connects to `--port` (the same for the life of the lab); a
 * loopback control API (GET /state, PUT /active) switches it. Its state is in regionPaths(DIR).globalFront.
 */
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { type GlobalFrontState, type RegionName, regionPaths } from '../regions/contract.ts';
import { GlobalProxy } from './global-proxy.ts';
import { HttpError, readJsonBody, sendJson } from './http-json.ts';

const { values } = parseArgs({
  options: {
    lab: { type: 'string' },
    port: { type: 'string' },
    region: { type: 'string' },
    upstream: { type: 'string' },
    // A front started again after it died keeps saying when the load last moved to its region.
    'switched-at': { type: 'string' },
  },
});
if (!values.lab || !values.port) throw new Error('--lab DIR and --port N are required');
const region = parseRegion(values.region ?? 'primary');
const file = regionPaths(values.lab).globalFront;
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} global-front ${line}\n`);

function parseRegion(v: unknown): RegionName {
  if (v !== 'primary' && v !== 'secondary') throw new HttpError(400, '`region` must be primary or secondary');
  return v;
}

const proxy = new GlobalProxy(region, values.upstream ? Number(values.upstream) : null, log);
await proxy.listen(Number(values.port));
let switchedAt: string | null = values['switched-at'] ?? null;
let controlPort = 0;
let stopping = false;

function persist(): GlobalFrontState {
  const a = proxy.active;
  const state: GlobalFrontState = {
    pid: process.pid,
    port: proxy.port,
    controlPort,
    active: a.region,
    upstreamPort: a.upstreamPort,
    switchedAt,
    updatedAt: new Date().toISOString(),
  };
  // Written before the switch is acknowledged: a harness killed right after still finds where the load goes.
  if (!stopping) writeJsonAtomic(file, state);
  return state;
}

const control = http.createServer((req, res) => {
  void (async () => {
    const key = `${req.method} ${new URL(req.url ?? '/', 'http://control').pathname}`;
    if (key === 'GET /state') return sendJson(res, 200, persist());
    if (key === 'PUT /active') {
      const body = (await readJsonBody(req)) as { region?: unknown; upstreamPort?: unknown };
      const to = parseRegion(body.region);
      const port = body.upstreamPort;
      if (port !== null && !(typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536))
        throw new HttpError(400, '`upstreamPort` must be a port number or null');
      const r = proxy.switchTo(to, port);
      switchedAt = r.switchedAt;
      return sendJson(res, 200, { ...persist(), ...r });
    }
    throw new HttpError(404, `no route ${key}`);
  })().catch((e) => {
    if (!res.headersSent) sendJson(res, e instanceof HttpError ? e.status : 500, { error: (e as Error).message });
  });
});
await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
controlPort = (control.address() as AddressInfo).port;
persist();
log(`up: port ${proxy.port}, control ${controlPort}, active ${region} (upstream ${values.upstream ?? 'none'})`);
if (process.send) process.send({ type: 'ready', port: proxy.port, controlPort }, () => process.disconnect?.());

async function shutdown(sig: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${sig}: stopping`);
  await Promise.allSettled([proxy.close(), new Promise((r) => control.close(r))]);
  await rm(file, { force: true });
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGHUP', () => log('SIGHUP ignored'));
