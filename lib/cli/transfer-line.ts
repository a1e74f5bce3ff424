import { transferProgress } from '../adapters/blob/index.ts';
import type { Progress } from '../scenario/define.ts';

/**
 * A live `label  123.4/512.0 MB  68.2 MB/s  ETA 6s` line on a TTY, redrawn at most 4 times a second;
 * silent elsewhere (CI logs get the one summary line the command prints at the end).
 */
export function ttyTransferLine(
  label: string,
  out: NodeJS.WriteStream = process.stderr,
): { update(bytes: number, total?: number): void; done(): void } {
  const tty = Boolean(out.isTTY) && process.env.CI !== 'true';
  let p = transferProgress({ label });
  let total: number | undefined;
  let last = 0;
  let drawn = false;
  return {
    update(bytes, t) {
      if (!tty) return;
      if (t !== undefined && t !== total) {
        total = t;
        p = transferProgress({ label, totalBytes: t });
      }
      p.update(bytes);
      const now = performance.now();
      if (now - last < 250) return;
      last = now;
      out.write(`\r\x1b[2K${p.line()}`);
      drawn = true;
    },
    done() {
      if (tty && drawn) out.write('\r\x1b[2K');
    },
  };
}

/** Where a run's scenarios report progress (`ctx.progress`): one transfer line per label, drawn as above. */
export function ttyProgress(out: NodeJS.WriteStream = process.stderr): (update: Progress) => void {
  const lines = new Map<string, ReturnType<typeof ttyTransferLine>>();
  return (u) => {
    let line = lines.get(u.label);
    if ('done' in u) {
      line?.done();
      lines.delete(u.label);
      return;
    }
    if (!line) {
      line = ttyTransferLine(u.label, out);
      lines.set(u.label, line);
    }
    line.update(u.bytes, u.totalBytes);
  };
}
