/**
 * The test API server against the real @kubernetes/client-node: if these pass, the adapter tests exercise
 * the wire format a cluster speaks (Status bodies, selectors, watch semantics, controllers), not a fake's.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiException,
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { kubeConfigFor } from '../../lib/adapters/kubernetes/index.ts';
import { deployment, hpa, namespace, startKubeApi, statefulSet, type KubeApi, type KubeApiOptions } from '../support/kube-api/index.ts';

async function server(t: TestContext, options: KubeApiOptions = {}): Promise<KubeApi> {
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3 })],
    readyDelayMs: 50,
    replaceDelayMs: 50,
    shutdownMs: 100,
    ...options,
  });
  t.after(() => api.stop());
  return api;
}

function clients(api: KubeApi, token?: string) {
  const kc = kubeConfigFor({ url: api.url, token });
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), autoscaling: kc.makeApiClient(AutoscalingV2Api) };
}

/** The HTTP code and parsed Status body of a failed call. */
async function failure(p: Promise<unknown>): Promise<{
  code: number;
  body: { kind?: string; reason?: string; message?: string; code?: number; details?: { causes?: { field?: string }[] } };
}> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiException, `expected an ApiException, got ${String(e)}`);
    return { code: e.code, body: typeof e.body === 'string' ? JSON.parse(e.body) : {} };
  }
  assert.fail('expected the call to fail');
}

interface Seen {
  type: string;
  name: string;
  rv: string;
  deleting: boolean;
  object: { code?: number; reason?: string };
}

/** Open a watch and collect its events until `until` says enough, or the stream ends. */
function collect(
  api: KubeApi,
  path: string,
  query: Record<string, string | boolean | number>,
  until: (seen: Seen[]) => boolean,
  timeoutMs = 5000,
) {
  const seen: Seen[] = [];
  return new Promise<{ seen: Seen[]; ended: boolean }>((resolve, reject) => {
    let ctrl: AbortController | undefined;
    const timer = setTimeout(() => {
      ctrl?.abort();
      reject(new Error(`watch ${path}: condition not met in ${timeoutMs} ms; saw ${JSON.stringify(seen.map((s) => [s.type, s.name]))}`));
    }, timeoutMs);
    void new Watch(kubeConfigFor({ url: api.url }))
      .watch(
        path,
        query,
        (
          type,
          obj: { metadata?: { name?: string; resourceVersion?: string; deletionTimestamp?: string }; code?: number; reason?: string },
        ) => {
          seen.push({
            type,
            name: obj.metadata?.name ?? '',
            rv: obj.metadata?.resourceVersion ?? '',
            deleting: Boolean(obj.metadata?.deletionTimestamp),
            object: obj,
          });
          if (until(seen)) {
            clearTimeout(timer);
            ctrl?.abort();
            resolve({ seen, ended: false });
          }
        },
        () => {
          clearTimeout(timer);
          resolve({ seen, ended: true });
        },
      )
      .then((c) => (ctrl = c));
  });
}

test('list pods by label and field selectors, as the API server filters them', async (t) => {
  const api = await server(t, {
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 2, labels: { app: 'orders', tier: 'web' } }),
      deployment({ name: 'billing', namespace: 'prod', replicas: 1, labels: { app: 'billing' } }),
      deployment({ name: 'orders', namespace: 'staging', replicas: 1, labels: { app: 'orders', tier: 'web' } }),
    ],
  });
  const { core } = clients(api);
  const names = async (labelSelector?: string, fieldSelector?: string) =>
    (await core.listNamespacedPod({ namespace: 'prod', labelSelector, fieldSelector })).items.map((p) => p.metadata!.labels!.app).sort();
  assert.deepEqual(await names('app=orders'), ['orders', 'orders']);
  assert.deepEqual(await names('app!=orders'), ['billing']);
  assert.deepEqual(await names('app in (orders,billing),tier'), ['orders', 'orders']);
  assert.deepEqual(await names('app notin (orders)'), ['billing']);
  assert.deepEqual(await names('!tier'), ['billing']);
  assert.deepEqual(await names('app==orders,tier=web'), ['orders', 'orders']);
  assert.deepEqual(await names(undefined, 'status.phase=Running'), ['billing', 'orders', 'orders']);
  const one = api.state.list('pods', 'prod', 'app=billing')[0]!.metadata.name!;
  assert.deepEqual(await names(undefined, `metadata.name=${one}`), ['billing']);
  assert.deepEqual(await names(undefined, `metadata.name!=${one}`), ['orders', 'orders']);

  const all = await core.listPodForAllNamespaces({ labelSelector: 'app=orders' });
  assert.deepEqual(all.items.map((p) => p.metadata!.namespace).sort(), ['prod', 'prod', 'staging']);

  const bad = await failure(core.listNamespacedPod({ namespace: 'prod', labelSelector: 'app in orders' }));
  assert.equal(bad.code, 400);
  assert.equal(bad.body.reason, 'BadRequest');
  const field = await failure(core.listNamespacedPod({ namespace: 'prod', fieldSelector: 'spec.color=blue' }));
  assert.equal(field.code, 400);
  assert.match(field.body.message!, /field label not supported: spec.color/);
});

test('list pages with limit and continue, and lists carry a resourceVersion', async (t) => {
  const api = await server(t, { objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 5 })] });
  const { core } = clients(api);
  const first = await core.listNamespacedPod({ namespace: 'prod', limit: 2 });
  assert.equal(first.items.length, 2);
  assert.equal(first.metadata?.remainingItemCount, 3);
  assert.ok(first.metadata?._continue, 'a continue token for the rest');
  assert.equal(first.metadata?.resourceVersion, String(api.state.resourceVersion()));
  const second = await core.listNamespacedPod({ namespace: 'prod', limit: 2, _continue: first.metadata!._continue });
  const third = await core.listNamespacedPod({ namespace: 'prod', limit: 2, _continue: second.metadata!._continue });
  const paged = [...first.items, ...second.items, ...third.items].map((p) => p.metadata!.name);
  assert.equal(third.metadata?._continue, undefined);
  assert.deepEqual(
    paged,
    api.state.list('pods', 'prod').map((p) => p.metadata.name),
  );
});

test('get, create, conflict and validation answer with Status bodies', async (t) => {
  const api = await server(t);
  const { core, apps } = clients(api);

  const missing = await failure(core.readNamespacedPod({ namespace: 'prod', name: 'nope' }));
  assert.equal(missing.code, 404);
  assert.deepEqual([missing.body.kind, missing.body.reason, missing.body.message], ['Status', 'NotFound', 'pods "nope" not found']);

  const dup = await failure(
    apps.createNamespacedDeployment({
      namespace: 'prod',
      body: deployment({ name: 'orders', namespace: 'prod', replicas: 1 }) as V1Deployment,
    }),
  );
  assert.equal(dup.code, 409);
  assert.equal(dup.body.reason, 'AlreadyExists');
  assert.equal(dup.body.message, 'deployments.apps "orders" already exists');

  const noNs = await failure(
    apps.createNamespacedDeployment({
      namespace: 'ghost',
      body: deployment({ name: 'x', namespace: 'ghost', replicas: 1 }) as V1Deployment,
    }),
  );
  assert.equal(noNs.code, 404);
  assert.equal(noNs.body.message, 'namespaces "ghost" not found');

  const bad = deployment({ name: 'mismatch', namespace: 'prod', replicas: 1 });
  bad.spec.selector = { matchLabels: { app: 'other' } };
  const invalid = await failure(apps.createNamespacedDeployment({ namespace: 'prod', body: bad as V1Deployment }));
  assert.equal(invalid.code, 422);
  assert.equal(invalid.body.reason, 'Invalid');
  assert.deepEqual(
    invalid.body.details?.causes?.map((c) => c.field),
    ['spec.template.metadata.labels'],
  );

  const d = await apps.readNamespacedDeployment({ namespace: 'prod', name: 'orders' });
  const stale = structuredClone(d);
  d.spec!.replicas = 4;
  await apps.replaceNamespacedDeployment({ namespace: 'prod', name: 'orders', body: d });
  stale.spec!.replicas = 2;
  const conflict = await failure(apps.replaceNamespacedDeployment({ namespace: 'prod', name: 'orders', body: stale }));
  assert.equal(conflict.code, 409);
  assert.equal(conflict.body.reason, 'Conflict');
  assert.match(conflict.body.message!, /^Operation cannot be fulfilled on deployments.apps "orders": the object has been modified/);
  await api.state.waitFor(
    () => api.state.list('pods', 'prod', 'app=orders').filter((p) => p.status?.phase === 'Running').length === 4,
    '4 running pods after scaling up',
  );
  assert.deepEqual(api.state.controllerErrors, []);
});

test('custom resources as a real API server treats them: strategic merge patch 415, PUT without resourceVersion 422', async (t) => {
  const api = await server(t);
  api.state.create({
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: 'pg', namespace: 'prod' },
    spec: { instances: 1 },
  });
  const custom = kubeConfigFor({ url: api.url }).makeApiClient(CustomObjectsApi);
  const ids = { group: 'postgresql.cnpg.io', version: 'v1', namespace: 'prod', plural: 'clusters', name: 'pg' };

  // apiextensions-apiserver's customresource_handler.go serves CRs with json-patch, merge-patch and apply only;
  // the 415 Status is negotiation.errUnsupportedMediaType's (apiserver pkg/endpoints/handlers/negotiation/errors.go).
  const smp = await failure(
    custom.patchNamespacedCustomObject(
      { ...ids, body: { spec: { instances: 2 } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    ),
  );
  assert.equal(smp.code, 415);
  assert.deepEqual(
    [smp.body.reason, smp.body.message],
    [
      'UnsupportedMediaType',
      'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
    ],
  );
  // The same on the status subresource, which goes through the same handler.
  const smpStatus = await failure(
    custom.patchNamespacedCustomObjectStatus(
      { ...ids, body: { status: { phase: 'x' } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    ),
  );
  assert.equal(smpStatus.code, 415);

  // AllowUnconditionalUpdate() is false for custom resources: the generic registry's Update answers 422, naming
  // the resource (not the kind) in the message, as NewInvalid over qualifiedResource does.
  const current = (await custom.getNamespacedCustomObject(ids)) as { metadata: { resourceVersion?: string }; spec: { instances: number } };
  const { resourceVersion, ...meta } = current.metadata;
  const bare = await failure(
    custom.replaceNamespacedCustomObject({ ...ids, body: { ...current, metadata: meta, spec: { instances: 2 } } }),
  );
  assert.equal(bare.code, 422);
  assert.deepEqual(
    [bare.body.reason, bare.body.message, bare.body.details?.causes?.map((c) => c.field)],
    [
      'Invalid',
      'clusters.postgresql.cnpg.io "pg" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
      ['metadata.resourceVersion'],
    ],
  );
  assert.equal(api.state.get('clusters', 'prod', 'pg')!.spec.instances, 1, 'nothing changed');
  // With a resourceVersion (read again: the operator may have written the status meanwhile) the PUT goes through;
  // a merge patch is accepted too.
  assert.ok(resourceVersion);
  // The operator reconciles on its own clock, so a read-then-PUT can still meet a 409: retried on conflict, as
  // client-go's RetryOnConflict does.
  for (let attempt = 1; ; attempt++) {
    const fresh = (await custom.getNamespacedCustomObject(ids)) as { metadata: object; spec: object };
    const put = await custom.replaceNamespacedCustomObject({ ...ids, body: { ...fresh, spec: { instances: 2 } } }).then(
      () => null,
      (e: { code?: number }) => e,
    );
    if (put === null) break;
    if (put.code !== 409 || attempt === 5) throw put;
  }
  await custom.patchNamespacedCustomObject(
    { ...ids, body: { spec: { instances: 3 } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  assert.equal(api.state.get('clusters', 'prod', 'pg')!.spec.instances, 3);
  // A built-in resource keeps its unconditional update and its strategic merge patch.
  const { core } = clients(api);
  const [pod] = api.state.list('pods', 'prod').map((p) => p.metadata.name!);
  await core.patchNamespacedPod(
    { namespace: 'prod', name: pod!, body: { metadata: { labels: { touched: 'yes' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  assert.equal(api.state.get('pods', 'prod', pod!)!.metadata.labels?.touched, 'yes');
});

test('deleting a pod: grace period honoured, the ReplicaSet replaces it and the replacement turns Ready', async (t) => {
  const api = await server(t, { shutdownMs: 400 });
  const { core } = clients(api);
  const [a, b] = api.state.list('pods', 'prod').map((p) => p.metadata.name!);

  const graceful = await core.deleteNamespacedPod({ namespace: 'prod', name: a!, body: { gracePeriodSeconds: 30 } });
  assert.ok(graceful.metadata?.deletionTimestamp instanceof Date, 'a graceful delete returns the pod marked for deletion');
  assert.equal(graceful.metadata?.deletionGracePeriodSeconds, 30);
  assert.ok(api.state.get('pods', 'prod', a!), 'still there while its container shuts down');

  const forced = await core.deleteNamespacedPod({ namespace: 'prod', name: b!, body: { gracePeriodSeconds: 0 } });
  assert.equal(forced.metadata?.name, b);
  assert.equal(api.state.get('pods', 'prod', b!), undefined, 'grace 0 removes the pod at once');

  await api.state.waitFor(() => !api.state.get('pods', 'prod', a!), 'the terminating pod to be removed', 3000);
  await api.state.waitFor(() => {
    const pods = api.state.list('pods', 'prod', 'app=orders');
    return (
      pods.length === 3 &&
      pods.every((p) => p.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'))
    );
  }, 'three ready pods again');
  const d = api.state.get('deployments', 'prod', 'orders')!;
  assert.deepEqual([d.status.replicas, d.status.readyReplicas, d.status.availableReplicas, d.status.updatedReplicas], [3, 3, 3, 3]);
  const replacement = api.state.list('pods', 'prod').find((p) => ![a, b].includes(p.metadata.name!))!;
  assert.equal(replacement.metadata.ownerReferences?.[0]?.kind, 'ReplicaSet');
  assert.equal(replacement.status.containerStatuses[0].ready, true);

  const gone = await failure(core.deleteNamespacedPod({ namespace: 'prod', name: a! }));
  assert.equal(gone.code, 404);
});

test('watch: ADDED, MODIFIED and DELETED in order, resumed from a resourceVersion', async (t) => {
  const api = await server(t, { shutdownMs: 200 });
  const { core } = clients(api);
  const list = await core.listNamespacedPod({ namespace: 'prod', labelSelector: 'app=orders' });
  const victim = list.items[0]!.metadata!.name!;
  const watching = collect(
    api,
    '/api/v1/namespaces/prod/pods',
    { labelSelector: 'app=orders', resourceVersion: list.metadata!.resourceVersion! },
    (seen) =>
      seen.some((s) => s.type === 'MODIFIED' && s.name !== victim && !s.deleting && seen.some((x) => x.type === 'DELETED')) &&
      seen.filter((s) => s.type === 'MODIFIED' && s.name !== victim).length >= 2,
  );
  await core.deleteNamespacedPod({ namespace: 'prod', name: victim, body: { gracePeriodSeconds: 5 } });
  const { seen } = await watching;
  const forVictim = seen.filter((s) => s.name === victim).map((s) => [s.type, s.deleting]);
  assert.deepEqual(forVictim.slice(0, 2), [
    ['MODIFIED', true],
    ['DELETED', true],
  ]);
  const replacement = seen.find((s) => s.type === 'ADDED')!;
  assert.ok(replacement, 'the replacement pod is ADDED');
  const rvs = seen.map((s) => Number(s.rv));
  assert.deepEqual(
    rvs,
    [...rvs].sort((x, y) => x - y),
    'events arrive in resourceVersion order',
  );
  assert.ok(
    rvs.every((rv) => rv > Number(list.metadata!.resourceVersion)),
    'only events after the listed resourceVersion',
  );

  // Watching from the start of that history again replays the same events.
  const replay = await collect(
    api,
    '/api/v1/namespaces/prod/pods',
    { labelSelector: 'app=orders', resourceVersion: list.metadata!.resourceVersion! },
    (s) => s.length >= seen.length,
  );
  assert.deepEqual(
    replay.seen.slice(0, seen.length).map((s) => s.rv),
    seen.map((s) => s.rv),
  );
});

test('watch without a resourceVersion starts with the current objects; bookmarks and timeoutSeconds', async (t) => {
  const api = await server(t, { bookmarkIntervalMs: 100 });
  const initial = await collect(api, '/apis/apps/v1/namespaces/prod/deployments', { allowWatchBookmarks: true }, (s) =>
    s.some((e) => e.type === 'BOOKMARK'),
  );
  assert.equal(initial.seen[0]?.type, 'ADDED');
  assert.equal(initial.seen[0]?.name, 'orders');
  const bookmark = initial.seen.find((e) => e.type === 'BOOKMARK')!;
  assert.equal(bookmark.rv, String(api.state.resourceVersion()));

  const t0 = performance.now();
  const timed = await collect(
    api,
    '/apis/apps/v1/namespaces/prod/deployments',
    { resourceVersion: String(api.state.resourceVersion()), timeoutSeconds: 1 },
    () => false,
    5000,
  );
  assert.equal(timed.ended, true);
  assert.ok(performance.now() - t0 >= 900, 'the server ends the stream after timeoutSeconds');
});

test('watch from a compacted resourceVersion gets an ERROR event with 410 Expired; a fault can force one', async (t) => {
  const api = await server(t);
  const old = String(api.state.resourceVersion());
  api.state.compact();
  const { core } = clients(api);
  await core.deleteNamespacedPod({
    namespace: 'prod',
    name: api.state.list('pods', 'prod')[0]!.metadata.name!,
    body: { gracePeriodSeconds: 0 },
  });
  const expired = await collect(api, '/api/v1/namespaces/prod/pods', { resourceVersion: String(Number(old) - 1) }, (s) => s.length > 0);
  assert.equal(expired.seen[0]?.type, 'ERROR');
  assert.deepEqual([expired.seen[0]?.object.code, expired.seen[0]?.object.reason], [410, 'Expired']);

  const now = String(api.state.resourceVersion());
  api.faults.expireNextWatch();
  const forced = await collect(api, '/api/v1/namespaces/prod/pods', { resourceVersion: now }, (s) => s.length > 0);
  assert.equal(forced.seen[0]?.object.code, 410);
  const after = await collect(api, '/api/v1/namespaces/prod/pods', { resourceVersion: now, timeoutSeconds: 1 }, () => false);
  assert.ok(
    after.seen.every((s) => s.type !== 'ERROR'),
    'the fault applies to one watch only',
  );
});

test('patches: strategic merge rolls out a new ReplicaSet, JSON patch of the template rolls back and bumps the revision', async (t) => {
  const api = await server(t);
  const { apps } = clients(api);
  const rev = (name: string) => api.state.get('replicasets', 'prod', name)?.metadata.annotations?.['deployment.kubernetes.io/revision'];
  const [firstRs] = api.state.list('replicasets', 'prod').map((r) => r.metadata.name!);
  assert.equal(rev(firstRs!), '1');

  await apps.patchNamespacedDeployment(
    {
      namespace: 'prod',
      name: 'orders',
      body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'registry.example/orders:2.0.0' }] } } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  await api.state.waitFor(() => {
    const d = api.state.get('deployments', 'prod', 'orders')!;
    return (
      d.status.updatedReplicas === 3 &&
      d.status.replicas === 3 &&
      d.status.availableReplicas === 3 &&
      d.status.observedGeneration === d.metadata.generation
    );
  }, 'the rollout to 2.0.0 to complete');
  const rsets = api.state.list('replicasets', 'prod');
  assert.equal(rsets.length, 2);
  const second = rsets.find((r) => r.metadata.name !== firstRs)!;
  assert.equal(second.spec.template.spec.containers[0].image, 'registry.example/orders:2.0.0');
  assert.equal(second.spec.template.spec.containers[0].ports[0].containerPort, 8080, 'strategic merge keeps fields the patch did not name');
  assert.equal(rev(second.metadata.name!), '2');
  assert.equal(api.state.get('replicasets', 'prod', firstRs!)!.spec.replicas, 0);

  // What `kubectl rollout undo` sends: the old ReplicaSet's template (without its hash label) and annotations.
  const old = api.state.get('replicasets', 'prod', firstRs!)!;
  const template = structuredClone(old.spec.template);
  delete template.metadata.labels['pod-template-hash'];
  await apps.patchNamespacedDeployment(
    {
      namespace: 'prod',
      name: 'orders',
      body: [
        { op: 'replace', path: '/spec/template', value: template },
        { op: 'replace', path: '/metadata/annotations', value: { 'deployment.kubernetes.io/revision': '2' } },
      ],
    },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  );
  await api.state.waitFor(() => {
    const d = api.state.get('deployments', 'prod', 'orders')!;
    return (
      d.metadata.annotations?.['deployment.kubernetes.io/revision'] === '3' &&
      d.status.updatedReplicas === 3 &&
      d.status.replicas === 3 &&
      d.status.availableReplicas === 3
    );
  }, 'the rollback to complete');
  assert.equal(rev(firstRs!), '3', 'the old ReplicaSet is re-used and becomes the newest revision');
  assert.equal(api.state.list('replicasets', 'prod').length, 2);
  const serving = api.state.list('pods', 'prod').filter((p) => !p.metadata.deletionTimestamp);
  assert.deepEqual(
    serving.map((p) => p.spec.containers[0].image),
    Array(3).fill('registry.example/orders:1.0.0'),
    'every pod not terminating runs the old image again',
  );

  await apps.patchNamespacedDeployment(
    { namespace: 'prod', name: 'orders', body: { metadata: { annotations: { 'drill/checked': 'yes' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  assert.equal(api.state.get('deployments', 'prod', 'orders')!.metadata.annotations?.['drill/checked'], 'yes');
  assert.deepEqual(api.state.controllerErrors, []);
});

test('scale subresource and deleting a Deployment cascades to its ReplicaSets and pods', async (t) => {
  const api = await server(t);
  const { apps } = clients(api);
  const scale = await apps.readNamespacedDeploymentScale({ namespace: 'prod', name: 'orders' });
  assert.deepEqual([scale.spec?.replicas, scale.status?.replicas, scale.status?.selector], [3, 3, 'app=orders']);
  await apps.patchNamespacedDeploymentScale(
    { namespace: 'prod', name: 'orders', body: { spec: { replicas: 1 } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await api.state.waitFor(() => api.state.list('pods', 'prod').length === 1, 'scale down to one pod');

  const status = await apps.deleteNamespacedDeployment({ namespace: 'prod', name: 'orders', body: { propagationPolicy: 'Background' } });
  assert.equal(status.status, 'Success');
  assert.equal(status.details?.name, 'orders');
  await api.state.waitFor(
    () => api.state.list('replicasets', 'prod').length === 0 && api.state.list('pods', 'prod').length === 0,
    'dependents to be garbage collected',
  );
});

test('StatefulSet pods come back with the same name and a new uid', async (t) => {
  const api = await server(t, { objects: [namespace('data'), statefulSet({ name: 'pg', namespace: 'data', replicas: 2 })] });
  const { core } = clients(api);
  const before = api.state.get('pods', 'data', 'pg-1')!;
  await core.deleteNamespacedPod({ namespace: 'data', name: 'pg-1', body: { gracePeriodSeconds: 0 } });
  await api.state.waitFor(() => {
    const p = api.state.get('pods', 'data', 'pg-1');
    return p !== undefined && p.metadata.uid !== before.metadata.uid && p.status?.phase === 'Running';
  }, 'pg-1 to be recreated and running');
  await api.state.waitFor(
    () => api.state.get('statefulsets', 'data', 'pg')!.status.readyReplicas === 2,
    'the StatefulSet to report 2 ready',
  );
  const after = api.state.get('pods', 'data', 'pg-1')!;
  assert.equal(after.metadata.labels?.['statefulset.kubernetes.io/pod-name'], 'pg-1');
  assert.equal(after.metadata.ownerReferences?.[0]?.kind, 'StatefulSet');
});

test('HPAs are stored with plausible status', async (t) => {
  const api = await server(t, {
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 3 }),
      hpa({ name: 'orders', namespace: 'prod', target: 'orders', min: 3, max: 20, cpu: 70, memory: 80 }),
    ],
  });
  const { autoscaling } = clients(api);
  await api.state.waitFor(() => api.state.get('horizontalpodautoscalers', 'prod', 'orders')?.status?.currentReplicas === 3, 'HPA status');
  const h = await autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: 'prod', name: 'orders' });
  assert.deepEqual([h.spec?.minReplicas, h.spec?.maxReplicas], [3, 20]);
  assert.deepEqual(
    h.spec?.metrics?.map((m) => [m.resource?.name, m.resource?.target.averageUtilization]),
    [
      ['cpu', 70],
      ['memory', 80],
    ],
  );
  assert.equal(h.status?.desiredReplicas, 3);
  assert.ok(
    h.status?.conditions?.some((c) => c.type === 'ScalingActive' && c.status === 'True'),
    'ScalingActive=True',
  );
  const invalid = await failure(
    autoscaling.createNamespacedHorizontalPodAutoscaler({
      namespace: 'prod',
      body: { ...hpa({ name: 'bad', namespace: 'prod', target: 'orders', min: 5, max: 2 }) } as never,
    }),
  );
  assert.equal(invalid.code, 422);
});

test('RBAC: 401 without a known token, 403 with the API server message for a verb the rules lack', async (t) => {
  const api = await server(t, {
    tokens: {
      'drill-token': {
        user: 'system:serviceaccount:drill:drill',
        rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'], namespaces: ['prod'] }],
      },
    },
  });
  const ok = clients(api, 'drill-token');
  assert.equal((await ok.core.listNamespacedPod({ namespace: 'prod' })).items.length, 3);
  const name = api.state.list('pods', 'prod')[0]!.metadata.name!;
  const forbidden = await failure(ok.core.deleteNamespacedPod({ namespace: 'prod', name }));
  assert.equal(forbidden.code, 403);
  assert.equal(forbidden.body.reason, 'Forbidden');
  assert.equal(
    forbidden.body.message,
    `pods "${name}" is forbidden: User "system:serviceaccount:drill:drill" cannot delete resource "pods" in API group "" in the namespace "prod"`,
  );
  const clusterWide = await failure(ok.core.listNamespace());
  assert.equal(
    clusterWide.body.message,
    'namespaces is forbidden: User "system:serviceaccount:drill:drill" cannot list resource "namespaces" in API group "" at the cluster scope',
  );
  const otherNs = await failure(ok.apps.readNamespacedDeployment({ namespace: 'prod', name: 'orders' }));
  assert.equal(
    otherNs.body.message,
    'deployments.apps "orders" is forbidden: User "system:serviceaccount:drill:drill" cannot get resource "deployments" in API group "apps" in the namespace "prod"',
  );
  assert.ok(api.state.get('pods', 'prod', name), 'the refused delete deleted nothing');

  const anonymous = await failure(clients(api, 'wrong').core.listNamespacedPod({ namespace: 'prod' }));
  assert.equal(anonymous.code, 401);
});

test('faults: delayed responses, an unreachable server, and back', async (t) => {
  const api = await server(t);
  const { core } = clients(api);
  api.faults.delay(300);
  const t0 = performance.now();
  await core.listNamespacedPod({ namespace: 'prod' });
  assert.ok(performance.now() - t0 >= 290, 'the response was held');
  api.faults.delay(0);

  await api.faults.unreachable();
  await assert.rejects(core.listNamespacedPod({ namespace: 'prod' }), (e: { code?: string }) => e.code === 'ECONNREFUSED');
  await api.faults.reachable();
  assert.equal((await core.listNamespacedPod({ namespace: 'prod' })).items.length, 3);
});

test('legacy /watch/ paths, deletecollection, and a namespace that empties itself when deleted', async (t) => {
  const api = await server(t, {
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 2 }),
      deployment({ name: 'tmp', namespace: 'scratch', replicas: 1 }),
    ],
  });
  const { core } = clients(api);
  const legacy = await collect(api, '/api/v1/watch/namespaces/prod/pods', {}, (s) => s.length >= 2);
  assert.deepEqual(
    legacy.seen.map((s) => s.type),
    ['ADDED', 'ADDED'],
  );

  const before = api.state.list('pods', 'prod').map((p) => p.metadata.name!);
  await core.deleteCollectionNamespacedPod({ namespace: 'prod', labelSelector: 'app=orders', gracePeriodSeconds: 0 });
  assert.deepEqual(
    before.filter((n) => api.state.get('pods', 'prod', n)),
    [],
    'every selected pod was deleted',
  );
  assert.ok(
    api.state.requests.some((r) => r.verb === 'deletecollection' && r.status === 200),
    'served as deletecollection',
  );

  // client-node types this answer as a Status (as the OpenAPI spec does); the API server sends the Namespace.
  const ns = (await (await fetch(`${api.url}/api/v1/namespaces/scratch`, { method: 'DELETE' })).json()) as {
    kind: string;
    status: { phase: string };
  };
  assert.deepEqual([ns.kind, ns.status.phase], ['Namespace', 'Terminating']);
  const refused = await failure(
    core.createNamespacedPod({
      namespace: 'scratch',
      body: { metadata: { name: 'late' }, spec: { containers: [{ name: 'a', image: 'x' }] } },
    }),
  );
  assert.ok(refused.code === 403 || refused.code === 404, `creating in a terminating or deleted namespace is refused (${refused.code})`);
  await api.state.waitFor(
    () =>
      !api.state.get('namespaces', undefined, 'scratch') &&
      api.state.list('deployments', 'scratch').length === 0 &&
      api.state.list('pods', 'scratch').length === 0,
    'namespace scratch and its contents to be gone',
  );
  assert.ok(api.state.get('namespaces', undefined, 'prod'), 'other namespaces stay');
});
