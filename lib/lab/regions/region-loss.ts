/**
 * The loss of the whole primary region, as a region outage takes it: every process of it SIGKILLed in one
 * sweep, none warned, so none drains, ships a last log segment or archives a last WAL segment. The lab daemon
 * and every process under it (replicas, WAL archiver and its pg_receivewal, log shipper, replicator: geo-
 * replication stops with the region), both PostgreSQL nodes with their backends, Patroni and etcd on a Patroni
 * lab, and the primary's Azurite, so its storage refuses connections. Data directories stay on disk: an outage,
 * not a disk loss. The global front and the secondary region are not touched.
 */
import { resolve } from 'node:path';
import { isRunning, postmasterPid } from '../../adapters/postgres/cluster.ts';
import { readWalArchiveState } from '../../adapters/postgres/backup/wal-state.ts';
import { UserError } from '../../errors.ts';
import { childrenOf, isProcessUnder, signal, waitGone } from '../../util/proc.ts';
import { labAzuriteStateFile } from '../azurite.ts';
import { patroniComponents } from '../patroni/processes.ts';
import { labPaths } from '../paths.ts';
import { readConfig, readDaemonState, readJson } from '../state.ts';

export interface RegionPart {
  /** `daemon`, `replica <name>`, `wal-archiver`, `pg_receivewal`, `log-shipper`, `replicator`, `postgres:<node>`, `etcd`, `patroni:<node>`, `azurite`. */
  part: string;
  pid: number | null;
  alive: boolean;
}

/** Every part of the primary region as its state files record it, each checked alive in /proc against the lab dir. */
export async function primaryRegionParts(labDir: string): Promise<RegionPart[]> {
  const dir = resolve(labDir);
  const p = labPaths(dir);
  const [config, daemon, archive, azurite] = await Promise.all([
    readConfig(p.config),
    readDaemonState(p.daemonState),
    readWalArchiveState(p.walArchive.state),
    readJson<{ pid: number; dir: string }>(labAzuriteStateFile(dir)),
  ]);
  const parts: { part: string; pid: number | null; under: string }[] = [
    { part: 'daemon', pid: daemon?.pid ?? null, under: dir },
    ...(daemon?.replicas ?? []).map((r) => ({ part: `replica ${r.name}`, pid: r.pid, under: dir })),
    { part: 'wal-archiver', pid: daemon?.walArchiver?.pid ?? null, under: dir },
    { part: 'pg_receivewal', pid: archive?.receiverPid ?? null, under: dir },
    { part: 'log-shipper', pid: daemon?.logShipper?.pid ?? null, under: dir },
    ...(config?.regions === 2 ? [{ part: 'replicator', pid: daemon?.replicator?.pid ?? null, under: dir }] : []),
  ];
  if (config?.provider === 'patroni' && config.patroni) {
    const members = Object.keys(config.patroni.members);
    const comps = await patroniComponents(dir, config);
    let m = 0;
    for (const c of comps) parts.push({ part: c.name === 'etcd' ? 'etcd' : `patroni:${members[m++]}`, pid: c.pid, under: dir });
  }
  for (const name of Object.keys(config?.nodes ?? {})) {
    const data = p.node(name).data;
    parts.push({ part: `postgres:${name}`, pid: await postmasterPid(data), under: data });
  }
  parts.push({ part: 'azurite', pid: azurite?.pid ?? null, under: azurite?.dir ?? dir });
  return Promise.all(
    parts.map(async (x) => ({
      part: x.part,
      pid: x.pid,
      // A node's data path may be a link to a restored copy that runs where it was made: isRunning follows it.
      alive: x.pid !== null && (x.part.startsWith('postgres:') ? await isRunning(x.under) : await isProcessUnder(x.pid, x.under)),
    })),
  );
}

/** Every descendant of `pid`, children first found first: the processes a part takes with it. */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  let level = [pid];
  while (level.length > 0) {
    const next = (await Promise.all(level.map(childrenOf))).flat();
    out.push(...next);
    level = next;
  }
  return out;
}

/**
 * SIGKILLs every live part of the primary region at once and waits until each is gone. Returns what it killed,
 * part by part (a part's children, such as a postmaster's backends, as `<part> child`), and when. A region
 * already lost returns nothing killed.
 */
export async function losePrimaryRegion(labDir: string): Promise<{ at: string; killed: { part: string; pid: number }[] }> {
  const dir = resolve(labDir);
  const config = await readConfig(labPaths(dir).config);
  if (config?.regions !== 2)
    throw new UserError(`the lab in ${dir} has one region: losing it leaves nothing to recover in`, {
      untouched: 'nothing was killed',
      next: '`drill lab down`, then `drill lab up --regions 2`',
    });
  const parts = (await primaryRegionParts(dir)).filter((x) => x.alive);
  // The supervisors first in the sweep (daemon, Patroni, etcd), so none of them can start a replacement in between.
  const rank = (part: string) => (part === 'daemon' ? 0 : part === 'etcd' || part.startsWith('patroni:') ? 1 : 2);
  parts.sort((a, b) => rank(a.part) - rank(b.part));
  const victims = parts.map((x) => ({ part: x.part, pid: x.pid! }));
  const seen = new Set(victims.map((v) => v.pid));
  // Children are verified by their parent (a postmaster's backends retitle their argv, so /proc cannot name the lab).
  for (const x of parts)
    for (const c of await descendants(x.pid!))
      if (!seen.has(c)) {
        seen.add(c);
        victims.push({ part: `${x.part} child`, pid: c });
      }
  const at = new Date().toISOString();
  const killed = victims.filter((v) => signal(v.pid, 'SIGKILL'));
  const stuck: string[] = [];
  await Promise.all(killed.map(async (v) => void (!(await waitGone(v.pid, 5000)) && stuck.push(`${v.part} (pid ${v.pid})`))));
  if (stuck.length > 0) throw new Error(`SIGKILLed but still running after 5 s: ${stuck.join(', ')}`);
  return { at, killed };
}
