import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLabReplicas } from '../../lib/targets/lab/replicas.ts';
import { matchesSelector, parseSelector } from '../../lib/adapters/selector.ts';
import { isProcessUnder, procState } from '../../lib/util/proc.ts';
import type { ReplicaSetAdapter } from '../../lib/adapters/types.ts';
import { labDown, labEvents, labStatus, labUp, scaleReplicas, type LabEvent, type LabInfo } from '../../lib/lab/index.ts';
import { makeTempDir, type TempDir } from '../support/tmp.ts';

const SEL = 'app=orders';

/** The daemon's record of a replica's exit; kill() resolves when the process is gone, possibly before the daemon reaped it. */
async function exitEvent(controlUrl: string, name: string): Promise<LabEvent | undefined> {
  const t0 = performance.now();
  for (;;) {
    const e = (await labEvents(controlUrl)).find((x) => x.type === 'exited' && x.name === name);
    // 2 s for the daemon to reap an exit it already saw happen; the caller asserts on what comes back.
    if (e || performance.now() - t0 > 2000) return e;
    await new Promise((r) => setTimeout(r, 20));
  }
}
const opts = (timeoutMs: number, signal = new AbortController().signal) => ({ timeoutMs, signal });

test('label selectors: equality, inequality, set and existence, comma-joined', () => {
  const labels = { app: 'orders', tier: 'web' };
  const yes = [
    '',
    'app=orders',
    'app==orders',
    'app=orders,tier=web',
    'tier in (web, api)',
    'tier notin (db)',
    'app',
    '!zone',
    'app!=payments',
    ' app = orders , tier in (web) ',
  ];
  const no = ['app=payments', 'app!=orders', 'tier in (api,db)', 'tier notin (web)', 'zone', '!app', 'app=orders,tier=db'];
  for (const s of yes) assert.equal(matchesSelector(labels, parseSelector(s)), true, s);
  for (const s of no) assert.equal(matchesSelector(labels, parseSelector(s)), false, s);
  assert.deepEqual(parseSelector('k in (a,b),x!=y'), [
    { key: 'k', op: 'in', values: ['a', 'b'] },
    { key: 'x', op: '!=', values: ['y'] },
  ]);
  // `app=` is valid, as in Kubernetes: it matches an empty value.
  assert.equal(matchesSelector({ app: '' }, parseSelector('app=')), true);
  for (const bad of ['=orders', 'app=orders,', 'tier in (web', 'a b c', 'app=or ders']) {
    assert.throws(() => parseSelector(bad), /label selector/, bad);
  }
});

describe('ReplicaSetAdapter conformance: lab', { timeout: 90_000 }, () => {
  let tmp: TempDir;
  let dir: string;
  let info: LabInfo;
  let rs: ReplicaSetAdapter;
  const seen = new Set<number>();

  before(async () => {
    tmp = await makeTempDir('labrs');
    dir = join(tmp.path, 'lab');
    info = await labUp({ dir, replicas: 3 });
    rs = createLabReplicas(info);
  });

  after(async () => {
    try {
      for (const r of (await labStatus({ dir })).replicas) if (r.pid) seen.add(r.pid);
      await labDown({ dir });
    } finally {
      for (const pid of seen) if (await isProcessUnder(pid, dir)) process.kill(pid, 'SIGKILL');
      await tmp.remove();
    }
  });

  test('where names the lab; list and status follow the selector', async () => {
    assert.equal(rs.where, `lab:${dir}`);
    const all = await rs.list(SEL);
    all.forEach((r) => seen.add(r.pid!));
    assert.equal(all.length, 3);
    for (const r of all) {
      assert.equal(r.owner, 'orders');
      assert.equal(r.ready, true);
      assert.ok(!Number.isNaN(Date.parse(r.startedAt)));
      // readyAt: when its readiness probe first passed, on the millisecond clock, never before it started.
      assert.ok(Date.parse(r.readyAt!) >= Date.parse(r.startedAt), `${r.name} started ${r.startedAt}, ready ${r.readyAt}`);
      assert.deepEqual(Object.keys(r).sort(), ['labels', 'name', 'owner', 'pid', 'ready', 'readyAt', 'startedAt']);
    }
    assert.equal((await rs.list('app=orders,tier in (web)')).length, 3);
    assert.deepEqual(await rs.list('app=payments'), []);
    assert.deepEqual(await rs.status(SEL), { owner: 'orders', desired: 3, ready: 3, replicas: all });
    assert.deepEqual(await rs.status('app=payments'), { owner: '', desired: 0, ready: 0, replicas: [] });
    await assert.rejects(rs.list('app in (orders'), /unbalanced/);
  });

  test('kill with grace 0 is a SIGKILL; waitReady with `gone` waits for the replacement', async (t) => {
    const [victim] = await rs.list(SEL);
    const t0 = performance.now();
    await rs.kill(victim!, { gracePeriodMs: 0 });
    assert.notEqual(await procState(victim!.pid!), 'alive', 'gone when kill resolves');
    // 8 s: the replacement is a new node process (tsx import, database pool, readiness probe), about 0.5-1 s
    // idle and several times that on a loaded 2-core machine. Only the time the wait may take, not a claim
    // about it: the diagnostic below prints how long it took.
    const st = await rs.waitReady(SEL, { ...opts(8000), gone: [victim!.name] });
    const ms = performance.now() - t0;
    st.replicas.forEach((r) => seen.add(r.pid!));
    t.diagnostic(`kill -> ready again ${ms.toFixed(0)} ms`);
    assert.equal(st.ready, 3);
    assert.ok(!st.replicas.some((r) => r.name === victim!.name));
    assert.equal((await exitEvent(info.controlUrl, victim!.name))?.signal, 'SIGKILL');
  });

  test('kill with a grace period sends SIGTERM and the replica drains and exits on its own', async () => {
    const [victim] = await rs.list(SEL);
    const t0 = performance.now();
    await rs.kill(victim!, { gracePeriodMs: 5000 });
    // The replica drains (no requests in flight here) and exits in tens of ms; 4 s is 1 s short of the grace
    // period, after which kill() would SIGKILL (and the exit below would not be clean).
    assert.ok(performance.now() - t0 < 4000, 'exited well within the grace period');
    const exited = await exitEvent(info.controlUrl, victim!.name);
    assert.deepEqual([exited?.code, exited?.signal], [0, null], 'clean exit after SIGTERM, not a SIGKILL');
    // 8 s, as after the SIGKILL above: a new replica process on a loaded machine.
    (await rs.waitReady(SEL, { ...opts(8000), gone: [victim!.name] })).replicas.forEach((r) => seen.add(r.pid!));
  });

  test('kill refuses a PID that is not a process of this lab', async () => {
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const fake = {
        name: 'orders-x-1',
        labels: { app: 'orders' },
        pid: stranger.pid!,
        ready: true,
        startedAt: new Date().toISOString(),
        owner: 'orders',
      };
      await assert.rejects(
        rs.kill(fake, { gracePeriodMs: 0 }),
        new RegExp(`lab:${dir}: replica orders-x-1 \\(pid ${stranger.pid}\\) is not running: nothing was killed`),
      );
      assert.equal(await procState(stranger.pid!), 'alive');
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  test('waitReady times out with ready/desired and what is missing, and honours abort', async () => {
    const [keep] = await rs.list(SEL);
    const t0 = performance.now();
    await assert.rejects(
      rs.waitReady(SEL, { ...opts(300), gone: [keep!.name] }),
      new RegExp(`^Error: lab:${dir}: app=orders: 3/3 ready after 300 ms; still ready though meant to be gone: ${keep!.name}$`),
    );
    const took = performance.now() - t0;
    // At least the 300 ms asked for (less Node's up-to-1 ms early timer). At most 300 ms plus two long-poll
    // round trips to the daemon on a loaded machine; kept under 1000 ms (not the 1500 the audit offered)
    // because a wait that ignores its deadline for one long poll (the daemon holds each for up to 1000 ms)
    // takes over 1000 ms, and that is the regression this bound is for.
    assert.ok(took >= 290 && took < 1000, `timed out on time (${took.toFixed(0)} ms)`);

    const ac = new AbortController();
    const waiting = rs.waitReady(SEL, { timeoutMs: 10_000, signal: ac.signal, gone: [keep!.name] });
    const t1 = performance.now();
    setTimeout(() => ac.abort(new Error('stop now')), 100);
    await assert.rejects(waiting, /stop now/);
    // The abort fires at 100 ms and cancels the long poll in flight at once. 100 + 600 ms for timer lateness
    // on a loaded machine, and under 1000 ms: a wait that notices the abort only when its current long poll
    // returns (up to 1000 ms) fails it.
    const aborted = performance.now() - t1;
    assert.ok(aborted < 100 + 600, `abort ends the wait promptly (${aborted.toFixed(0)} ms)`);
  });

  test('ensureDesired restores the declared count after a scale to zero', async () => {
    await scaleReplicas(info.controlUrl, 0);
    // 5 s: three replicas drain and exit on SIGTERM (tens of ms each); only how long the wait may take.
    const down = await rs.waitReady(SEL, opts(5000));
    assert.deepEqual([down.desired, down.ready], [0, 0]);
    const r = await fetch(`${info.serviceUrl}/orders`);
    assert.equal(r.status, 503, 'the front has no replica to send to');
    assert.deepEqual(await r.json(), { error: 'no ready replica' });
    // 8 s: three new replica processes starting at once on a loaded 2-core machine (see the SIGKILL test).
    const up = await rs.ensureDesired(SEL, opts(8000));
    up.replicas.forEach((r) => seen.add(r.pid!));
    assert.deepEqual([up.desired, up.ready, up.replicas.length], [3, 3, 3]);
  });
});
