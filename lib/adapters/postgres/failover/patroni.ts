/**
 * patroni: failover as a Patroni cluster does it. Patroni elects and promotes on its own: when the leader's
 * host dies, its leader key in the DCS (etcd, Consul, ...) outlives it by up to `ttl` seconds, then the
 * healthiest replica takes the key and promotes. This provider watches that happen over the REST API
 * (GET /cluster, /patroni, /config) and resolves once the new leader accepts a write, connecting to it
 * directly: in a Patroni setup the stable endpoint is a proxy (HAProxy checking GET /primary on each member)
 * that follows the leader by itself, so there is nothing to repoint unless the caller hands a `repoint`.
 *
 * `force` sends POST /failover with the candidate. Against a dead leader Patroni still waits for the
 * leader key to expire (only a live leader can hand its key over), but then promotes the candidate even
 * when it lags more than maximum_lag_on_failover, instead of racing all replicas.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { UserError } from '../../../errors.ts';
import {
  apiBase,
  authFromEnv,
  callApi,
  PatroniApiError,
  type ClusterDoc,
  type ClusterMember,
  type MemberStatus,
  type PatroniAuth,
} from './patroni-api.ts';
import {
  FailoverTimeoutError,
  orList,
  type FailoverProvider,
  type FailoverResult,
  type PgNode,
  type ReplicationState,
  type Topology,
} from './types.ts';

export interface PatroniProviderOptions {
  /** REST API addresses of the members (`http://host:8008`); any one that answers is enough, the rest are learnt from GET /cluster. */
  apiUrls: string[];
  /** Login for the write check on the new leader; the password, if any, comes from `pgPasswordVar` (default PGPASSWORD). */
  pg?: { user?: string; database?: string; passwordVar?: string };
  /** Environment variables holding REST API basic-auth credentials (default: Patroni's own PATRONI_RESTAPI_USERNAME / _PASSWORD). */
  authVars?: { username: string; password: string };
  /** Where credentials are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default for failover(): POST /failover to the candidate instead of only waiting for Patroni's election. */
  force?: boolean;
  /** Brings a member's Patroni back for a rejoin (on a host: `systemctl start patroni`). Without it, rejoin waits for someone to. */
  startMember?: (name: string) => Promise<void>;
  /** Points a stable endpoint that does not follow Patroni by itself (no HAProxy /primary check) at the new leader. */
  repoint?: (node: PgNode) => Promise<void>;
  /**
   * The stable address applications use (HAProxy's read-write port, the lab's database endpoint). When given,
   * the write that ends a failover goes through it, so the time measured is the one clients see; without it the
   * write goes straight to the new leader.
   */
  endpoint?: { host: string; port: number };
  /**
   * Members known by name before any GET /cluster (name → REST API address), for a harness that runs them: a
   * member whose host died drops out of /cluster once its key expires, and a rejoin still has to find it.
   */
  knownMembers?: Record<string, string>;
  /**
   * A rejoining member that has not streamed this long after its Patroni started is rebuilt with POST
   * /reinitialize (Patroni wipes its data and clones the leader): the fallback when a rewind cannot work or
   * was not run. Off by default, since it deletes the member's data directory.
   */
  reinitializeAfterMs?: number;
  /** Per REST call (default 2000 ms). */
  requestTimeoutMs?: number;
  /** Between looks at the cluster while waiting (default 100 ms). */
  pollMs?: number;
}

export interface PatroniMemberView {
  name: string;
  role: string;
  state: string;
  timeline: number | null;
  lagBytes: number | null;
  apiUrl: string | null;
}

export interface PatroniTopology extends Topology {
  /** Every member as GET /cluster lists it, the leader included. */
  members: PatroniMemberView[];
  /** The leader's timeline (from its own GET /patroni when it answers, else from the DCS). */
  timeline: number | null;
}

export interface PatroniFailoverResult extends FailoverResult {
  oldLeader: string | null;
  /** When GET /cluster first named the new leader (ISO). */
  electedAt: string;
  /** When the new leader first answered GET /primary with 200: the moment HAProxy-style health checks can route to it. */
  routableAt: string;
  forced: boolean;
  timeline: number | null;
}

type FailoverOptions = Parameters<FailoverProvider['failover']>[0] & { force?: boolean };

/** Patroni's defaults for the DCS settings that drive failover time, used when GET /config omits them. */
const DCS_DEFAULTS = { ttl: 30, loop_wait: 10, retry_timeout: 10, maximum_lag_on_failover: 1048576, synchronous_mode: false };

const NOTHING_SENT = 'nothing was sent to Patroni and no member was touched';

export class PatroniProvider implements FailoverProvider {
  readonly kind = 'patroni';
  private readonly seeds: string[];
  /** Member name → API base, learnt from every GET /cluster: a dead member drops out of /cluster once its key expires. */
  private readonly apiByName = new Map<string, string>();
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly auth: PatroniAuth | undefined;
  private readonly pgLogin: { user: string; database: string; password?: string };

  constructor(private readonly o: PatroniProviderOptions) {
    if (o.apiUrls.length === 0)
      throw new UserError('the patroni provider needs at least one REST API address (apiUrls)', { untouched: NOTHING_SENT });
    this.seeds = o.apiUrls.map(apiBase);
    for (const [name, url] of Object.entries(o.knownMembers ?? {})) this.apiByName.set(name, apiBase(url));
    this.timeoutMs = o.requestTimeoutMs ?? 2000;
    this.pollMs = o.pollMs ?? 100;
    const env = o.env ?? process.env;
    this.auth = authFromEnv(env, o.authVars ?? { username: 'PATRONI_RESTAPI_USERNAME', password: 'PATRONI_RESTAPI_PASSWORD' });
    const password = env[o.pg?.passwordVar ?? 'PGPASSWORD'];
    this.pgLogin = { user: o.pg?.user ?? 'postgres', database: o.pg?.database ?? 'postgres', ...(password ? { password } : {}) };
  }

  // ---- reading -------------------------------------------------------------------------------------

  /** The member that answered last goes first: after a host dies, every poll would otherwise wait out its timeout. */
  private lastAnswered: string | null = null;
  /** The leader the last topology() or failover() saw: what "the primary that died" means to a later failover(). */
  private lastSeenLeader: string | null = null;
  private failoverStartedMs = 0;

  private bases(): string[] {
    return [...new Set([...(this.lastAnswered ? [this.lastAnswered] : []), ...this.seeds, ...this.apiByName.values()])];
  }

  /** GET path from the first member that answers; a UserError (exit 3) naming every address when none does. */
  private async fromAnyMember(path: string, signal?: AbortSignal): Promise<{ base: string; json: unknown; status: number; text: string }> {
    const failures: string[] = [];
    for (const base of this.bases()) {
      try {
        const r = await callApi(base, path, { timeoutMs: this.timeoutMs, signal, auth: this.auth });
        // 503 from a member whose PostgreSQL is down, 502 from one that has not read the DCS config yet: ask another.
        if (r.status >= 500) {
          failures.push(`GET ${base}${path}: HTTP ${r.status}`);
          continue;
        }
        this.lastAnswered = base;
        return { base, ...r };
      } catch (e) {
        if (e instanceof PatroniApiError && e.failure === 'auth') throw this.authError(e);
        if (!(e instanceof PatroniApiError)) throw e;
        failures.push(e.message);
      }
    }
    throw new UserError(`the Patroni REST API does not answer: ${failures.join('; ')}`, {
      exitCode: 3,
      untouched: NOTHING_SENT,
      next: "check the target's patroni apiUrls (host:port of restapi.listen) and that Patroni runs there (curl http://HOST:8008/health), then run again",
    });
  }

  private authError(e: PatroniApiError): UserError {
    const vars = this.o.authVars ?? { username: 'PATRONI_RESTAPI_USERNAME', password: 'PATRONI_RESTAPI_PASSWORD' };
    return new UserError(
      `the Patroni REST API refused the request (${e.message}): ${this.auth ? 'the credentials were rejected' : 'it needs credentials and none were set'}`,
      {
        exitCode: 2,
        untouched: 'Patroni changed nothing: a refused request has no effect, and no member was touched',
        next: `set ${vars.username} and ${vars.password} in the environment to restapi.authentication of the Patroni config (403: also check restapi.allowlist), then run again`,
      },
    );
  }

  private async cluster(signal?: AbortSignal): Promise<ClusterDoc> {
    const r = await this.fromAnyMember('/cluster', signal);
    const doc = r.json as ClusterDoc | null;
    if (!doc || !Array.isArray(doc.members))
      throw new UserError(`GET ${r.base}/cluster did not return a Patroni cluster (HTTP ${r.status}): ${r.text.slice(0, 200)}`, {
        exitCode: 3,
        untouched: NOTHING_SENT,
        next: 'check that the address is a Patroni REST API',
      });
    for (const m of doc.members) if (m.api_url) this.apiByName.set(m.name, apiBase(m.api_url));
    return doc;
  }

  /** One member's GET /patroni, or null when it does not answer (a dead host, a stopped Patroni). */
  private async status(name: string, signal?: AbortSignal): Promise<MemberStatus | null> {
    const base = this.apiByName.get(name);
    if (!base) return null;
    try {
      const r = await callApi(base, '/patroni', { timeoutMs: this.timeoutMs, signal, auth: this.auth });
      return r.status === 200 ? (r.json as MemberStatus) : null;
    } catch (e) {
      if (e instanceof PatroniApiError && e.failure === 'auth') throw this.authError(e);
      if (e instanceof PatroniApiError) return null;
      throw e;
    }
  }

  failoverPlan(candidates: string[]): string {
    return `patroni: the members elect ${orList(candidates, 'a replica')} once the leader key expires (ttl), nobody promotes by hand`;
  }

  /** GET /config: each member answers from its cached view of the DCS, so a change shows within one loop_wait. */
  async settings(): Promise<Record<string, unknown>> {
    const r = await this.fromAnyMember('/config');
    const cfg = (r.json ?? {}) as Record<string, unknown> & { postgresql?: Record<string, unknown> };
    const picked: Record<string, unknown> = { provider: this.kind };
    const defaulted: string[] = [];
    for (const [k, d] of Object.entries(DCS_DEFAULTS)) {
      if (cfg[k] === undefined) defaulted.push(k);
      picked[k] = cfg[k] ?? d;
    }
    picked.synchronous_mode_strict = cfg.synchronous_mode_strict ?? false;
    picked.use_pg_rewind = cfg.postgresql?.use_pg_rewind ?? false;
    picked.remove_data_directory_on_rewind_failure = cfg.postgresql?.remove_data_directory_on_rewind_failure ?? false;
    picked.failover = this.o.force
      ? 'POST /failover to the candidate, then Patroni promotes it once the leader key expires'
      : "Patroni's own election once the leader key expires";
    if (defaulted.length > 0) picked.defaulted = defaulted;
    picked.source = `GET ${r.base}/config`;
    return picked;
  }

  /** PATCH /config: changes DCS settings (ttl, loop_wait, ...) for the whole cluster. Needs REST API credentials when Patroni has them. */
  async patchSettings(patch: Record<string, unknown>): Promise<Record<string, unknown>> {
    const doc = await this.cluster();
    const base = this.liveBase(doc);
    try {
      const r = await callApi(base, '/config', { method: 'PATCH', body: patch, auth: this.auth, timeoutMs: this.timeoutMs });
      if (r.status !== 200)
        throw new UserError(`PATCH ${base}/config: Patroni answered HTTP ${r.status} ${r.text.slice(0, 200)}`, {
          untouched: 'the DCS configuration is unchanged',
        });
      return r.json as Record<string, unknown>;
    } catch (e) {
      if (e instanceof PatroniApiError && e.failure === 'auth') throw this.authError(e);
      if (e instanceof PatroniApiError) {
        throw new UserError(`PATCH /config did not get an answer: ${e.message}`, {
          exitCode: 3,
          untouched: 'unknown: the change may or may not have reached the DCS',
          next: 'read GET /config on any member to see which settings are in force',
        });
      }
      throw e;
    }
  }

  private liveBase(doc: ClusterDoc): string {
    const leader = doc.members.find((m) => m.role === 'leader');
    return (leader && this.apiByName.get(leader.name)) ?? this.bases()[0]!;
  }

  async topology(signal?: AbortSignal): Promise<PatroniTopology> {
    const doc = await this.cluster(signal);
    const leader = doc.members.find(isLeader) ?? null;
    const statuses = new Map(await Promise.all(doc.members.map(async (m) => [m.name, await this.status(m.name, signal)] as const)));
    const leaderStatus = leader ? (statuses.get(leader.name) ?? null) : null;
    const leaderLsn = leaderStatus?.xlog?.location ?? null;
    if (leader) this.lastSeenLeader = leader.name;
    const primary: PgNode | null = leader
      ? {
          ...pgNode(leader),
          role: leaderStatus && isPrimaryRole(leaderStatus.role) && leaderStatus.state === 'running' ? 'primary' : 'unknown',
        }
      : null;
    const standbys = doc.members
      .filter((m) => m !== leader)
      .map((m) => {
        const st = statuses.get(m.name) ?? null;
        const role: PgNode['role'] = st?.role === 'replica' && st.state === 'running' ? 'standby' : 'unknown';
        return { ...pgNode(m), role, replication: replicationOf(m, st, leaderStatus, leaderLsn) };
      });
    const streaming = new Set(standbys.filter((x) => x.replication.streaming).map((x) => x.name));
    return {
      primary,
      standbys,
      members: doc.members.map((m) => ({
        name: m.name,
        role: m.role,
        // Patroni ≥ 3.0.4 says `streaming` itself; for 3.0.2 the leader's walsender tells the same.
        state: streaming.has(m.name) ? 'streaming' : m.state,
        timeline: statuses.get(m.name)?.timeline ?? m.timeline ?? null,
        lagBytes: typeof m.lag === 'number' ? m.lag : null,
        apiUrl: this.apiByName.get(m.name) ?? null,
      })),
      timeline: leaderStatus?.timeline ?? leader?.timeline ?? null,
    };
  }

  // ---- acting --------------------------------------------------------------------------------------

  async failover(options: FailoverOptions): Promise<PatroniFailoverResult> {
    const started = performance.now();
    this.failoverStartedMs = started;
    const startedAt = new Date().toISOString();
    const deadline = started + options.timeoutMs;
    const force = options.force ?? this.o.force ?? false;
    if (force && options.candidate === undefined) {
      throw new UserError('a forced Patroni failover needs a candidate: Patroni accepts POST /failover only to a named member', {
        untouched: NOTHING_SENT,
        next: 'name the replica to promote (candidate), or drop force to let Patroni elect one',
      });
    }
    const doc = await this.cluster(options.signal);
    const holder = doc.members.find(isLeader) ?? null;
    const holderStatus = holder ? await this.status(holder.name, options.signal) : null;

    // Every check below is read-only: a bad input leaves the cluster exactly as it was.
    if (holder && holderStatus && isPrimaryRole(holderStatus.role) && holderStatus.state === 'running') {
      // A live leader other than the one the steady-state probe saw: Patroni already failed over by itself.
      if (this.lastSeenLeader && holder.name !== this.lastSeenLeader) {
        return this.finish(holder, {
          started,
          startedAt,
          deadline,
          electedMs: started,
          forced: false,
          oldLeader: this.lastSeenLeader,
          signal: options.signal,
          how: `Patroni had already elected ${holder.name} after ${this.lastSeenLeader} died, before the provider was called`,
        });
      }
      throw new UserError(`the Patroni leader ${holder.name} is alive and holds the leader key: failover() acts after the primary died`, {
        untouched: NOTHING_SENT,
        next: "kill the leader first (the scenario's fault), or use `patronictl switchover` for a planned change of leader",
      });
    }
    if (options.candidate !== undefined) await this.checkCandidate(doc, holder, options.candidate, options.signal);
    const oldLeader = holder?.name ?? this.lastSeenLeader;

    // Filled in by the POST's callbacks while the loop below watches the cluster.
    const post: { refusal: Error | null; answer: string } = { refusal: null, answer: '' };
    if (force) {
      const base = this.apiByName.get(options.candidate!)!;
      // Patroni holds this request open until the new leader is in place (up to 20 s): watch the cluster meanwhile.
      void callApi(base, '/failover', {
        method: 'POST',
        body: { candidate: options.candidate },
        auth: this.auth,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
      }).then(
        (r) => {
          post.answer = `HTTP ${r.status} ${r.text}`;
          if (r.status >= 400 && r.status < 500)
            post.refusal = new UserError(`Patroni refused the failover to ${options.candidate}: HTTP ${r.status} ${r.text}`, {
              untouched: 'Patroni wrote no failover key; its own election still runs once the leader key expires',
              next: 'pick a candidate that is a healthy replica (GET /cluster), then run again',
            });
        },
        (e) => {
          if (e instanceof PatroniApiError && e.failure === 'auth') post.refusal = this.authError(e);
          else if (!options.signal.aborted) post.answer = (e as Error).message;
        },
      );
    }

    let last = `leader ${oldLeader ?? 'none'}`;
    for (;;) {
      if (post.refusal) throw post.refusal;
      if (performance.now() > deadline) throw await this.noLeaderError(options.timeoutMs, oldLeader, last);
      const view = await this.cluster(options.signal).catch((e) => (e instanceof UserError && e.exitCode === 3 ? null : Promise.reject(e)));
      const l = view?.members.find(isLeader) ?? null;
      last = view
        ? `leader ${l?.name ?? 'none'}; ${view.members.map((m) => `${m.name} ${m.role}/${m.state}`).join(', ')}`
        : 'no member answered GET /cluster';
      if (l && l.name !== oldLeader && l.state === 'running') {
        const how = force
          ? `POST /failover to ${options.candidate}; Patroni promoted ${l.name}${l.name === options.candidate ? '' : ' instead of the candidate'} once the leader key of ${oldLeader ?? '(none)'} expired`
          : `Patroni elected ${l.name} once the leader key of ${oldLeader ?? '(none)'} expired`;
        const r = await this.finish(l, {
          started,
          startedAt,
          deadline,
          electedMs: performance.now(),
          forced: force,
          oldLeader,
          signal: options.signal,
          how,
        });
        if (force) r.detail += ` (Patroni answered the POST: ${post.answer || 'not yet'})`;
        return r;
      }
      await sleep(this.pollMs, undefined, { signal: options.signal });
    }
  }

  /**
   * The new leader is named in the DCS: wait until it answers GET /primary (what HAProxy checks before it routes
   * to a member), repoint a caller's endpoint if there is one, and wait for the first accepted write.
   */
  private async finish(
    leader: ClusterMember,
    f: {
      started: number;
      startedAt: string;
      deadline: number;
      electedMs: number;
      forced: boolean;
      oldLeader: string | null;
      signal: AbortSignal;
      how: string;
    },
  ): Promise<PatroniFailoverResult> {
    const node: PgNode = { ...pgNode(leader), role: 'primary' };
    const routable = await this.waitRoutable(leader.name, f.deadline, f.signal);
    if (this.o.repoint) await this.o.repoint(node);
    const writable = await this.waitWritable(this.o.endpoint ?? node, f.deadline, f.signal);
    // GET /cluster carries the timeline of the member's last DCS update, from before its promotion: ask the member.
    const timeline = (await this.status(leader.name, f.signal))?.timeline ?? leader.timeline ?? null;
    this.lastSeenLeader = leader.name;
    const s = (ms: number) => `${((ms - f.started) / 1000).toFixed(2)} s`;
    return {
      newPrimary: node,
      startedAt: f.startedAt,
      writableAt: isoAt(writable),
      electedAt: isoAt(f.electedMs),
      routableAt: isoAt(routable),
      detail: `${f.how}; after the provider started: elected ${s(f.electedMs)}, GET /primary 200 ${s(routable)}, first write ${this.o.endpoint ? `through ${this.o.endpoint.host}:${this.o.endpoint.port} ` : ''}${s(writable)}`,
      oldLeader: f.oldLeader,
      forced: f.forced,
      timeline,
    };
  }

  /** Resolves with the performance.now() at which the member's GET /primary first answered 200. */
  private async waitRoutable(name: string, deadline: number, signal: AbortSignal): Promise<number> {
    const base = this.apiByName.get(name)!;
    let last = '';
    while (performance.now() < deadline) {
      const r = await callApi(base, '/primary', { timeoutMs: this.timeoutMs, signal, auth: this.auth }).catch((e: Error) => e);
      if (!(r instanceof Error) && r.status === 200) return performance.now();
      last = r instanceof Error ? r.message : `HTTP ${r.status}`;
      await sleep(this.pollMs, undefined, { signal });
    }
    signal.throwIfAborted();
    throw new FailoverTimeoutError(
      `new Patroni leader ${name} never answered GET ${base}/primary with 200 before the failover timed out (last: ${last}): a proxy checking it would not route there`,
      this.kind,
      Math.round(deadline - this.failoverStartedMs),
    );
  }

  private async checkCandidate(doc: ClusterDoc, leader: ClusterMember | null, candidate: string, signal?: AbortSignal): Promise<void> {
    const m = doc.members.find((x) => x.name === candidate);
    const names = doc.members.map((x) => `${x.name} (${x.role})`).join(', ');
    if (!m) {
      throw new UserError(`failover candidate ${candidate} is not a member of the Patroni cluster (members: ${names})`, {
        untouched: NOTHING_SENT,
        next: "name one of the cluster's replicas as the candidate",
      });
    }
    if (m === leader) {
      throw new UserError(`failover candidate ${candidate} is the leader, not a replica (members: ${names})`, {
        untouched: NOTHING_SENT,
        next: "name one of the cluster's replicas as the candidate",
      });
    }
    const st = await this.status(candidate, signal);
    if (!st) {
      throw new UserError(
        `failover candidate ${candidate} does not answer on its REST API (${this.apiByName.get(candidate) ?? 'no api_url'})`,
        { exitCode: 3, untouched: NOTHING_SENT, next: 'start Patroni on the candidate or name another replica' },
      );
    }
    if (st.role !== 'replica' || st.state !== 'running') {
      throw new UserError(`failover candidate ${candidate} is not a running replica (Patroni reports role ${st.role}, state ${st.state})`, {
        exitCode: st.role === 'replica' ? 3 : 2,
        untouched: NOTHING_SENT,
        next: 'name a replica that GET /cluster lists as running',
      });
    }
  }

  private async noLeaderError(timeoutMs: number, oldLeader: string | null, last: string): Promise<Error> {
    const s = await this.settings().catch(() => null);
    const timing = s ? ` (ttl ${s.ttl} s, loop_wait ${s.loop_wait} s, retry_timeout ${s.retry_timeout} s)` : '';
    return new FailoverTimeoutError(
      `Patroni elected no new leader within ${timeoutMs / 1000} s after ${oldLeader ?? 'the leader'} died${timing}; last seen: ${last}. ` +
        "A deadline shorter than ttl cannot be met; an old leader that holds the key longer than ttl still has a live Patroni (it restarts PostgreSQL in place); if no replica took the key, check maximum_lag_on_failover, nofailover tags and the replicas' Patroni logs",
      this.kind,
      timeoutMs,
    );
  }

  /** Resolves with the performance.now() of the first commit the node accepted. */
  private async waitWritable(node: { host: string; port: number; name?: string }, deadline: number, signal: AbortSignal): Promise<number> {
    let last = '';
    while (performance.now() < deadline) {
      signal.throwIfAborted();
      const client = new pg.Client({
        host: node.host,
        port: node.port,
        ...this.pgLogin,
        connectionTimeoutMillis: 1000,
        query_timeout: 2000,
      });
      try {
        await client.connect();
        // txid_current() assigns a transaction id: it fails on a server still in recovery, and its commit
        // waits for a synchronous standby like any write, without touching an application table.
        await client.query('SELECT txid_current()');
        return performance.now();
      } catch (e) {
        last = (e as Error).message;
      } finally {
        await client.end().catch(() => {});
      }
      await sleep(this.pollMs, undefined, { signal });
    }
    const what = node.name ? `new Patroni leader ${node.name}` : 'the endpoint';
    signal.throwIfAborted();
    throw new FailoverTimeoutError(
      `${what} (${node.host}:${node.port}) accepted no write before the failover timed out: ${last}`,
      this.kind,
      Math.round(deadline - this.failoverStartedMs),
    );
  }

  /** Until the leader runs as primary and its member key in the DCS carries its new timeline (what other members read). */
  private async waitLeaderPublished(deadline: number, signal: AbortSignal): Promise<void> {
    while (performance.now() < deadline) {
      const doc = await this.cluster(signal).catch(() => null);
      const l = doc?.members.find(isLeader) ?? null;
      const ls = l ? await this.status(l.name, signal) : null;
      if (l && ls && isPrimaryRole(ls.role) && ls.state === 'running' && l.timeline !== undefined && l.timeline === ls.timeline) return;
      await sleep(Math.max(this.pollMs, 200), undefined, { signal });
    }
  }

  async rejoin(node: PgNode, options: { timeoutMs: number; signal: AbortSignal }): Promise<string> {
    const started = performance.now();
    const deadline = started + options.timeoutMs;
    let doc = await this.cluster(options.signal);
    let leader = doc.members.find(isLeader) ?? null;
    // After a failover that timed out, the dead member still holds the leader key until it expires: Patroni's
    // election goes on, and the rejoin waits for it rather than calling the dead member the leader.
    while (
      leader?.name === node.name &&
      this.apiByName.has(node.name) &&
      !(await this.status(node.name, options.signal)) &&
      performance.now() < deadline
    ) {
      await sleep(Math.max(this.pollMs, 250), undefined, { signal: options.signal });
      doc = await this.cluster(options.signal);
      leader = doc.members.find(isLeader) ?? null;
    }
    if (leader?.name === node.name) {
      throw new UserError(`${node.name} is the Patroni leader: there is nothing to rejoin`, {
        untouched: NOTHING_SENT,
        next: 'rejoin the member that lost its leadership',
      });
    }
    if (!this.apiByName.has(node.name)) {
      throw new UserError(
        `${node.name} is not a member this provider has seen in the Patroni cluster (members: ${doc.members.map((m) => m.name).join(', ')})`,
        { untouched: NOTHING_SENT },
      );
    }
    let started_ = 'it was already running';
    if (!(await this.status(node.name, options.signal))) {
      // Patroni 3.0.2 decides on pg_rewind only against a leader whose member key says it is the primary: a
      // member started before the new leader published that skips the rewind and never streams.
      await this.waitLeaderPublished(deadline, options.signal);
      if (this.o.startMember) {
        await this.o.startMember(node.name);
        started_ = 'its Patroni was started again';
      } else {
        started_ = 'its Patroni was started by someone else (no startMember given)';
      }
    }
    let last = '';
    const memberStarted = performance.now();
    let rebuilt = '';
    // In synchronous_mode the pair is whole only once Patroni names the rejoined replica synchronous again (a loop later).
    const wantSync = (await this.settings().catch(() => null))?.synchronous_mode === true;
    while (performance.now() < deadline) {
      options.signal.throwIfAborted();
      if (!rebuilt && this.o.reinitializeAfterMs !== undefined && performance.now() - memberStarted > this.o.reinitializeAfterMs) {
        const r = await callApi(this.apiByName.get(node.name)!, '/reinitialize', {
          method: 'POST',
          body: { force: true },
          auth: this.auth,
          timeoutMs: this.timeoutMs,
          signal: options.signal,
        }).catch((e: Error) => e);
        rebuilt = `not streaming ${(this.o.reinitializeAfterMs / 1000).toFixed(0)} s after its Patroni started (${last}), so POST /reinitialize: ${r instanceof Error ? r.message : `HTTP ${r.status} ${r.text.slice(0, 100)}`}`;
      }
      const view = await this.cluster(options.signal).catch(() => null);
      const l = view?.members.find(isLeader) ?? null;
      const [st, ls] = await Promise.all([this.status(node.name, options.signal), l ? this.status(l.name, options.signal) : null]);
      const sender = ls?.replication?.find((r) => r.application_name === node.name);
      // GET /replica answers 200 once a proxy's replica pool would take the member back.
      const replicaCheck =
        st?.role === 'replica'
          ? await callApi(this.apiByName.get(node.name)!, '/replica', {
              timeoutMs: this.timeoutMs,
              signal: options.signal,
              auth: this.auth,
            }).then(
              (r) => r.status,
              () => 0,
            )
          : 0;
      last = `leader ${l?.name ?? 'none'} timeline ${ls?.timeline ?? '?'}; ${node.name} ${st ? `${st.role}/${st.state} timeline ${st.timeline ?? '?'}` : 'not answering'}; walsender ${sender?.state ?? 'none'}${sender ? ` (${sender.sync_state})` : ''}; GET /replica ${replicaCheck || 'no answer'}`;
      if (
        l &&
        ls &&
        st?.role === 'replica' &&
        st.state === 'running' &&
        st.timeline === ls.timeline &&
        sender?.state === 'streaming' &&
        (!wantSync || sender.sync_state === 'sync') &&
        replicaCheck === 200
      ) {
        const cfg = await this.settings().catch(() => null);
        const how = rebuilt
          ? `Patroni rebuilt it from the leader (${rebuilt})`
          : `Patroni brought its data back in line (use_pg_rewind ${cfg?.use_pg_rewind ?? '?'}, remove_data_directory_on_rewind_failure ${cfg?.remove_data_directory_on_rewind_failure ?? '?'})`;
        return `${node.name} rejoined as a streaming replica of ${l.name} on timeline ${ls.timeline} after ${((performance.now() - started) / 1000).toFixed(1)} s: ${started_}, and ${how}`;
      }
      await sleep(Math.max(this.pollMs, 250), undefined, { signal: options.signal });
    }
    throw new Error(
      `${node.name} did not come back as a streaming replica within ${options.timeoutMs / 1000} s (${started_}); last seen: ${last}. ` +
        (this.o.startMember
          ? 'Read its Patroni log: a failed pg_rewind shows there'
          : `Start Patroni on ${node.name}'s host (systemctl start patroni) and run the rollback again (drill recover)`),
    );
  }
}

function isoAt(perfMs: number): string {
  return new Date(performance.timeOrigin + perfMs).toISOString();
}

function isLeader(m: ClusterMember): boolean {
  return m.role === 'leader' || m.role === 'standby_leader';
}

function isPrimaryRole(role: string): boolean {
  return role === 'master' || role === 'primary';
}

function pgNode(m: ClusterMember): PgNode {
  return { name: m.name, host: m.host ?? '', port: m.port ?? 5432, role: 'unknown' };
}

function replicationOf(
  m: ClusterMember,
  st: MemberStatus | null,
  leaderStatus: MemberStatus | null,
  leaderLsn: number | null,
): ReplicationState {
  const sender = leaderStatus?.replication?.find((r) => r.application_name === m.name) ?? null;
  // Patroni 3.0.2 lists replicas as `running` whether they stream or not: the leader's walsender is the proof.
  const streaming = sender?.state === 'streaming' || m.state === 'streaming' || st?.replication_state === 'streaming';
  const replayed = st?.xlog?.replayed_location;
  const lagBytes =
    leaderLsn !== null && typeof replayed === 'number' ? Math.max(0, leaderLsn - replayed) : typeof m.lag === 'number' ? m.lag : null;
  const ts = st?.xlog?.replayed_timestamp;
  const replayLagMs = lagBytes === 0 ? 0 : ts ? Math.max(0, Date.now() - Date.parse(ts.replace(' ', 'T'))) : null;
  const mode = sender
    ? sender.sync_state === 'sync'
      ? 'sync'
      : sender.sync_state === 'quorum'
        ? 'quorum'
        : 'async'
    : m.role === 'sync_standby'
      ? 'sync'
      : 'unknown';
  return { streaming, replayLagMs, lagBytes, mode };
}
