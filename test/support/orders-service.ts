import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './cli.ts';

/**
 * The lab's orders service as a process of its own, its database the PostgreSQL (or proxy) on `dbPort` as user
 * and database `app` with `password` (the CloudNativePG app secret's shape). Resolves with its URL once it
 * listens; `later` gets its SIGKILL, so the test stops it also when it fails.
 */
export function startOrdersService(later: (fn: () => unknown) => void, dbPort: number, password: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO, 'lib/lab/daemon/service.ts'),
      '--name',
      'orders-kube',
      '--port',
      '0',
      '--db-port',
      String(dbPort),
      '--db-user',
      'app',
      '--db-name',
      'app',
    ],
    { cwd: REPO, env: { ...process.env, PGPASSWORD: password }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  later(() => child.kill('SIGKILL'));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`orders service did not listen: ${out}`)), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`orders service exited ${code}: ${out}`)));
  });
}
