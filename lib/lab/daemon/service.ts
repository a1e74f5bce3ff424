/**
 * One replica of the lab's orders service, run as its own process by the lab supervisor:
 * `node --import tsx/esm lib/lab/service.ts --lab DIR --name NAME --db-port PORT`.
 * It talks to PostgreSQL only through the lab's DB endpoint, so a failover repoints every replica at once.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { ContainerClient } from '../../adapters/blob/index.ts';
import { LAB_FILES_CONTAINER, labAzuriteStatus } from '../azurite.ts';
import { DEFAULT_LOG_ROTATE_BYTES, logFileName, newestGeneration } from '../log-ship.ts';
import { labPaths } from '../paths.ts';
import type { LabConfig } from '../types.ts';
import { ensureSchema, insertOrder, ordersByToken, parseNewOrder, recentOrders } from './orders-db.ts';

const { values: args } = parseArgs({
  options: {
    // Also puts the lab dir in /proc/PID/cmdline, which is how `lab down` knows this PID is the lab's.
    lab: { type: 'string' },
    name: { type: 'string', default: `orders-${process.pid}` },
    port: { type: 'string', default: '0' },
    'db-host': { type: 'string', default: '127.0.0.1' },
    'db-port': { type: 'string' },
    'db-user': { type: 'string', default: 'drill' },
    'db-name': { type: 'string', default: 'orders' },
  },
});
if (!args['db-port']) throw new Error('--db-port is required');
const name = args.name!;
const READY_BUDGET_MS = 500;

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${name} ${line}\n`);
}

/**
 * The request log, one JSON line per request with the token it carried: the logs data class. Written with
 * a plain write(2) before the answer goes out, so every acknowledged request has its line in the file
 * (the kernel's page cache survives this process being killed); whether it reaches Blob is the shipper's part.
 * Past lab.json's logRotateBytes the replica goes on in its file's next generation (log-ship.ts), and the
 * shipper deletes the old one once it has shipped it: the log on disk stays bounded, no line unshipped is lost.
 */
const requestLog: { fd: number; gen: number; bytes: number; dir: string; rotateBytes: number } | null = (() => {
  if (!args.lab) return null;
  const paths = labPaths(args.lab);
  const dir = paths.serviceLogs.dir;
  mkdirSync(dir, { recursive: true });
  let rotateBytes = DEFAULT_LOG_ROTATE_BYTES;
  try {
    const configured = (JSON.parse(readFileSync(paths.config, 'utf8')) as LabConfig).logRotateBytes;
    if (typeof configured === 'number' && configured > 0) rotateBytes = configured;
  } catch {
    // No lab.json (a replica run by hand): the default.
  }
  // A name used again (a replica restarted under it) goes on in its newest generation.
  const gen = Math.max(0, newestGeneration(readdirSync(dir), name));
  const fd = openSync(join(dir, logFileName(name, gen)), 'a+');
  const bytes = fstatSync(fd).size;
  // A line torn by the kill of an earlier process of this name must not swallow the first line of this one.
  const last = Buffer.alloc(1);
  if (bytes > 0 && readSync(fd, last, 0, 1, bytes - 1) === 1 && last[0] !== 0x0a) writeSync(fd, '\n');
  return { fd, gen, bytes, dir, rotateBytes };
})();

function writeRequestLine(text: string): void {
  if (!requestLog) return;
  writeSync(requestLog.fd, text);
  requestLog.bytes += Buffer.byteLength(text);
  if (requestLog.bytes < requestLog.rotateBytes) return;
  // The next generation exists before the old file is left: once the shipper sees it, the old file is final.
  const next = openSync(join(requestLog.dir, logFileName(name, requestLog.gen + 1)), 'a');
  closeSync(requestLog.fd);
  Object.assign(requestLog, { fd: next, gen: requestLog.gen + 1, bytes: 0 });
}

interface RequestContext {
  method: string;
  path: string;
  token: string | null;
  t0: number;
}
const contexts = new WeakMap<http.ServerResponse, RequestContext>();

function logRequest(ctx: RequestContext, status: number): void {
  if (requestLog === null || ctx.path.startsWith('/health/')) return;
  const line = {
    ts: new Date().toISOString(),
    replica: name,
    method: ctx.method,
    path: ctx.path,
    status,
    token: ctx.token,
    ms: Math.round(performance.now() - ctx.t0),
  };
  try {
    writeRequestLine(`${JSON.stringify(line)}\n`);
  } catch (e) {
    log(`request log write failed: ${(e as Error).message}`);
  }
}

/**
 * The attachments container in the lab's Azurite, found through azurite.json in the lab dir: this process
 * gets no credential in its environment (Azurite's development key is public and built in). The storage SDK
 * is loaded on the first attachment, so a lab whose load sends none starts its replicas as fast as before.
 */
let filesContainer: Promise<ContainerClient> | null = null;
function attachments(): Promise<ContainerClient> {
  filesContainer ??= (async () => {
    if (!args.lab) throw new Error("no --lab dir: attachments are stored in the lab's Azurite");
    const a = await labAzuriteStatus(args.lab);
    if (!a.up || !a.azurite) throw new Error(`the lab's Azurite is not answering (${labPaths(args.lab).dir}/azurite.json)`);
    const { blobServiceFromEnv } = await import('../../adapters/blob/index.ts');
    const c = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: a.azurite.connectionString }).getContainerClient(LAB_FILES_CONTAINER);
    await c.createIfNotExists();
    return c;
  })().catch((e) => {
    filesContainer = null;
    throw e;
  });
  return filesContainer;
}

/** Blob name of an order's attachment; the read-back after recovery looks files up by it. */
const attachmentBlob = (id: string) => `orders/${id}/attachment`;
const ATTACHMENT_ID = /^[A-Za-z0-9-]{1,64}$/;

const dbConfig = { host: args['db-host'], port: Number(args['db-port']), user: args['db-user'], database: args['db-name'] };
const pool = new pg.Pool({
  ...dbConfig,
  max: 10,
  connectionTimeoutMillis: 1000,
  // Warm connections stay, as a production pool's minimum-idle ones do. Reaped after 10 s idle, the pool
  // shrank to the 2-3 that 70 req/s keep busy; the next hiccup then needed new backends on every replica
  // at once, and the wait for them put 300-700 ms stalls into fault-free baselines (CI: p95 698 ms).
  idleTimeoutMillis: 0,
  // A query on a connection whose server vanished without a FIN would otherwise wait for TCP to notice.
  query_timeout: 5000,
  application_name: name,
});
// An idle client whose connection the endpoint closed emits here; the pool drops it and the next query
// opens a fresh connection: that is the reconnect.
pool.on('error', (e) => log(`idle db connection dropped: ${e.message}`));

let schemaReady = false;
let stopping = false;
let schemaAttempt: Promise<void> | null = null;

function ensureSchemaOnce(): Promise<void> {
  schemaAttempt ??= ensureSchema(pool)
    .then(() => {
      if (!schemaReady) log('schema ready');
      schemaReady = true;
    })
    .finally(() => {
      schemaAttempt = null;
    });
  return schemaAttempt;
}

/**
 * The table is created once, at start. A table that disappears later (a DROP TABLE by a bad migration, a
 * data-loss drill) stays gone: recreating it empty would hide the loss behind a service that answers wrongly.
 */
async function withSchema<T>(op: () => Promise<T>): Promise<T> {
  if (!schemaReady) await ensureSchemaOnce();
  return op();
}

let dbCheck: Promise<boolean> | null = null;
let healthClient: pg.Client | null = null;

/**
 * Probes use a connection of their own, not the pool: with the pool busy under load a probe would queue
 * behind requests, miss its 500 ms and take a healthy replica out of rotation.
 */
async function pingDb(): Promise<void> {
  if (!healthClient) {
    const c = new pg.Client({ ...dbConfig, connectionTimeoutMillis: READY_BUDGET_MS, application_name: `${name}-health` });
    c.on('error', () => {
      if (healthClient === c) healthClient = null;
    });
    await c.connect();
    healthClient = c;
  }
  try {
    await healthClient.query('SELECT 1');
  } catch (e) {
    const dead = healthClient;
    healthClient = null;
    await dead?.end().catch(() => {});
    throw e;
  }
}

/** Ready = the DB answers `SELECT 1` within 500 ms. Concurrent probes share one query so a slow DB is not piled on. */
async function dbReady(): Promise<boolean> {
  dbCheck ??= (async () => {
    try {
      if (!schemaReady) await ensureSchemaOnce();
      await pingDb();
      return true;
    } catch {
      return false;
    } finally {
      dbCheck = null;
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), READY_BUDGET_MS)));
  try {
    return await Promise.race([dbCheck, budget]);
  } finally {
    clearTimeout(timer);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-drill-replica': name,
  };
  // While draining, a keep-alive connection would otherwise idle on for keepAliveTimeout and hold up the exit.
  if (stopping) headers.connection = 'close';
  const ctx = contexts.get(res);
  if (ctx) logRequest(ctx, status);
  res.writeHead(status, headers);
  res.end(text);
}

function readRaw(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) reject(Object.assign(new Error('body too large'), { status: 413 }));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function handleAttachment(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
  if (!ATTACHMENT_ID.test(id)) return send(res, 400, { error: 'an attachment id is 1-64 letters, digits or dashes' });
  if (req.method === 'PUT') {
    let body: Buffer;
    try {
      body = await readRaw(req, 1024 * 1024);
    } catch (e) {
      return send(res, (e as { status?: number }).status ?? 400, { error: `body: ${(e as Error).message}` });
    }
    const sha256 = createHash('sha256').update(body).digest('hex');
    try {
      const c = await attachments();
      await c.getBlockBlobClient(attachmentBlob(id)).uploadData(body, { metadata: { sha256 } });
    } catch (e) {
      return send(res, 503, { error: `file storage unavailable: ${(e as Error).message}` });
    }
    return send(res, 201, { id, blob: attachmentBlob(id), bytes: body.length, sha256 });
  }
  if (req.method === 'GET') {
    try {
      const c = await attachments();
      const content = await c.getBlockBlobClient(attachmentBlob(id)).downloadToBuffer();
      return send(res, 200, {
        id,
        bytes: content.length,
        sha256: createHash('sha256').update(content).digest('hex'),
        content: content.toString('utf8'),
      });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return send(res, 404, { error: `order ${id} has no attachment` });
      return send(res, 503, { error: `file storage unavailable: ${(e as Error).message}` });
    }
  }
  return send(res, 405, { error: `no route ${req.method} /orders/${id}/attachment` });
}

function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) reject(Object.assign(new Error('body too large'), { status: 413 }));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function dbFailure(res: http.ServerResponse, e: unknown): void {
  const code = (e as { code?: string }).code;
  if (code === '23505') send(res, 409, { error: 'an order with this token exists' });
  else send(res, 503, { error: `database unavailable: ${(e as Error).message}`, code: code ?? null });
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://service');
  const attachment = /^\/orders\/([^/]+)\/attachment$/.exec(url.pathname);
  // The load's token: in a header, the query, an attachment's path, or (below) the order's body.
  const headerToken = req.headers['x-drill-token'];
  const ctx: RequestContext = {
    method: req.method ?? 'GET',
    path: url.pathname,
    token: (typeof headerToken === 'string' ? headerToken : null) ?? url.searchParams.get('token') ?? attachment?.[1] ?? null,
    t0: performance.now(),
  };
  contexts.set(res, ctx);
  if (attachment) return handleAttachment(req, res, decodeURIComponent(attachment[1]!));
  if (url.pathname === '/health/live') return send(res, 200, { status: 'live', name });
  if (url.pathname === '/health/ready') {
    const ok = !stopping && (await dbReady());
    return send(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', name });
  }
  if (url.pathname === '/orders' && req.method === 'GET') {
    const token = url.searchParams.get('token');
    if (token !== null) {
      // A user asking for their own order: what a data-loss drill checks to tell a restored service from a wrong one.
      try {
        return send(res, 200, await withSchema(() => ordersByToken(pool, token)));
      } catch (e) {
        return dbFailure(res, e);
      }
    }
    const limit = Number(url.searchParams.get('limit') ?? '20');
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return send(res, 400, { error: '`limit` must be an integer 1-1000' });
    try {
      return send(res, 200, await withSchema(() => recentOrders(pool, limit)));
    } catch (e) {
      return dbFailure(res, e);
    }
  }
  if (url.pathname === '/orders' && req.method === 'POST') {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (e) {
      return send(res, (e as { status?: number }).status ?? 400, { error: `body: ${(e as Error).message}` });
    }
    const order = parseNewOrder(body);
    if (typeof order === 'string') return send(res, 400, { error: order });
    ctx.token ??= order.token ?? null;
    try {
      return send(res, 201, await withSchema(() => insertOrder(pool, order)));
    } catch (e) {
      return dbFailure(res, e);
    }
  }
  send(res, url.pathname === '/orders' ? 405 : 404, { error: `no route ${req.method} ${url.pathname}` });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    log(`handler failed: ${(e as Error).stack}`);
    if (!res.headersSent) send(res, 500, { error: 'internal error' });
    else res.destroy();
  });
});
// Longer than the front's pooled sockets live, so the front never reuses a socket this side is closing.
server.keepAliveTimeout = 30_000;

server.listen(Number(args.port), '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  log(`listening on 127.0.0.1:${port}, db endpoint ${args['db-host']}:${args['db-port']}`);
  if (process.send) {
    // The port goes to the supervisor once; the channel is then closed so this replica outlives a dead supervisor
    // the way a pod outlives a crashed kubelet (lab down cleans it up by PID).
    process.send({ type: 'listening', port }, () => process.disconnect?.());
  }
  ensureSchemaOnce().catch((e) => log(`schema not ready yet: ${(e as Error).message}`));
});

function shutdown(sig: string): void {
  if (stopping) return;
  stopping = true;
  log(`${sig}: draining`);
  server.close();
  // Connections busy at SIGTERM go idle later; close them as they do. Exit on our own before the
  // supervisor's 3 s SIGKILL if something still hangs.
  setInterval(() => server.closeIdleConnections(), 50).unref();
  setTimeout(() => process.exit(0), 2500).unref();
  server.on('close', () => {
    void healthClient?.end().catch(() => {});
    pool.end().finally(() => process.exit(0));
  });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
