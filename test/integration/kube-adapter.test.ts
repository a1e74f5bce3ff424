/**
 * The Kubernetes ReplicaSetAdapter against the Kubernetes-API-compatible test server: conformance to the
 * ReplicaSetAdapter contract, guardrails that refuse before any call, watch recovery after 410 and dropped
 * streams, and errors that explain themselves.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createKubeReplicas,
  KubeError,
  KubeGuardrailError,
  kubeConfigFor,
  kubeConfigFromFile,
  type KubeReplicasOptions,
} from '../../lib/adapters/kubernetes/index.ts';
import { UserError } from '../../lib/errors.ts';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { deployment, namespace, startKubeApi, statefulSet, type KubeApi, type KubeApiOptions } from '../support/kube-api/index.ts';
import { makeTempDir } from '../support/tmp.ts';

async function server(t: TestContext, options: KubeApiOptions = {}): Promise<KubeApi> {
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders', tier: 'web' } })],
    readyDelayMs: 80,
    replaceDelayMs: 80,
    shutdownMs: 150,
    ...options,
  });
  t.after(() => api.stop());
  return api;
}

function adapter(api: KubeApi, options: Partial<KubeReplicasOptions> & { token?: string } = {}) {
  const { token, ...rest } = options;
  return createKubeReplicas({
    kubeConfig: kubeConfigFor({ url: api.url, token }),
    namespace: 'prod',
    allowedNamespaces: ['prod', 'staging'],
    blastRadius: 2,
    ...rest,
  });
}

const never = new AbortController().signal;

function deletes(api: KubeApi): number {
  return api.state.requests.filter((r) => r.method === 'DELETE').length;
}

function livePods(api: KubeApi, ns = 'prod'): string[] {
  return api.state
    .list('pods', ns)
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name!)
    .sort();
}

test('list: pods matching a selector, with readiness, start time and owning Deployment', async (t) => {
  const api = await server(t, {
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders', tier: 'web' } }),
      deployment({ name: 'billing', namespace: 'prod', replicas: 1 }),
    ],
  });
  const kube = adapter(api);
  assert.equal(kube.where, 'kube:drill/prod');
  const replicas = await kube.list('app=orders,tier=web');
  assert.deepEqual(
    replicas.map((r) => r.name).sort(),
    api.state
      .list('pods', 'prod', 'app=orders')
      .map((p) => p.metadata.name)
      .sort(),
  );
  for (const r of replicas) {
    assert.equal(r.owner, 'deployment/orders');
    assert.equal(r.ready, true);
    assert.equal(r.pid, undefined);
    assert.equal(r.labels.app, 'orders');
    // The pod's own start (status.startTime), not its creation: the server stamps seeded pods with distinct start
    // times minutes before their creationTimestamp, so a view that read the wrong field would differ here.
    const pod = api.state.get('pods', 'prod', r.name)!;
    assert.equal(r.startedAt, new Date(pod.status.startTime).toISOString());
    assert.notEqual(pod.status.startTime, pod.metadata.creationTimestamp);
  }
  assert.deepEqual(await kube.list('app=nothing'), []);
});

test('kill with grace 0 removes the pod at once; waitReady with `gone` resolves on the replacement', async (t) => {
  // A replacement delay longer than three API calls take on a loaded machine, so "right after the kill" is honest.
  const api = await server(t, { replaceDelayMs: 1000 });
  const kube = adapter(api);
  const [victim] = await kube.list('app=orders');
  const t0 = performance.now();
  await kube.kill(victim!, { gracePeriodMs: 0 });
  assert.equal(api.state.get('pods', 'prod', victim!.name), undefined);

  const podLists = () => api.state.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length;
  const listsBefore = podLists();
  const right = await kube.status('app=orders');
  assert.equal(right.desired, 3);
  assert.ok(right.ready < 3, `right after the kill at most 2 are ready, status said ${right.ready}`);

  const s = await kube.waitReady('app=orders', { timeoutMs: 5000, signal: never, gone: [victim!.name] });
  const took = performance.now() - t0;
  assert.deepEqual([s.owner, s.desired, s.ready], ['deployment/orders', 3, 3]);
  assert.ok(!s.replicas.some((r) => r.name === victim!.name), 'the killed pod is not among the replicas');
  assert.equal(s.replicas.filter((r) => r.ready).length, 3);
  // From the kill: replacement 1000 ms after the delete plus Ready 80 ms later = 1080 ms of the server's timers
  // (never less); a watch sees it within the event's delivery. 1200 ms more covers the kill, the status() read and
  // a loaded 2-core machine. A wait that polled every few seconds lands past 2280 ms (a 4 s poll: ~4 s).
  assert.ok(took > 1080 && took < 2280, `ready ${Math.round(took)} ms after the kill`);
  // Watched, not polled: status() lists pods to resolve the workload, again by the Deployment's own selector
  // (app=orders,tier=web) and once for the informer it keeps; waitReady() lists once to resolve and once for its
  // informer; nothing more in the ~1.1 s of waiting (a 4 s poll would also fail the bound above).
  assert.equal(podLists() - listsBefore, 5, 'pod lists by status() and waitReady()');
});

test('kill with a grace period leaves the pod Terminating, not ready, until its container exits', async (t) => {
  const api = await server(t, { shutdownMs: 600 });
  const kube = adapter(api);
  const [victim] = await kube.list('app=orders');
  await kube.kill(victim!, { gracePeriodMs: 30_000 });
  const pod = api.state.get('pods', 'prod', victim!.name)!;
  assert.ok(pod.metadata.deletionTimestamp, 'marked for deletion');
  assert.equal(pod.metadata.deletionGracePeriodSeconds, 30);
  const seen = (await kube.list('app=orders')).find((r) => r.name === victim!.name);
  assert.equal(seen?.ready, false, 'a terminating pod does not count as ready');

  const s = await kube.waitReady('app=orders', { timeoutMs: 5000, signal: never, gone: [victim!.name] });
  assert.equal(s.ready, 3);
  await api.state.waitFor(() => !api.state.get('pods', 'prod', victim!.name), 'the terminating pod to go', 3000);
  const grace = api.state.requests.find((r) => r.method === 'DELETE');
  assert.ok(grace?.query.includes('gracePeriodSeconds=30'), `the delete carried the grace period: ${grace?.query}`);
});

test('status and ensureDesired: desired from the Deployment, ready from it and its pods', async (t) => {
  const api = await server(t);
  const kube = adapter(api);
  const s = await kube.status('app=orders');
  assert.deepEqual([s.owner, s.desired, s.ready, s.replicas.length], ['deployment/orders', 3, 3, 3]);
  const [a, b] = await kube.list('app=orders');
  await kube.kill(a!, { gracePeriodMs: 0 });
  await kube.kill(b!, { gracePeriodMs: 0 });
  const back = await kube.ensureDesired('app=orders', { timeoutMs: 5000, signal: never });
  assert.deepEqual([back.desired, back.ready], [3, 3]);
  assert.deepEqual(
    back.replicas.map((r) => r.name).sort(),
    livePods(api).filter((n) => n !== a!.name && n !== b!.name),
  );
  // The workload is whole again, so the blast-radius budget is free for the next action.
  const [c] = await kube.list('app=orders');
  await kube.kill(c!, { gracePeriodMs: 0 });
  assert.equal(api.state.get('pods', 'prod', c!.name), undefined);
});

test('a pod already gone is not a failed kill', async (t) => {
  const api = await server(t);
  const kube = adapter(api);
  const [victim] = await kube.list('app=orders');
  await fetch(`${api.url}/api/v1/namespaces/prod/pods/${victim!.name}`, {
    method: 'DELETE',
    body: JSON.stringify({ gracePeriodSeconds: 0 }),
  });
  await kube.kill(victim!, { gracePeriodMs: 0 });
  const last = api.state.requests.filter((r) => r.method === 'DELETE').at(-1)!;
  assert.equal(last.status, 404, 'the adapter did ask, and the API said not found');
});

test("StatefulSet: the replacement has the killed pod's name; waitReady tells them apart by uid", async (t) => {
  const api = await server(t, { objects: [namespace('prod'), statefulSet({ name: 'pg', namespace: 'prod', replicas: 2 })] });
  const kube = adapter(api);
  const replicas = await kube.list('app=pg');
  assert.deepEqual(
    replicas.map((r) => [r.name, r.owner]),
    [
      ['pg-0', 'statefulset/pg'],
      ['pg-1', 'statefulset/pg'],
    ],
  );
  const before = api.state.get('pods', 'prod', 'pg-1')!.metadata.uid;
  await kube.kill(replicas[1]!, { gracePeriodMs: 0 });
  const s = await kube.waitReady('app=pg', { timeoutMs: 5000, signal: never, gone: ['pg-1'] });
  assert.deepEqual([s.owner, s.ready, s.desired], ['statefulset/pg', 2, 2]);
  assert.notEqual(api.state.get('pods', 'prod', 'pg-1')!.metadata.uid, before);
});

test('a killed pod held by a finalizer stays Terminating: the StatefulSet replacement waits and the timeout names what holds it', async (t) => {
  const api = await server(t, { objects: [namespace('prod'), statefulSet({ name: 'pg', namespace: 'prod', replicas: 2 })] });
  const kube = adapter(api);
  const core = kubeConfigFor({ url: api.url }).makeApiClient(CoreV1Api);
  // Two strategic merge patches: ObjectMeta.finalizers has patchStrategy merge, so the second adds to the first.
  for (const f of ['drill.test/hold', 'drill.test/audit']) {
    await core.patchNamespacedPod(
      { name: 'pg-1', namespace: 'prod', body: { metadata: { finalizers: [f] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }
  assert.deepEqual(api.state.get('pods', 'prod', 'pg-1')!.metadata.finalizers, ['drill.test/hold', 'drill.test/audit']);
  const before = api.state.get('pods', 'prod', 'pg-1')!.metadata.uid;
  const [, victim] = await kube.list('app=pg');
  await kube.kill(victim!, { gracePeriodMs: 0 });
  // Grace 0 with finalizers: the object stays, marked for deletion; its containers stop, so it turns not Ready.
  await api.state.waitFor(() => {
    const p = api.state.get('pods', 'prod', 'pg-1');
    return p?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status === 'False';
  }, 'pg-1 not Ready once its containers stopped');
  const held = api.state.get('pods', 'prod', 'pg-1')!;
  assert.equal(held.metadata.uid, before, 'the same pod, not a replacement');
  assert.ok(held.metadata.deletionTimestamp);
  assert.equal(held.metadata.deletionGracePeriodSeconds, 0);
  assert.equal(held.status.containerStatuses[0].state.terminated.reason, 'Completed');

  await assert.rejects(kube.ensureDesired('app=pg', { timeoutMs: 800, signal: never }), (e: unknown) => {
    assert.ok(e instanceof KubeError, String(e));
    assert.equal(e.reason, 'Timeout');
    assert.equal(
      e.message,
      'timed out after 0.8s waiting for statefulset/pg in namespace "prod" to be ready (1/2 ready; killed pods still terminating: pg-1 (finalizers: drill.test/hold, drill.test/audit))',
    );
    return true;
  });
  assert.equal(api.state.get('pods', 'prod', 'pg-1')!.metadata.uid, before, 'the replacement waited for the name');

  // Strategic merge's $deleteFromPrimitiveList drops one finalizer (apimachinery strategicpatch); one still holds it.
  await core.patchNamespacedPod(
    { name: 'pg-1', namespace: 'prod', body: { metadata: { '$deleteFromPrimitiveList/finalizers': ['drill.test/audit'] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  assert.deepEqual(api.state.get('pods', 'prod', 'pg-1')!.metadata.finalizers, ['drill.test/hold']);
  assert.equal(api.state.get('pods', 'prod', 'pg-1')!.metadata.uid, before, 'still held');
  // Removing the last finalizer lets the pod go; the replacement (same name, new uid) comes and the wait resolves.
  const waiting = kube.ensureDesired('app=pg', { timeoutMs: 5000, signal: never });
  await core.patchNamespacedPod(
    { name: 'pg-1', namespace: 'prod', body: { metadata: { finalizers: null } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const s = await waiting;
  assert.deepEqual([s.owner, s.ready, s.desired], ['statefulset/pg', 2, 2]);
  assert.notEqual(api.state.get('pods', 'prod', 'pg-1')!.metadata.uid, before);
});

test('waitReady resumes after a dropped stream and re-lists after a 410 Expired', async (t) => {
  // A long replacement delay keeps the wait open while the faults happen.
  const api = await server(t, { replaceDelayMs: 1500 });
  const kube = adapter(api);
  const [victim] = await kube.list('app=orders');
  await kube.kill(victim!, { gracePeriodMs: 0 });
  const podLists = () => api.state.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length;
  const podWatchesEnded = () => api.state.requests.filter((r) => r.verb === 'watch' && r.resource === 'pods').length;
  const waiting = kube.waitReady('app=orders', { timeoutMs: 8000, signal: never, gone: [victim!.name] });

  await until(
    () => api.state.openWatches('pods') === 1 && api.state.openWatches('deployments') === 1,
    3000,
    'the adapter to open its two watches',
  );
  const listsBefore = podLists();
  api.faults.dropWatches();
  await until(() => podWatchesEnded() === 1 && api.state.openWatches('pods') === 1, 3000, 'the pod watch to reopen after the drop');
  assert.equal(podLists(), listsBefore, 'a dropped stream resumes from the last resourceVersion without a re-list');

  api.faults.expireNextWatch('pods');
  api.faults.dropWatches();
  await until(() => podLists() === listsBefore + 1 && api.state.openWatches('pods') === 1, 3000, 'a re-list and a new watch after the 410');

  const s = await waiting;
  assert.deepEqual([s.ready, s.desired], [3, 3]);
  assert.ok(!s.replicas.some((r) => r.name === victim!.name), 'the killed pod is not among the replicas');
  const watches = api.state.requests.filter((r) => r.verb === 'watch');
  assert.ok(watches.length >= 4, `${watches.length} watch streams ended`);
  assert.ok(
    watches.every((w) => /resourceVersion=\d+/.test(w.query)),
    'every watch starts from a listed or seen resourceVersion',
  );
});

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('waitReady times out with a message that says what it saw, and honours abort', async (t) => {
  const api = await server(t, { replaceDelayMs: 60_000 });
  const kube = adapter(api);
  const [victim] = await kube.list('app=orders');
  await kube.kill(victim!, { gracePeriodMs: 0 });
  const t0 = performance.now();
  await assert.rejects(kube.waitReady('app=orders', { timeoutMs: 700, signal: never, gone: [victim!.name] }), (e: unknown) => {
    assert.ok(e instanceof KubeError, String(e));
    assert.equal(e.reason, 'Timeout');
    assert.equal(e.message, 'timed out after 0.7s waiting for deployment/orders in namespace "prod" to be ready (2/3 ready)');
    return true;
  });
  const took = performance.now() - t0;
  // The 700 ms budget, plus 800 ms for timers on a loaded 2-core machine.
  assert.ok(took >= 690 && took < 1500, `timed out after ${took} ms`);
  // No polling: the adapter's first list(), then one list of pods to resolve the workload and one per informer
  // (pods, deployments) to start its watch from.
  const lists = api.state.requests.filter((r) => r.verb === 'list').length;
  assert.equal(lists, 4, `list requests in 0.7 s: ${lists}`);

  const ac = new AbortController();
  const waiting = kube.waitReady('app=orders', { timeoutMs: 30_000, signal: ac.signal });
  setTimeout(() => ac.abort(new Error('drill aborted by SIGINT')), 200);
  await assert.rejects(waiting, /drill aborted by SIGINT/);
});

test('RBAC: a refused delete names the verb, resource, namespace and the Role rule needed', async (t) => {
  const api = await server(t, {
    // No replacement during the test: the wait below must still be waiting when its watch is refused.
    replaceDelayMs: 60_000,
    tokens: {
      'drill-token': {
        user: 'system:serviceaccount:drill:drill',
        rules: [
          { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'], namespaces: ['prod'] },
          {
            verbs: ['get', 'list', 'watch'],
            apiGroups: ['apps'],
            resources: ['deployments', 'replicasets', 'statefulsets'],
            namespaces: ['prod'],
          },
        ],
      },
      'admin-token': { user: 'kubernetes-admin', rules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }] },
      'list-only': {
        user: 'system:serviceaccount:drill:reader',
        rules: [
          { verbs: ['get', 'list'], apiGroups: ['', 'apps'], resources: ['pods', 'deployments', 'replicasets'], namespaces: ['prod'] },
        ],
      },
    },
  });
  const kube = adapter(api, { token: 'drill-token' });
  const [victim] = await kube.list('app=orders');
  await assert.rejects(kube.kill(victim!, { gracePeriodMs: 0 }), (e: unknown) => {
    assert.ok(e instanceof KubeError, String(e));
    assert.deepEqual([e.status, e.reason, e.verb, e.resource, e.namespace], [403, 'Forbidden', 'delete', 'pods', 'prod']);
    assert.match(e.message, /^not allowed to delete pods "orders-[a-z0-9]+-[a-z0-9]+" in namespace "prod" \(403 Forbidden: /);
    assert.ok(
      e.message.includes(`User "system:serviceaccount:drill:drill" cannot delete resource "pods" in API group "" in the namespace "prod"`),
      e.message,
    );
    assert.ok(e.message.endsWith(`in namespace "prod":\n- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["delete"]`), e.message);
    return true;
  });
  assert.ok(api.state.get('pods', 'prod', victim!.name), 'nothing was deleted');

  // Allowed to list but not to watch: a wait that has to wait fails at once with the rule for watch, it does not poll instead.
  const admin = { authorization: 'Bearer admin-token' };
  await fetch(`${api.url}/api/v1/namespaces/prod/pods/${victim!.name}`, {
    method: 'DELETE',
    headers: admin,
    body: '{"gracePeriodSeconds":0}',
  });
  const listOnly = adapter(api, { token: 'list-only' });
  await assert.rejects(listOnly.waitReady('app=orders', { timeoutMs: 5000, signal: never }), (e: unknown) => {
    assert.ok(e instanceof KubeError, String(e));
    assert.deepEqual([e.status, e.verb], [403, 'watch']);
    assert.match(e.message, /^not allowed to watch (pods|deployments) in namespace "prod" \(403 Forbidden\)/);
    assert.match(e.message, /verbs: \["watch"\]$/);
    return true;
  });

  const stranger = adapter(api, { token: 'expired-token' });
  await assert.rejects(
    stranger.list('app=orders'),
    (e: unknown) =>
      e instanceof KubeError &&
      e.status === 401 &&
      /did not accept the credentials \(401 Unauthorized\) to list pods in namespace "prod"/.test(e.message),
  );
});

test('guardrails: kube-system and namespaces outside the allowlist are refused before any call', async (t) => {
  const api = await server(t);
  const before = api.state.requests.length;
  assert.throws(
    () => adapter(api, { namespace: 'kube-system', allowedNamespaces: ['prod', 'kube-system'] }),
    (e: unknown) => {
      assert.ok(e instanceof KubeGuardrailError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /namespace "kube-system" is never a drill target/);
      return true;
    },
  );
  assert.throws(
    () => adapter(api, { namespace: 'payments' }),
    /namespace "payments" is not in the target's allowed namespaces \(prod, staging\)/,
  );
  assert.equal(api.state.requests.length, before, 'no request reached the API server');
});

test('guardrails: more pods than the blast radius in one action are refused, nothing deleted', async (t) => {
  const api = await server(t);
  const kube = adapter(api, { blastRadius: 2 });
  const pods = livePods(api);
  const all = await kube.list('app=orders');
  await assert.rejects(kube.killAll(all, { gracePeriodMs: 0 }), (e: unknown) => {
    assert.ok(e instanceof KubeGuardrailError, String(e));
    assert.equal(
      e.message,
      'refusing to delete 3 pods in namespace "prod": the blast radius is 2 and 0 were already deleted since the workload was last whole',
    );
    return true;
  });
  assert.equal(deletes(api), 0);
  assert.deepEqual(livePods(api), pods);

  // One at a time the cap still holds: the third kill before the workload is whole again is refused.
  await kube.kill(all[0]!, { gracePeriodMs: 0 });
  await kube.kill(all[1]!, { gracePeriodMs: 0 });
  await assert.rejects(kube.kill(all[2]!, { gracePeriodMs: 0 }), KubeGuardrailError);
  assert.equal(deletes(api), 2);
  assert.ok(api.state.get('pods', 'prod', all[2]!.name), 'the third pod was not deleted');
});

test('selectors that match nothing or more than one workload are refused with what to fix', async (t) => {
  const api = await server(t, {
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 2, labels: { app: 'orders', tier: 'web' } }),
      deployment({ name: 'orders-canary', namespace: 'prod', replicas: 1, labels: { app: 'orders-canary', tier: 'web' } }),
    ],
  });
  const kube = adapter(api);
  await assert.rejects(
    kube.status('app=payments'),
    (e: unknown) =>
      e instanceof UserError &&
      e.message === 'selector "app=payments" matches no pods and no Deployment or StatefulSet template in namespace "prod"',
  );
  await assert.rejects(
    kube.status('tier=web'),
    (e: unknown) =>
      e instanceof UserError &&
      e.message === 'selector "tier=web" matches pods of 2 workloads in namespace "prod": deployment/orders, deployment/orders-canary',
  );
  await assert.rejects(
    kube.status('app in orders'),
    (e: unknown) =>
      e instanceof KubeError && e.status === 400 && /refused the request to list pods in namespace "prod" as malformed/.test(e.message),
  );
});

test('with every pod gone the workload is found through its template', async (t) => {
  const api = await server(t, { replaceDelayMs: 60_000 });
  const kube = adapter(api, { blastRadius: 3 });
  await kube.killAll(await kube.list('app=orders'), { gracePeriodMs: 0 });
  const s = await kube.status('app=orders');
  assert.deepEqual([s.owner, s.desired, s.ready, s.replicas.length], ['deployment/orders', 3, 0, 0]);
});

test('an unreachable API server and a slow one: errors name the URL and the wait', async (t) => {
  const api = await server(t);
  const kube = adapter(api, { requestTimeoutMs: 300 });
  await api.faults.unreachable();
  await assert.rejects(kube.list('app=orders'), (e: unknown) => {
    assert.ok(e instanceof KubeError, String(e));
    assert.equal(e.reason, 'Unreachable');
    assert.equal(e.message, `cannot reach the Kubernetes API server at ${api.url} (ECONNREFUSED) to list pods in namespace "prod"`);
    return true;
  });
  await api.faults.reachable();
  api.faults.delay(1000);
  await assert.rejects(
    kube.list('app=orders'),
    (e: unknown) =>
      e instanceof KubeError &&
      e.reason === 'Timeout' &&
      e.message === `the Kubernetes API server at ${api.url} did not answer within 300 ms to list pods in namespace "prod"`,
  );
  api.faults.delay(0);
  assert.equal((await kube.list('app=orders')).length, 3);
});

test('kubeconfig files: a named context works, an unknown one lists the contexts there', async (t) => {
  const api = await server(t);
  const dir = await makeTempDir('kubeconfig');
  t.after(() => dir.remove());
  const path = join(dir.path, 'config');
  await writeFile(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: test\n  cluster:\n    server: ${api.url}`,
      '- name: other\n  cluster:\n    server: https://other.example:6443',
      'users:',
      '- name: test\n  user: {}',
      'contexts:',
      '- name: aks-prod\n  context: {cluster: test, user: test}',
      '- name: aks-dev\n  context: {cluster: other, user: test}',
      'current-context: aks-dev',
      '',
    ].join('\n'),
  );
  const kube = createKubeReplicas({
    kubeConfig: kubeConfigFromFile(path, 'aks-prod'),
    namespace: 'prod',
    allowedNamespaces: ['prod'],
    blastRadius: 1,
  });
  assert.equal(kube.where, 'kube:aks-prod/prod');
  assert.equal((await kube.list('app=orders')).length, 3);
  assert.throws(
    () => kubeConfigFromFile(path, 'aks-prd'),
    (e: unknown) =>
      e instanceof UserError && e.message === `context "aks-prd" is not in kubeconfig ${path}; contexts there: aks-prod, aks-dev`,
  );
  assert.throws(() => kubeConfigFromFile(join(dir.path, 'missing')), /kubeconfig .*missing does not exist/);
  assert.equal(kubeConfigFromFile(path).getCurrentContext(), 'aks-dev');
});

test('status() answers from a watch after its first read, follows a kill through it, and stops on close', async (t) => {
  const api = await server(t, { replaceDelayMs: 600 });
  const kube = adapter(api);
  const reads = () => api.state.requests.filter((r) => r.verb !== 'watch').length;
  const first = await kube.status('app=orders');
  assert.deepEqual([first.ready, first.desired], [3, 3]);
  await until(() => api.state.openWatches('pods') === 1 && api.state.openWatches('deployments') === 1, 3000, 'the status watches to open');
  const [victim] = await kube.list('app=orders');
  await kube.kill(victim!, { gracePeriodMs: 0 });
  const before = reads();
  // Polled as a recovery check polls it: the kill and the replacement are seen without further reads.
  let sawDown = false;
  for (let i = 0; i < 200; i++) {
    const s = await kube.status('app=orders');
    if (!s.replicas.some((r) => r.name === victim!.name) && s.ready < 3) sawDown = true;
    if (sawDown && s.ready === 3) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(sawDown, 'the kill was seen through the watch');
  const s = await kube.status('app=orders');
  assert.deepEqual([s.ready, s.desired, s.replicas.length], [3, 3, 3]);
  assert.equal(reads(), before, 'no list or get while the watch serves status()');
  kube.close();
  await until(() => api.state.openWatches() === 0, 3000, 'the watches to close');
});
