/**
 * The lab's ReplicaSet: keeps `desired` orders-service processes running, replaces one that dies at once
 * (new name, as a ReplicaSet makes a new pod), and tracks readiness by polling /health/ready every 100 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ReplicaView } from '../types.ts';

export const OWNER = 'orders';
export const TEMPLATE_LABELS: Readonly<Record<string, string>> = { app: 'orders', tier: 'web' };
const PROBE_EVERY_MS = 100;
const PROBE_TIMEOUT_MS = 800;
/** Two failed probes in a row take a replica out of rotation: one slow probe under load is not an outage. */
const FAILURE_THRESHOLD = 2;

export interface SupervisorOptions {
  labDir: string;
  dbPort: number;
  desired: number;
  /** Node arguments that run the service entry (`--import <tsx> .../service.ts`). */
  serviceArgv: string[];
  env: NodeJS.ProcessEnv;
  /** File descriptor the replicas' stdout/stderr go to. */
  logFd: number;
  log: (line: string) => void;
  /** How replica names start; default `orders`. The secondary region's are `orders-secondary-…`, told apart in its logs. */
  namePrefix?: string;
}

interface Member {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number | null;
  ready: boolean;
  terminating: boolean;
  failures: number;
  startedAt: string;
  /** First time its readiness probe passed: how long a replacement took to serve. */
  readyAt?: string;
  startedMs: number;
  probeTimer?: NodeJS.Timeout;
}

export class Supervisor extends EventEmitter {
  desired: number;
  private readonly members = new Map<string, Member>();
  private readonly generation = randomBytes(2).toString('hex');
  private counter = 0;
  private crashStreak = 0;
  private stopping = false;
  private respawnTimer?: NodeJS.Timeout;
  private readonly probeAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.desired = opts.desired;
  }

  start(): void {
    this.reconcile();
  }

  /** Replicas the front may send to: ready, listening, not on their way out. */
  inRotation(): { name: string; port: number }[] {
    const out: { name: string; port: number }[] = [];
    for (const m of this.members.values()) if (m.ready && !m.terminating && m.port !== null) out.push({ name: m.name, port: m.port });
    return out;
  }

  list(): ReplicaView[] {
    return [...this.members.values()].map((m) => ({
      name: m.name,
      labels: { ...TEMPLATE_LABELS },
      pid: m.pid,
      port: m.port,
      ready: m.ready && !m.terminating,
      startedAt: m.startedAt,
      ...(m.readyAt ? { readyAt: m.readyAt } : {}),
      owner: OWNER,
    }));
  }

  /** The front saw a connection refused: out of rotation now, the probe puts it back if it recovers. */
  markUnready(name: string, why: string): void {
    const m = this.members.get(name);
    if (!m || !m.ready) return;
    m.ready = false;
    m.failures = FAILURE_THRESHOLD;
    this.note(`${name} out of rotation: ${why}`);
  }

  /** `resetBackoff` is the rollback's "start what is missing now", even during a crash-loop back-off. */
  scale(desired: number, resetBackoff = false): void {
    this.desired = desired;
    if (resetBackoff) {
      this.crashStreak = 0;
      clearTimeout(this.respawnTimer);
      this.respawnTimer = undefined;
    }
    this.reconcile();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.respawnTimer);
    await Promise.all([...this.members.values()].map((m) => this.terminate(m, graceMs)));
    this.probeAgent.destroy();
  }

  private note(line: string, event: Record<string, unknown> = {}): void {
    this.opts.log(line);
    this.emit('change', { line, ...event });
  }

  private live(): Member[] {
    return [...this.members.values()].filter((m) => !m.terminating);
  }

  private reconcile(): void {
    if (this.stopping) return;
    const live = this.live();
    if (live.length > this.desired) {
      // As a ReplicaSet does: remove not-ready replicas first, then the newest.
      const victims = live
        .sort((a, b) => Number(a.ready) - Number(b.ready) || b.startedMs - a.startedMs)
        .slice(0, live.length - this.desired);
      for (const v of victims) void this.terminate(v, 3000);
      return;
    }
    if (live.length === this.desired || this.respawnTimer) return;
    // A replica that keeps exiting on its own right after start is crash-looping: back off as a kubelet does.
    const delay = this.crashStreak === 0 ? 0 : Math.min(100 * 2 ** this.crashStreak, 5000);
    if (delay === 0) {
      for (let i = live.length; i < this.desired; i++) this.spawnOne();
      return;
    }
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = undefined;
      this.reconcile();
    }, delay);
  }

  private spawnOne(): void {
    const name = `${this.opts.namePrefix ?? OWNER}-${this.generation}-${++this.counter}`;
    const argv = [...this.opts.serviceArgv, '--lab', this.opts.labDir, '--name', name, '--db-port', String(this.opts.dbPort)];
    const child = spawn(process.execPath, argv, {
      stdio: ['ignore', this.opts.logFd, this.opts.logFd, 'ipc'],
      env: this.opts.env,
      cwd: this.opts.labDir,
    });
    if (child.pid === undefined) {
      // Spawn failed synchronously (bad node path, fd limits): the 'error' event explains; retry with back-off.
      child.once('error', (e) => this.opts.log(`spawn ${name} failed: ${e.message}`));
      this.crashStreak++;
      this.reconcile();
      return;
    }
    const m: Member = {
      name,
      child,
      pid: child.pid,
      port: null,
      ready: false,
      terminating: false,
      failures: 0,
      startedAt: new Date().toISOString(),
      startedMs: performance.now(),
    };
    this.members.set(name, m);
    child.on('message', (msg: { type?: string; port?: number }) => {
      if (msg?.type !== 'listening' || typeof msg.port !== 'number') return;
      m.port = msg.port;
      this.note(`${name} listening on ${msg.port}`, { type: 'listening', name, pid: m.pid });
      this.probe(m);
    });
    child.on('error', (e) => this.opts.log(`${name}: ${e.message}`));
    child.on('exit', (code, sig) => this.onExit(m, code, sig));
    this.note(`${name} started (pid ${m.pid})`, { type: 'started', name, pid: m.pid });
  }

  private onExit(m: Member, code: number | null, sig: NodeJS.Signals | null): void {
    clearTimeout(m.probeTimer);
    this.members.delete(m.name);
    const livedMs = performance.now() - m.startedMs;
    // Killed by a signal or told to stop (exit 0) is the fault under test, not a crash loop: replace it at once.
    if (!m.terminating && sig === null && code !== 0 && livedMs < 2000) this.crashStreak++;
    else if (!m.terminating && livedMs >= 2000) this.crashStreak = 0;
    this.note(`${m.name} (pid ${m.pid}) exited: ${sig ?? `code ${code}`}${m.terminating ? '' : ', replacing'}`, {
      type: 'exited',
      name: m.name,
      pid: m.pid,
      code,
      signal: sig,
      expected: m.terminating,
    });
    this.reconcile();
  }

  private probe(m: Member): void {
    if (!this.members.has(m.name) || m.terminating || m.port === null) return;
    const started = performance.now();
    const req = http.get(
      { host: '127.0.0.1', port: m.port, path: '/health/ready', agent: this.probeAgent, timeout: PROBE_TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on('end', () => this.probed(m, res.statusCode === 200, started));
        res.on('error', () => this.probed(m, false, started));
      },
    );
    req.on('timeout', () => req.destroy(new Error('probe timeout')));
    req.on('error', () => this.probed(m, false, started));
  }

  private probed(m: Member, ok: boolean, started: number): void {
    if (!this.members.has(m.name) || m.terminating) return;
    if (ok) {
      m.failures = 0;
      if (!m.ready) {
        m.ready = true;
        m.readyAt ??= new Date().toISOString();
        this.note(`${m.name} ready`, { type: 'ready', name: m.name, pid: m.pid });
      }
    } else if (++m.failures >= FAILURE_THRESHOLD && m.ready) {
      m.ready = false;
      this.note(`${m.name} not ready`, { type: 'unready', name: m.name, pid: m.pid });
    }
    const wait = Math.max(0, PROBE_EVERY_MS - (performance.now() - started));
    m.probeTimer = setTimeout(() => this.probe(m), wait);
  }

  private terminate(m: Member, graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (!this.members.has(m.name)) return resolve();
      const wasTerminating = m.terminating;
      m.terminating = true;
      clearTimeout(m.probeTimer);
      if (!wasTerminating) this.note(`${m.name} terminating`, { type: 'terminating', name: m.name, pid: m.pid });
      const kill = setTimeout(() => m.child.kill('SIGKILL'), graceMs);
      m.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (!wasTerminating) m.child.kill('SIGTERM');
    });
  }
}
