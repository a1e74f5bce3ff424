/**
 * One detached process per lab: the replica supervisor, the front, the DB endpoint and the control API.
 * `node --import tsx/esm lib/lab/daemon.ts --lab DIR`, started by labUp; stops its replicas on SIGTERM.
 */
import { openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { ChangeFeed, createControlServer, type ControlDeps } from './control.ts';
import { DbEndpoint } from './db-endpoint.ts';
import { Front } from './front.ts';
import { childEnv, entryArgv, labPaths } from '../paths.ts';
import { readConfig } from '../state.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { Supervisor } from './supervisor.ts';
import { ArchiverSupervisor } from './archiver-supervisor.ts';
import { followedMembers, followPatroniLeader } from '../patroni/follow.ts';
import type { DaemonState } from '../types.ts';
import { secondaryPaths } from '../regions/secondary.ts';

const { values } = parseArgs({ options: { lab: { type: 'string' } } });
if (!values.lab) throw new Error('--lab DIR is required');
const paths = labPaths(values.lab);
const config = await readConfig(paths.config);
if (!config) throw new Error(`${paths.config} is missing: start the lab with labUp / \`drill lab up\``);
const primary = config.nodes[config.primary];
if (!primary) throw new Error(`${paths.config}: primary node ${config.primary} is not among the nodes`);

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} daemon ${line}\n`);
const feed = new ChangeFeed();
const startedAt = new Date().toISOString();

const db = new DbEndpoint(primary.port, log);
await db.listen();
const supervisor = new Supervisor({
  labDir: paths.dir,
  dbPort: db.port,
  desired: config.replicas,
  serviceArgv: entryArgv('service.ts'),
  env: childEnv(),
  logFd: openSync(paths.replicasLog, 'a'),
  log,
});
const archiver = new ArchiverSupervisor({
  labDir: paths.dir,
  dbPort: db.port,
  argv: entryArgv('wal-archiver.ts'),
  env: childEnv(),
  logFd: openSync(paths.walArchive.log, 'a'),
  log,
  onChange: () => {
    feed.push('wal-archiver', { ...archiver.status });
    persist();
  },
});
// The logs data class: the replicas' request logs go to Blob every logShipInterval, restarted like the archiver.
const shipper = new ArchiverSupervisor({
  labDir: paths.dir,
  dbPort: db.port,
  argv: entryArgv('log-shipper.ts'),
  env: childEnv(),
  logFd: openSync(paths.serviceLogs.shipperLog, 'a'),
  log,
  label: 'log shipper',
  onChange: () => {
    feed.push('log-shipper', { ...shipper.status });
    persist();
  },
});
// Two regions: the primary's storage is copied to the secondary's after replicationLag, restarted like the archiver.
const replicator =
  config.regions === 2
    ? new ArchiverSupervisor({
        labDir: paths.dir,
        dbPort: db.port,
        argv: entryArgv('replicator.ts'),
        env: childEnv(),
        logFd: openSync(secondaryPaths(paths.dir).replicatorLog, 'a'),
        log,
        label: 'replicator',
        onChange: () => {
          feed.push('replicator', { ...replicator!.status });
          persist();
        },
      })
    : null;
const front = new Front({ upstreams: () => supervisor.inRotation(), markUnready: (n, why) => supervisor.markUnready(n, why), log });
await front.listen();

let controlPort = 0;
let stopping = false;
function persist(): void {
  if (stopping) return;
  const state: DaemonState = {
    pid: process.pid,
    startedAt,
    ports: { front: front.port, control: controlPort, dbEndpoint: db.port },
    primaryPort: db.primaryPort,
    desired: supervisor.desired,
    replicas: supervisor.list().map((r) => ({ name: r.name, pid: r.pid!, port: r.port })),
    walArchiver: archiver.status,
    logShipper: shipper.status,
    ...(replicator ? { replicator: replicator.status } : {}),
    updatedAt: new Date().toISOString(),
  };
  try {
    writeJsonAtomic(paths.daemonState, state);
  } catch (e) {
    // The lab keeps serving; `lab down` then falls back to the last state it can read.
    log(`cannot write ${paths.daemonState}: ${(e as Error).message}`);
  }
}

const deps: ControlDeps = { supervisor, front, db, feed, daemon: { pid: process.pid, startedAt }, persist };
const control = createControlServer(deps);
await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
controlPort = (control.address() as AddressInfo).port;

supervisor.on('change', (e: { type?: string }) => {
  feed.push(e.type ?? 'changed', e);
  persist();
});
supervisor.start();
archiver.start();
shipper.start();
replicator?.start();
persist();
// On a Patroni lab the endpoint follows the leader by itself (HAProxy's GET /primary check); pg-promote repoints it.
const patroniMembers = followedMembers(config);
const stopFollowing =
  patroniMembers.length === 0
    ? () => {}
    : followPatroniLeader(db, patroniMembers, (m) => {
        feed.push('db-repointed', { from: m.from, to: m.to, closedConnections: m.closedConnections, by: `patroni leader ${m.member}` });
        persist();
      });
log(`up: front ${front.port}, control ${controlPort}, db endpoint ${db.port} -> ${db.primaryPort}, ${supervisor.desired} replicas`);
if (process.send) {
  process.send({ type: 'ready', ports: { front: front.port, control: controlPort, dbEndpoint: db.port } }, () => process.disconnect?.());
}

async function shutdown(sig: string): Promise<void> {
  if (stopping) return;
  log(`${sig}: stopping replicas`);
  stopFollowing();
  // The shipper last: its final pass takes the lines the replicas wrote while draining.
  await Promise.all([supervisor.stop(3000).then(() => shipper.stop(5000)), archiver.stop(5000), replicator?.stop(5000)]);
  stopping = true;
  await Promise.allSettled([front.close(), db.close(), new Promise((r) => control.close(r))]);
  await rm(paths.daemonState, { force: true });
  log('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
// No terminal to hang up on (own session), but a stray SIGHUP must not take the lab down.
process.on('SIGHUP', () => log('SIGHUP ignored'));
