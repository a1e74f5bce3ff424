/** The lab's Patroni cluster on paper: binaries, DCS timings, ports and files, and each member's patroni.yml. */
import { accessSync, constants as fsConstants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { giveToServerUser, PG_BIN } from '../../adapters/postgres/cluster.ts';
import type { LabPaths } from '../paths.ts';
import type { LabConfig, PatroniLabConfig } from '../types.ts';

export const PATRONI_BIN = '/usr/bin/patroni';
export const ETCD_BIN = '/usr/bin/etcd';
/** Lab defaults for a drill (see processes.ts); recorded in lab.json and reported by settings(). */
export const PATRONI_LAB_TIMINGS = { ttl: 10, loopWait: 1, retryTimeout: 4 } as const;
export const NODES = ['n1', 'n2'] as const;
export const SUPERUSER = 'postgres';

/** Loopback trust, as the pg-promote lab (cluster.ts LAB_HBA): throwaway data, no password to leak. */
export const PATRONI_HBA = [
  'local all all trust',
  'host all all 127.0.0.1/32 trust',
  'local replication all trust',
  'host replication all 127.0.0.1/32 trust',
];

/**
 * Patroni's bootstrap section for a loopback pair: the DCS timings, pg_rewind with a fresh clone when a rewind
 * cannot work, slots, and the PostgreSQL settings the lab relies on. The lab and the Patroni test cluster share it.
 */
export function patroniBootstrap(t: { ttl: number; loopWait: number; retryTimeout: number; sync: boolean }) {
  return {
    dcs: {
      ttl: t.ttl,
      loop_wait: t.loopWait,
      retry_timeout: t.retryTimeout,
      maximum_lag_on_failover: 1048576,
      synchronous_mode: t.sync,
      postgresql: {
        use_pg_rewind: true,
        // A rewind that cannot work is followed by a fresh base backup, as the pg-promote lab does.
        remove_data_directory_on_rewind_failure: true,
        use_slots: true,
        parameters: {
          wal_level: 'replica',
          wal_log_hints: 'on',
          hot_standby: 'on',
          max_wal_senders: 10,
          max_replication_slots: 10,
          fsync: 'on',
          synchronous_commit: 'on',
          // With the 5 s default a promoted standby sometimes waits 5 s before retrying WAL (FIELD-NOTES).
          wal_retrieve_retry_interval: '100ms',
          recovery_init_sync_method: 'syncfs',
          // A SIGKILLed postmaster never unlinks posix segments: keep them in the data dir, not /dev/shm.
          dynamic_shared_memory_type: 'mmap',
          log_line_prefix: '%m [%p] %q%u@%d ',
        },
      },
    },
    initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }],
    pg_hba: PATRONI_HBA,
  };
}

export const pidsFile = (p: LabPaths) => join(p.dir, 'patroni.json');
export const etcdDir = (p: LabPaths) => join(p.dir, 'etcd');
export const memberConfig = (p: LabPaths, name: string) => join(p.pg, name, 'patroni.yml');
export const patroniLog = (p: LabPaths, name: string) => p.node(name).patroniLog;
export const apiUrlOf = (cfg: PatroniLabConfig, name: string) => `http://127.0.0.1:${cfg.members[name]!.apiPort}`;

/** Why the lab cannot run on Patroni here, or null: the Debian packages are what the lab runs. */
export function patroniUnavailable(): string | null {
  for (const bin of [PATRONI_BIN, ETCD_BIN]) {
    try {
      accessSync(bin, fsConstants.X_OK);
    } catch {
      return `${bin} is missing`;
    }
  }
  return null;
}

export async function writeMemberConfig(p: LabPaths, cfg: LabConfig, name: string): Promise<void> {
  const pc = cfg.patroni!;
  const dir = join(p.pg, name);
  const pgPort = cfg.nodes[name]!.port;
  const apiPort = pc.members[name]!.apiPort;
  const config = {
    scope: pc.scope,
    namespace: '/drill/',
    name,
    restapi: { listen: `127.0.0.1:${apiPort}`, connect_address: `127.0.0.1:${apiPort}` },
    etcd3: { hosts: `127.0.0.1:${pc.etcd.clientPort}` },
    bootstrap: patroniBootstrap({ ttl: pc.ttl, loopWait: pc.loopWait, retryTimeout: pc.retryTimeout, sync: cfg.replication === 'sync' }),
    postgresql: {
      listen: `127.0.0.1:${pgPort}`,
      connect_address: `127.0.0.1:${pgPort}`,
      data_dir: p.node(name).data,
      bin_dir: PG_BIN,
      pgpass: join(dir, 'pgpass'),
      // Trust on loopback: the passwords are never checked; Patroni wants them named.
      authentication: {
        superuser: { username: SUPERUSER, password: 'lab-trust' },
        replication: { username: 'replicator', password: 'lab-trust' },
      },
      parameters: { unix_socket_directories: p.socketDir },
      pg_hba: PATRONI_HBA,
      basebackup: [{ checkpoint: 'fast' }],
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
  await writeFile(memberConfig(p, name), YAML.stringify(config), { mode: 0o600 });
  await giveToServerUser(memberConfig(p, name));
}
