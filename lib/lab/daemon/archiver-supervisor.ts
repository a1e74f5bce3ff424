/**
 * Keeps the lab's WAL archiver (wal-archiver.ts) running: a killed or crashed archiver is started again
 * (after 0.5 s, backing off to 5 s while it keeps dying young), so the archive resumes from its spool and
 * the slot without a hole. Stopped with the daemon.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import type { WalArchiverView } from '../types.ts';

export interface ArchiverOptions {
  labDir: string;
  dbPort: number;
  argv: string[];
  env: NodeJS.ProcessEnv;
  logFd: number;
  log: (line: string) => void;
  onChange: () => void;
  /** How its log lines name it; default "wal archiver" (the log shipper is kept running the same way). */
  label?: string;
}

/** Its start (Node, pg, the storage SDK: about 1.5 s of CPU) must not take a core from the lab's own start-up. */
const START_NICE = 10;
const LIVED_LONG_MS = 10_000;

export class ArchiverSupervisor {
  private child: ChildProcess | null = null;
  private view: WalArchiverView = { pid: null, startedAt: null, restarts: 0, lastExit: null };
  private stopping = false;
  private streak = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: ArchiverOptions) {}

  private get label(): string {
    return this.o.label ?? 'wal archiver';
  }

  get status(): WalArchiverView {
    return { ...this.view };
  }

  start(): void {
    if (this.stopping || this.child) return;
    const child = spawn(process.execPath, [...this.o.argv, '--lab', this.o.labDir, '--db-port', String(this.o.dbPort)], {
      stdio: ['ignore', this.o.logFd, this.o.logFd],
      env: this.o.env,
      cwd: this.o.labDir,
    });
    if (child.pid === undefined) {
      child.once('error', (e) => this.o.log(`${this.label} did not start: ${e.message}`));
      this.again();
      return;
    }
    try {
      setPriority(child.pid, START_NICE);
    } catch {
      // Not allowed: it starts at our priority.
    }
    const started = performance.now();
    this.child = child;
    this.view = { ...this.view, pid: child.pid, startedAt: new Date().toISOString() };
    this.o.log(`${this.label} started (pid ${child.pid})`);
    this.o.onChange();
    child.on('exit', (code, sig) => {
      this.child = null;
      this.view = { ...this.view, pid: null, lastExit: `${sig ?? `code ${code}`} at ${new Date().toISOString()}` };
      this.o.log(`${this.label} (pid ${child.pid}) exited: ${sig ?? `code ${code}`}${this.stopping ? '' : ', restarting'}`);
      this.o.onChange();
      if (this.stopping) return;
      this.streak = performance.now() - started < LIVED_LONG_MS ? this.streak + 1 : 0;
      this.again();
    });
  }

  private again(): void {
    this.view.restarts++;
    this.timer = setTimeout(() => this.start(), Math.min(5000, 500 * 2 ** Math.max(0, this.streak - 1)));
  }

  /** SIGTERM (it finishes the upload in flight), SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const c = this.child;
    if (!c) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => c.kill('SIGKILL'), graceMs);
      c.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      c.kill('SIGTERM');
    });
  }
}
