import type { CommandModule } from 'yargs';
import { formatDuration, parseDuration } from '../../config/duration.ts';
import { defaultLabDir, labDown, labStatus, labUp, pauseFront, resumeFront } from '../../lab/index.ts';
import { ExitCode, UserError } from '../../errors.ts';

const dirOption = { type: 'string', describe: 'lab directory (default: $DRILL_LAB_DIR or the OS temp dir)' } as const;

/** `drill lab up|down|status|pause-front`: the embedded lab by hand (`drill run` does up/down on its own). */
export function labCommand(set: (code: number) => void): CommandModule {
  return {
    command: 'lab <action>',
    describe: 'the embedded lab: up, down, status, pause-front --for <duration>, resume-front',
    builder: (y) =>
      y
        .positional('action', { choices: ['up', 'down', 'status', 'pause-front', 'resume-front'] as const, demandOption: true })
        .option('dir', dirOption)
        .option('replicas', { type: 'number', default: 3, describe: 'replicas of the sample service (up)' })
        .option('replication', {
          choices: ['async', 'sync'] as const,
          describe: 'streaming replication to the standby (up; default: as before, else async)',
        })
        .option('provider', {
          choices: ['pg-promote', 'patroni'] as const,
          describe:
            'who fails the pair over (up): pg-promote (the harness) or patroni (Patroni + etcd in the lab); default: as before, else pg-promote',
        })
        .option('archive-lag', {
          type: 'string',
          describe: 'the most the WAL archive may lag the primary (up), e.g. 60s; default: as before, else 60s',
        })
        .option('base-backup-every', {
          type: 'string',
          describe: 'how often the archiver takes a new base backup (up), e.g. 24h; default: as before, else 24h',
        })
        .option('regions', {
          type: 'number',
          describe: "1, or 2 for a secondary region's storage and a replicator into it (up); default: as before, else 1",
        })
        .option('replication-lag', {
          type: 'string',
          describe:
            'how long a blob exists in the primary storage before it is copied to the secondary (up, 2 regions), e.g. 15m; default: as before, else 15m',
        })
        .option('for', { type: 'string', describe: 'how long the front refuses connections (pause-front), e.g. 2s' })
        .option('purge', {
          type: 'boolean',
          default: false,
          describe: "down: also delete the lab directory (databases, backups, the secondary region's restored database)",
        })
        .option('json', { type: 'boolean', default: false }),
    handler: async (a) => {
      const dir = (a.dir as string | undefined) ?? defaultLabDir();
      const json = a.json as boolean;
      const print = (human: string, obj: unknown) => process.stdout.write(json ? JSON.stringify(obj, null, 2) + '\n' : human + '\n');
      switch (a.action) {
        case 'up': {
          const info = await labUp({
            dir,
            replicas: a.replicas as number,
            replication: a.replication as 'async' | 'sync' | undefined,
            provider: a.provider as 'pg-promote' | 'patroni' | undefined,
            archiveLagMs: a['archive-lag'] === undefined ? undefined : lagOption(a['archive-lag'] as string),
            baseBackupEveryMs:
              a['base-backup-every'] === undefined ? undefined : lagOption(a['base-backup-every'] as string, 'base-backup-every', '24h'),
            regions: a.regions as 1 | 2 | undefined,
            replicationLagMs:
              a['replication-lag'] === undefined ? undefined : lagOption(a['replication-lag'] as string, 'replication-lag', '15m'),
          });
          const rg = info.regions;
          const globalLine = rg
            ? `\n  global    ${rg.globalFrontUrl} -> ${rg.active} region${rg.active === 'secondary' ? ` (serving from the secondary region: the primary region is not restarted under it; \`drill lab down\` stops both)` : ''}`
            : '';
          const nodes = info.db.nodes.map((n) => `\n  ${n.role.padEnd(9)} ${n.name} on 127.0.0.1:${n.port} (pid ${n.pid ?? '-'})`).join('');
          print(
            `lab ${info.alreadyRunning ? 'already up' : 'up'} in ${dir}${globalLine}\n  service   ${info.serviceUrl}\n  postgres  endpoint 127.0.0.1:${info.db.endpointPort} -> ${info.db.nodes[0]?.name ?? '?'}, database ${info.db.database}, ${info.db.replication} replication, provider ${info.db.provider}${info.db.patroni ? ` (etcd 127.0.0.1:${info.db.patroni.etcd.clientPort}, ttl ${info.db.patroni.ttl} s, loop_wait ${info.db.patroni.loopWait} s)` : ''}${nodes}\n  control   ${info.controlUrl}${info.azurite ? `\n  azurite   ${info.azurite.url}, container ${info.azurite.container} (Azurite's dev account: drill backup and lab drills use it when no Blob storage is configured)` : ''}${info.secondary ? `\n  secondary ${info.secondary.url} (its own account ${info.secondary.account}; ${info.secondary.containers.join(', ')} replicated into it)` : ''}`,
            info,
          );
          return set(ExitCode.ok);
        }
        case 'down': {
          const r = await labDown({ dir, purge: a.purge as boolean });
          print(`lab down: ${dir}${a.purge ? ' (directory deleted)' : ''}`, r ?? { dir, down: true });
          return set(ExitCode.ok);
        }
        case 'status': {
          const s = await labStatus({ dir });
          print(formatStatus(dir, s), s);
          // Scripts and tests read health from the exit code: 0 only for a running lab with nothing broken.
          return set(s.up && s.problems.length === 0 ? ExitCode.ok : ExitCode.objectiveMissed);
        }
        case 'pause-front': {
          if (!a.for)
            throw new UserError('pause-front needs --for <duration>', {
              untouched: 'nothing',
              next: 'e.g. drill lab pause-front --for 2s',
            });
          const ms = parseDuration(a.for as string);
          const s = await labStatus({ dir });
          if (!s.up || !s.info)
            throw new UserError(`the lab in ${dir} is not running`, { untouched: 'nothing', next: '`drill lab up` first' });
          const r = await pauseFront(s.info, ms);
          print(`front refused connections for ${(r.reopenedAtEpochMs - r.closedAtEpochMs).toFixed(1)} ms`, r);
          return set(ExitCode.ok);
        }
        case 'resume-front': {
          const s = await labStatus({ dir });
          if (!s.up || !s.info)
            throw new UserError(`the lab in ${dir} is not running`, { untouched: 'nothing', next: '`drill lab up` first' });
          const r = await resumeFront(s.info);
          print(r.wasPaused ? 'front listening again' : 'front was not paused: nothing to do', r);
          return set(ExitCode.ok);
        }
      }
    },
  };
}

function lagOption(text: string, flag = 'archive-lag', example = '60s'): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new UserError(`--${flag}: ${(e as Error).message}`, { untouched: 'nothing', next: `e.g. --${flag} ${example}` });
  }
}

type Status = Awaited<ReturnType<typeof labStatus>>;

/** The global front and the secondary region, for both a lab serving from the primary and one serving from the secondary. */
function regionLines(s: Status): string[] {
  const r = s.regions;
  if (!r) return [];
  const out: string[] = [];
  const g = r.globalFront;
  out.push(
    g
      ? `  global front ${g.url} -> ${r.active} region (upstream port ${g.upstreamPort ?? 'none'})${g.alive ? '' : ' DEAD'}, pid ${g.pid}, control ${g.controlPort}${g.switchedAt ? `, switched at ${g.switchedAt}` : ''}`
      : '  global front none',
  );
  const c = r.secondary.compute;
  out.push(
    `  secondary    compute ${c.up ? `up, ${c.ready}/${c.desired} replicas ready, front port ${c.frontPort}, daemon pid ${c.daemonPid}, database port ${c.dbPort}` : 'not running'} (no WAL archiver, no replicator in the secondary region)`,
  );
  const d = r.secondary.database;
  out.push(
    d
      ? `  secondary db port ${d.port}, restored from ${d.backupFolder} through ${d.reachedLsn} (timeline ${d.timeline}) at ${d.restoredAt}, ${d.running ? `running (pid ${d.pid})` : 'NOT running'}`
      : '  secondary db none restored',
  );
  return out;
}

function formatStatus(dir: string, s: Status): string {
  const problems = s.problems.map((p) => `  problem: ${p.part}: ${p.detail}`);
  if (!s.up) {
    const head = `lab in ${dir}: down${s.stale ? ' (stale state found: `drill lab down` cleans it, `drill lab up` starts over)' : ''}`;
    return [head, ...(s.regions?.note ? [`  ${s.regions.note}`] : []), ...(s.stale ? problems : [])].join('\n');
  }
  const n = s.problems.length;
  const lines = [
    `lab in ${dir}: up, ${n === 0 ? 'healthy' : `${n} problem${n === 1 ? '' : 's'} (listed below; \`drill lab up\` repairs a lab whose primary is gone)`}`,
  ];
  // Said first, plainly: the primary region is down on purpose, and what follows is the secondary serving.
  if (s.regions?.note) lines.push(`  ${s.regions.note}`);
  for (const c of s.components ?? [])
    lines.push(
      `  ${c.name.padEnd(16)} pid ${String(c.pid ?? '-').padEnd(8)} ${c.port ? `port ${c.port}` : ''} ${c.alive ? 'alive' : 'DEAD'}`,
    );
  const db = s.database;
  if (db) {
    lines.push(`  database     ${db.replication} replication, primary ${db.primary}, provider ${db.provider}`);
    if (db.patroni) {
      lines.push(
        `  patroni      scope ${db.patroni.scope}, ttl ${db.patroni.ttl} s, loop_wait ${db.patroni.loopWait} s, retry_timeout ${db.patroni.retryTimeout} s, leader ${db.patroni.leader ?? 'none'}`,
      );
      for (const m of db.patroni.members ?? [])
        lines.push(
          `    member   ${m.name.padEnd(4)} ${m.role} ${m.state}, timeline ${m.timeline ?? '?'}${m.lagBytes === null ? '' : `, lag ${m.lagBytes} bytes`} (${m.apiUrl ?? 'no api'})`,
        );
      if (!db.patroni.members) lines.push('    no Patroni member answers GET /cluster');
    }
    for (const n of db.nodes) {
      const said = n.inRecovery === null ? 'does not answer' : n.inRecovery ? 'in recovery' : 'accepts writes';
      // A stopped walsender still shows as streaming, 0 bytes sent and not replayed: say what holds it instead.
      const stalled = db.walsenders.find((w) => w.stopped && w.to === n.name);
      const repl =
        n.role === 'standby' && n.alive
          ? stalled
            ? `, STALLED: its walsender pid ${stalled.pid} is stopped`
            : `, ${n.streaming ? 'streaming' : 'NOT streaming'}${n.syncState ? ` (${n.syncState})` : ''}, replay lag ${n.replayLagMs === null ? '?' : `${n.replayLagMs.toFixed(0)} ms`}, ${n.lagBytes === null ? '?' : n.lagBytes} bytes behind`
          : '';
      lines.push(
        `    ${n.role.padEnd(8)} ${n.name.padEnd(4)} pid ${String(n.pid ?? '-').padEnd(8)} port ${n.port} ${n.alive ? said : 'DOWN'}${repl}`,
      );
    }
  }
  if (s.info?.azurite) lines.push(`  azurite      ${s.info.azurite.url}, container ${s.info.azurite.container}`);
  const a = s.archive;
  if (a)
    lines.push(
      `  wal archive  ${a.state}${a.pid ? ` (pid ${a.pid})` : ''}, archived through ${a.archivedThrough ?? 'nothing yet'}${a.timeline ? ` (timeline ${a.timeline})` : ''}, lag ${a.lagSeconds === null ? '?' : `${a.lagSeconds}s`} (allowed ${a.archiveLagSeconds}s)${a.restarts ? `, restarted ${a.restarts}x` : ''}, base backup ${a.baseBackup ? `${a.baseBackup.folder} at ${a.baseBackup.at}` : 'none'} (one every ${formatDuration(a.baseBackupEverySeconds * 1000)})`,
    );
  if (s.info?.secondary) lines.push(`  secondary    ${s.info.secondary.url}, account ${s.info.secondary.account}`);
  lines.push(...regionLines(s));
  const rep = s.replication;
  if (rep)
    lines.push(
      `  replication  ${rep.state}${rep.pid ? ` (pid ${rep.pid})` : ''}, lag ${rep.measuredLagSeconds === null ? '? (no pass yet)' : `${rep.measuredLagSeconds}s`} (replicationLag ${rep.lagSeconds}s, allowed ${rep.allowedLagSeconds}s), ${rep.copiedTotal} blobs copied, ${rep.pending ?? '?'} pending, newest copied ${rep.newestCopied ?? 'none'}${rep.restarts ? `, restarted ${rep.restarts}x` : ''}`,
    );
  const l = s.logShipping;
  if (l) {
    const ago = (iso: string | null) =>
      iso === null ? 'never' : `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 100) / 10)}s ago`;
    lines.push(
      `  log shipper  ${l.state}${l.pid ? ` (pid ${l.pid})` : ''}, last pass ${ago(l.lastPassAt)}${l.lastPassOk === false ? ' (failed)' : ''}, last shipped ${ago(l.lastShippedAt)}, lag ${l.lagSeconds === null ? '?' : `${l.lagSeconds}s`} (interval ${l.intervalSeconds}s), ${l.pendingBytes} bytes pending${l.restarts ? `, restarted ${l.restarts}x` : ''}`,
    );
  }
  for (const r of s.replicas ?? [])
    lines.push(
      `  replica ${r.name.padEnd(12)} pid ${String(r.pid ?? '-').padEnd(8)} ${r.ready ? 'ready' : 'not ready'} since ${r.startedAt}`,
    );
  // Last, where the eye lands: what is broken.
  lines.push(...problems);
  return lines.join('\n');
}
