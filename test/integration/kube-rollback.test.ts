/**
 * The rollback scenario end to end through `drill run`: a bad deploy (2.0.0) is rolled back to 1.0.0 the way
 * `kubectl rollout undo` does it, timed under load until 1.0.0 answers, then rolled forward again by the
 * drill's own rollback. Helm without a helm CLI, and a namespace outside the allowlist, are invalid input.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../lib/adapters/kubernetes/index.ts';
import { createKubeDeployments } from '../../lib/adapters/kubernetes/deployments.ts';
import { checkReplicaFloor } from '../../lib/scenario/probes/replica-floor.ts';
import type { AutoscalerView } from '../../lib/adapters/kubernetes/types.ts';
import { deployment, hpa, startKubeApi, type KubeApi } from '../support/kube-api/index.ts';
import { startPodService, type PodService } from '../support/kube-api/service.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';
import { kubeDrillHead, writeKubeconfig } from '../support/kube-drill.ts';

const image = (api: KubeApi) => api.state.get('deployments', 'prod', 'orders')!.spec.template.spec.containers[0].image as string;

async function deploy(api: KubeApi, tag: string): Promise<void> {
  const apps = kubeConfigFor({ url: api.url }).makeApiClient(AppsV1Api);
  const d = await apps.readNamespacedDeployment({ name: 'orders', namespace: 'prod' });
  d.spec!.template.spec!.containers[0]!.image = `registry.example/orders:${tag}`;
  await apps.replaceNamespacedDeployment({ name: 'orders', namespace: 'prod', body: d });
  await api.state.waitFor(() => {
    const x = api.state.get('deployments', 'prod', 'orders')!;
    return (
      x.status?.observedGeneration === x.metadata.generation &&
      x.status?.updatedReplicas === 3 &&
      x.status?.availableReplicas === 3 &&
      x.status?.replicas === 3
    );
  }, `orders rolled out on ${tag}`);
}

async function setup(t: TestContext): Promise<{
  api: KubeApi;
  svc: PodService;
  dir: string;
  drill(name: string, scenario: string, target?: string, policy?: string): string;
}> {
  const api = await startKubeApi({
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } }),
      hpa({ name: 'orders', namespace: 'prod', target: 'orders', min: 3, max: 20, cpu: 70, memory: 80 }),
    ],
    replaceDelayMs: 100,
    readyDelayMs: 250,
    shutdownMs: 100,
  });
  t.after(() => api.stop());
  await deploy(api, '2.0.0');
  const svc = await startPodService(api, { namespace: 'prod', selector: 'app=orders' });
  t.after(() => svc.stop());
  const dir = scratchDir('kube-rollback');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url });
  // The latency SLO is loose: these tests measure the drill, not a test server on a shared 2-core machine.
  const drill = (
    name: string,
    scenario: string,
    target = '  namespaces: [prod]',
    policy = "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] } }",
  ) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        ...kubeDrillHead({ name, kubeconfig, url: svc.url, context: false }),
        target,
        policy,
        'load: { rate: 25, baseline: 2s, cooldown: 1s, timeout: 5s, requests: [{ method: GET, path: /version }] }',
        'scenarios:',
        scenario,
        '',
      ].join('\n'),
    );
    return file;
  };
  return { api, svc, dir, drill };
}

test('rollback drill: back to the previous revision under load, timed until it serves, then rolled forward again', {
  timeout: 240_000,
}, async (t) => {
  const s = await setup(t);
  assert.equal(image(s.api), 'registry.example/orders:2.0.0');
  const file = s.drill(
    'rollback',
    '  - scenario: rollback\n    params: { deployment: orders, versionPath: /version, replicaFloor: true }\n    timeout: 60s',
  );
  const results = join(s.dir, 'results');
  const r = await drillCli(['run', file, '--results', results, '--yes', '--json']).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const [runDir] = runFolders(results);
  const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'passed');
  assert.deepEqual(rec.actions[0].targets, [
    'deployment/orders in prod: revision 2 (registry.example/orders:2.0.0) -> revision 1 (registry.example/orders:1.0.0)',
  ]);
  assert.equal(rec.actions[0].rollback.status, 'done');
  // The replica floor was part of the steady state, read from the Deployment and its HPA.
  assert.match(
    readFileSync(join(runDir!, 'events.jsonl'), 'utf8'),
    /deployment\/orders 3\/3 ready; hpa\/orders 3-20, CPU 70%, memory 80%; within policy/,
  );

  // The rollback went out as kubectl sends it: one JSON patch of the template; the restore sent another.
  const patches = s.api.state.requests
    .filter((q) => q.method === 'PATCH' || q.method === 'PUT')
    .slice(1)
    .map((q) => [q.resource, q.contentType, q.status]);
  assert.deepEqual(patches, [
    // (the set-up's bad deploy was a PUT, dropped above)
    ['deployments', 'application/json-patch+json', 200],
    ['deployments', 'application/json-patch+json', 200],
  ]);
  // The drill's rollback rolled forward to where it found the Deployment.
  assert.equal(image(s.api), 'registry.example/orders:2.0.0');

  const events = readEvents(runDir!);
  const done = events.find((e) => e.type === 'action.done') as unknown as {
    result: { rolloutSeconds: number; rolledOutAt: string; to: { revision: number } };
  };
  assert.ok(done.result.rolledOutAt, 'the rollout completed');
  assert.ok(done.result.rolloutSeconds > 0.2 && done.result.rolloutSeconds < 20, `rollout ${done.result.rolloutSeconds}s`);
  assert.equal(done.result.to.revision, 1);
  const rto = rec.objectives.rto.measuredSeconds;
  // RTO runs from the patch to 1.0.0 answering 10 requests in a row with the rollout complete, so it is at least the rollout.
  assert.ok(rto >= done.result.rolloutSeconds - 0.05 && rto < 30, `rto ${rto}, rollout ${done.result.rolloutSeconds}`);
  t.diagnostic(`rollout ${done.result.rolloutSeconds}s, RTO ${rto}s, load ${rec.load.ok}/${rec.load.scheduled} ok`);
  // The load saw both versions: 2.0.0 before the rollback, 1.0.0 after it.
  const served = [...s.svc.served.keys()];
  assert.ok(served.length >= 6, `requests reached old and new pods: ${served.join(', ')}`);
});

test("replica floor from policy.replicas: an HPA below the drill's floor is exit 3 before anything is rolled back", {
  timeout: 240_000,
}, async (t) => {
  const s = await setup(t);
  const generation = s.api.state.get('deployments', 'prod', 'orders')!.metadata.generation;
  const seen = s.api.state.requests.length;
  const file = s.drill(
    'floor',
    '  - scenario: rollback\n    params: { deployment: orders, versionPath: /version, replicaFloor: true }\n    timeout: 60s',
    '  namespaces: [prod]',
    "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] }, replicas: { min: 4, max: 20, cpu: 70%, memory: 80% } }",
  );
  const results = join(s.dir, 'results');
  const r = await drillCli(['run', file, '--results', results, '--yes']).done;
  assert.equal(r.code, 3, r.stderr + r.stdout);
  const [runDir] = runFolders(results);
  const events = readFileSync(join(runDir!, 'events.jsonl'), 'utf8');
  assert.match(events, /deployment\/orders runs 3 replicas, below the floor of 4/);
  assert.match(events, /hpa\/orders/);
  assert.deepEqual(
    s.api.state.requests.slice(seen).filter((q) => !['get', 'list', 'watch'].includes(q.verb)),
    [],
    'only reads: nothing rolled back',
  );
  assert.equal(s.api.state.get('deployments', 'prod', 'orders')!.metadata.generation, generation);
});

test('rollback via helm without a helm CLI: exit 2 naming what to install, nothing changed', { timeout: 240_000 }, async (t) => {
  const s = await setup(t);
  const generation = s.api.state.get('deployments', 'prod', 'orders')!.metadata.generation;
  const seen = s.api.state.requests.length;
  const file = s.drill('rollback-helm', '  - scenario: rollback\n    params: { deployment: orders, via: helm, release: orders }');
  const results = join(s.dir, 'results');
  const r = await drillCli(['run', file, '--results', results, '--yes'], { PATH: '/usr/bin:/bin' }).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /params\.via is helm but the helm CLI is not installed here \(no `helm` on PATH\), so `helm rollback orders` cannot run/,
  );
  assert.match(r.stderr, /next: install helm 3 .* or set params\.via: api/);
  assert.deepEqual(runFolders(results), []);
  assert.deepEqual(
    s.api.state.requests.slice(seen).filter((q) => !['get', 'list', 'watch'].includes(q.verb)),
    [],
    'only reads after the set-up deploy',
  );
  assert.equal(s.api.state.get('deployments', 'prod', 'orders')!.metadata.generation, generation);
});

test('rollback refuses a namespace outside the allowlist and a Deployment with no earlier revision', { timeout: 240_000 }, async (t) => {
  const s = await setup(t);
  const r = await drillCli([
    'validate',
    s.drill('outside', '  - scenario: rollback\n    params: { deployment: orders, namespace: payments }'),
  ]).done;
  assert.equal(r.code, 2);
  assert.match(r.stdout, /scenarios\[0\]\.params\.namespace: namespace "payments" is not in the target's namespaces \(prod\)/);

  // Through the adapter: an unknown revision and a paused Deployment are refused before any write.
  const d = createKubeDeployments(kubeConfigFor({ url: s.api.url }), 'prod');
  await assert.rejects(
    d.rollbackTo('orders', 7),
    /revision 7 of deployment\/orders is not in its history \(1 \(registry\.example\/orders:1\.0\.0\), 2 \(registry\.example\/orders:2\.0\.0\)\)/,
  );
  await assert.rejects(d.rollbackTo('orders', 2), /already runs the template of revision 2: nothing to roll back/);
  assert.equal(s.api.state.requests.filter((q) => q.method === 'PATCH').length, 0);
  const history = await d.history('orders');
  assert.deepEqual(
    history.history.map((h) => h.revision),
    [1, 2],
  );
  assert.equal(history.current.revision, 2);
});

test('the rollout watch re-lists after a 410 Expired and the rollback still completes', { timeout: 120_000 }, async (t) => {
  // Slow readiness keeps the rollout going while the watch is expired under it.
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } })],
    replaceDelayMs: 100,
    readyDelayMs: 1500,
  });
  t.after(() => api.stop());
  await deploy(api, '2.0.0');
  const d = createKubeDeployments(kubeConfigFor({ url: api.url }), 'prod');
  const lists = () => api.state.requests.filter((q) => q.verb === 'list' && q.resource === 'deployments').length;
  await d.rollbackTo('orders', 0);
  const waiting = d.waitRollout('orders', { timeoutMs: 60_000, signal: new AbortController().signal });
  await api.state.waitFor(() => api.state.openWatches('deployments') === 1, 'the rollout watch to open');
  const before = lists();
  api.faults.expireNextWatch('deployments');
  api.faults.dropWatches();
  await api.state.waitFor(
    () => lists() === before + 1 && api.state.openWatches('deployments') === 1,
    'a re-list and a new watch after the 410',
    10_000,
  );
  const r = await waiting;
  assert.equal(r.complete, true);
  assert.deepEqual(r.images, ['registry.example/orders:1.0.0']);
  assert.deepEqual([r.updated, r.available, r.total], [3, 3, 3]);
});

test('replica floor: every breach of min 3, max 20, CPU 70%, memory 80% is named; a missing HPA is one', () => {
  const hpaView = (o: Partial<AutoscalerView>): AutoscalerView => ({
    name: 'orders',
    target: { kind: 'Deployment', name: 'orders' },
    minReplicas: 3,
    maxReplicas: 20,
    cpuPercent: 70,
    memoryPercent: 80,
    currentReplicas: 3,
    ...o,
  });
  assert.equal(checkReplicaFloor({ name: 'orders', desired: 3, ready: 3 }, [hpaView({})]).ok, true);
  const bad = checkReplicaFloor({ name: 'orders', desired: 2, ready: 2 }, [
    hpaView({ minReplicas: 2, maxReplicas: 50, cpuPercent: 90, memoryPercent: null }),
  ]);
  assert.equal(bad.ok, false);
  assert.deepEqual(bad.breaches, [
    'deployment/orders runs 2 replicas, below the floor of 3',
    'deployment/orders has 2 ready replicas, below the floor of 3',
    'hpa/orders minReplicas 2 < 3',
    'hpa/orders maxReplicas 50 > 20',
    'hpa/orders CPU target 90% ≠ 70%',
    'hpa/orders does not scale on memory (policy: 80%)',
  ]);
  assert.deepEqual(checkReplicaFloor({ name: 'orders', desired: 3, ready: 3 }, []).breaches, [
    'no HorizontalPodAutoscaler targets deployment/orders',
  ]);
});
