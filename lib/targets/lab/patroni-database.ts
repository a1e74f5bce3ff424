/**
 * A Patroni lab's PostgreSQL pair as a DatabaseAdapter: the patroni provider over the lab's members. The fault
 * is the host dying (Patroni, postmaster and children SIGKILLed at once); Patroni elects and promotes once the
 * leader key expires, the lab's endpoint follows GET /primary by itself, and the rollback starts the dead
 * member's Patroni again, which rewinds it (use_pg_rewind) into a replica of the new leader.
 */
import { PatroniProvider } from '../../adapters/postgres/failover/patroni.ts';
import type { DatabaseAdapter, DbNodeView } from '../../adapters/types.ts';
import { labPaths } from '../../lab/paths.ts';
import { apiUrlOf } from '../../lab/patroni/config.ts';
import { crashPatroniMember, startPatroniMember } from '../../lab/patroni/processes.ts';
import { readLabConfig, recordPatroniLeader } from '../../lab/patroni/status.ts';
import { LAB_DB, nodeFacts } from '../../lab/postgres/status.ts';
import type { LabInfo, PatroniLabConfig } from '../../lab/types.ts';
import { takesWrite } from '../../adapters/postgres/standby.ts';

/** The patroni provider with the lab's word on its timings added to what GET /config says. */
class PatroniLabProvider extends PatroniProvider {
  constructor(
    options: ConstructorParameters<typeof PatroniProvider>[0],
    private readonly lab: PatroniLabConfig,
  ) {
    super(options);
  }

  override async settings(): Promise<Record<string, unknown>> {
    return {
      ...(await super.settings()),
      lab: `lab defaults for a drill: ttl ${this.lab.ttl} s, loop_wait ${this.lab.loopWait} s, retry_timeout ${this.lab.retryTimeout} s (Patroni's own defaults are 30/10/10, a failover of 30-40 s); the failover waits for the dead leader's key to expire, so RTO is about ttl`,
      endpoint: 'the lab endpoint follows GET /primary on every member (as HAProxy does): nothing is repointed',
    };
  }
}

export function createPatroniLabDatabase(info: LabInfo): DatabaseAdapter {
  const p = labPaths(info.dir);
  const lab = info.db.patroni;
  if (!lab) throw new Error(`the lab in ${info.dir} records no Patroni cluster: it does not run on Patroni`);
  const provider = new PatroniLabProvider(
    {
      apiUrls: Object.keys(lab.members).map((n) => apiUrlOf(lab, n)),
      pg: { user: LAB_DB.superuser, database: 'postgres' },
      env: {},
      knownMembers: Object.fromEntries(Object.keys(lab.members).map((n) => [n, apiUrlOf(lab, n)])),
      startMember: (name) => startPatroniMember(info.dir, name),
      // The lab's data is throwaway: a member that does not stream 30 s after it restarted is cloned afresh.
      reinitializeAfterMs: 30_000,
      // Not a repoint (the endpoint follows the leader itself): the new leader goes into lab.json for `lab up` and status.
      repoint: (node) => recordPatroniLeader(info.dir, node.name),
      endpoint: { host: '127.0.0.1', port: info.db.endpointPort },
    },
    lab,
  );
  return {
    where: `lab:${info.dir} (patroni, ${info.db.replication})`,
    provider,
    replication: info.db.replication,
    endpoint: { host: '127.0.0.1', port: info.db.endpointPort, database: info.db.database, user: info.db.user },
    admin: { user: info.db.superuser, database: info.db.database },
    async nodes(): Promise<DbNodeView[]> {
      const now = await readLabConfig(p.config);
      if (!now) return [];
      // No data dir or log: a node of a Patroni lab is started by its Patroni only, never by the harness behind
      // its back (a rollback with no primary then waits for Patroni, as on a platform).
      return (await nodeFacts(info.dir, now)).map((n) => ({ name: n.name, host: n.host, port: n.port, role: n.role, pid: n.pid }));
    },
    async crash(node, how) {
      if (!lab.members[node.name]) throw new Error(`${node.name} is not a node of the lab in ${info.dir}`);
      // The host dies either way: with `immediate` too, Patroni must go, or it would restart PostgreSQL in place.
      void how;
      return crashPatroniMember(info.dir, node.name);
    },
    // Its Patroni, started again, brings PostgreSQL back and takes the leader key if nobody holds it.
    restartAsPrimary: (node, options) => provider.rejoin(node, options),
    takesWrites: () =>
      takesWrite(
        { host: '127.0.0.1', port: info.db.endpointPort, user: info.db.superuser, database: info.db.database },
        `the lab endpoint 127.0.0.1:${info.db.endpointPort}`,
      ),
  };
}
