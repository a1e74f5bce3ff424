/**
 * Debian packages a command needs before it can start (PostgreSQL 15 for the lab; Patroni, etcd, kubectl,
 * Chromium for the tests). As root they are installed, saying so; otherwise the error names the exact command,
 * so a fresh machine with Node 20 needs no set-up step beyond the README's two commands.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../errors.ts';

export interface DebianNeed {
  /** The Debian package that provides it, e.g. `postgresql-15`. */
  package: string;
  /** Whether it is there already (a file, a command on PATH, a Python module). */
  present(): boolean;
  /** What it is for, in one phrase, shown beside the package name. */
  why: string;
}

/** How packages get installed; tests pass their own so no apt-get runs. */
export interface PackageInstaller {
  isRoot: boolean;
  /** Runs a command to completion and returns its exit status. */
  run(command: string, args: string[]): number | null;
}

const apt: PackageInstaller = {
  isRoot: process.getuid?.() === 0,
  run(command, args) {
    // apt's progress lines would drown what the command itself says; its errors still show. The environment is
    // explicit and minimal: nothing the harness was given (storage keys, passwords) reaches apt or its scripts.
    const r = spawnSync(command, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { PATH: process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' },
    });
    return r.status;
  },
};

export function installCommand(packages: string[]): string {
  return `apt-get update && apt-get install -y ${packages.join(' ')}`;
}

/** Installs the missing packages as root (saying which and why); otherwise throws a UserError naming the command. */
export function ensureDebianPackages(needs: DebianNeed[], say: (line: string) => void, installer: PackageInstaller = apt): void {
  const missing = needs.filter((n) => !n.present());
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((n) => n.package))];
  const list = missing.map((n) => `${n.package} (${n.why})`).join(', ');
  if (!installer.isRoot) {
    throw new UserError(`missing Debian packages: ${list}`, { untouched: 'nothing', next: `as root: ${installCommand(packages)}` });
  }
  say(`installing ${list}`);
  for (const [command, args] of [
    ['apt-get', ['update', '-qq']],
    ['apt-get', ['install', '-y', '-qq', ...packages]],
  ] as const) {
    const status = installer.run(command, [...args]);
    if (status !== 0) {
      throw new UserError(`${command} ${args.join(' ')} failed (exit ${status ?? 'by signal'})`, {
        untouched: 'nothing',
        next: `as root: ${installCommand(packages)}`,
      });
    }
  }
  const still = missing.filter((n) => !n.present()).map((n) => n.package);
  if (still.length > 0)
    throw new UserError(`installed ${packages.join(' ')}, but still missing: ${still.join(' ')}`, { untouched: 'nothing' });
}

/** An executable file at `path`. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A command found on PATH, the way a shell would find it. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, command)));
}
