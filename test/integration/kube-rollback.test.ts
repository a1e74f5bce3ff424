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
import { KubeError } from '../../lib/adapters/kubernetes/errors.ts';
import { checkReplicaFloor } from '../../lib/scenario/probes/replica-floor.ts';
import type { AutoscalerView } from '../../lib/adapters/kubernetes/types.ts';
import { deployment, hpa, startKubeApi, type KubeApi } from '../support/kube-api/index.ts';
import { startPodService, type PodService } from '../support/kube-api/service.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';
import { kubeDrillHead, writeKubeconfig } from '../support/kube-drill.ts';
import { assertRto } from '../support/rto.ts';

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
    result: { rolloutSeconds: number; rolledOutAt: string; patchedAt: string; to: { revision: number } };
  };
  assert.ok(done.result.rolledOutAt, 'the rollout completed');
  // The rollout is 3 steps (maxSurge 1, maxUnavailable 0) of replacement 100 ms + Ready 250 ms = 1.05 s of the
  // server's timers, seen through the watch; 4 s leaves ~3 s for a loaded 2-core machine. A rollout wait that
  // polled every 4-5 s, or waited out a timeout, would not fit; below 0.9 s it was stamped before the pods were Ready.
  assert.ok(done.result.rolloutSeconds > 0.9 && done.result.rolloutSeconds < 4, `rollout ${done.result.rolloutSeconds}s`);
  assert.equal(done.result.to.revision, 1);
  // RTO runs from the fault mark (just before the patch) to 1.0.0 answering 10 requests in a row with the rollout
  // complete: the rollout, plus 10 answers at 25 req/s (0.4 s), plus the recovery check's period; the 3 s above the
  // rollout are that 0.4 s and ~2.5 s for a loaded machine. It is never below the rollout.
  const rto = assertRto(rec, {
    min: done.result.rolloutSeconds - 0.05,
    max: done.result.rolloutSeconds + 3,
    why: 'the rollout + 10 answers of 1.0.0 at 25 req/s + slack for a loaded machine',
  });
  t.diagnostic(`rollout ${done.result.rolloutSeconds}s, RTO ${rto}s, load ${rec.load.ok}/${rec.load.scheduled} ok`);

  // The load saw both versions, each when it should: 2.0.0 only before the rollback's patch, 1.0.0 only between the
  // patch and the end of the drill's restore (and alone once the rollout was complete), 2.0.0 only after the restore.
  // Times are one machine's clock read by two processes; each boundary is ordered by cause (a 1.0.0 pod exists only
  // after the patch; old pods stop answering before the watch that ends a rollout sees it).
  const at = (type: string) => Date.parse(events.find((e) => e.type === type)!.at as string);
  const patched = Date.parse(done.result.patchedAt);
  const rolledOut = Date.parse(done.result.rolledOutAt);
  const restoreStart = at('rollback.start');
  const restored = at('rollback.done');
  const versions = (from: number, to: number) => [...new Set(s.svc.answers.filter((a) => a.at >= from && a.at < to).map((a) => a.version))];
  const count = (from: number, to: number) => s.svc.answers.filter((a) => a.at >= from && a.at < to).length;
  assert.deepEqual(versions(0, patched), ['2.0.0'], 'before the patch only 2.0.0 answered');
  // Baseline 2 s at 25 req/s: about 50 answers; 25 tolerates a slow start of the generator.
  assert.ok(count(0, patched) >= 25, `${count(0, patched)} answers before the patch`);
  assert.deepEqual(versions(rolledOut, restoreStart), ['1.0.0'], 'once rolled back, only 1.0.0 answered until the restore');
  // At least the 10 in a row that recovery needs.
  assert.ok(count(rolledOut, restoreStart) >= 10, `${count(rolledOut, restoreStart)} answers on 1.0.0`);
  const lastOld = Math.max(...s.svc.answers.filter((a) => a.version === '1.0.0').map((a) => a.at));
  const firstOld = Math.min(...s.svc.answers.filter((a) => a.version === '1.0.0').map((a) => a.at));
  assert.ok(
    firstOld >= patched && lastOld <= restored,
    `1.0.0 answered from ${firstOld} to ${lastOld}, patch ${patched}, restored ${restored}`,
  );
  assert.deepEqual(versions(restored, Infinity), ['2.0.0'], 'after the restore only 2.0.0 answered');
  // Cooldown 1 s at 25 req/s: about 25 answers after the restore.
  assert.ok(count(restored, Infinity) >= 10, `${count(restored, Infinity)} answers after the restore`);
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

/**
 * A Deployment whose revision 2 was a bad deploy (an image no node can pull: the server keeps such pods in
 * ImagePullBackOff) that passed its 2 s progress deadline, and revision 3 that fixed it and is live now.
 */
async function withBrokenRevision2(t: { after(fn: () => unknown): void }) {
  // progressDeadlineSeconds 2: the controller gives up on a rollout that made no progress for 2 s.
  const seed = deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } });
  seed.spec.progressDeadlineSeconds = 2;
  const api = await startKubeApi({ objects: [seed], replaceDelayMs: 100, readyDelayMs: 100 });
  t.after(() => api.stop());
  const apps = kubeConfigFor({ url: api.url }).makeApiClient(AppsV1Api);
  const d0 = await apps.readNamespacedDeployment({ name: 'orders', namespace: 'prod' });
  d0.spec!.template.spec!.containers[0]!.image = 'unpullable.example/orders:2.0.0';
  await apps.replaceNamespacedDeployment({ name: 'orders', namespace: 'prod', body: d0 });
  const progressing = () =>
    api.state.get('deployments', 'prod', 'orders')!.status?.conditions?.find((c: { type: string }) => c.type === 'Progressing');
  await api.state.waitFor(() => progressing()?.reason === 'ProgressDeadlineExceeded', 'revision 2 to exceed its deadline', 10_000);
  await deploy(api, '3.0.0');
  return { api, progressing };
}

test('a rollback to a broken revision fails fast on the progress deadline, as kubectl rollout status does', {
  timeout: 120_000,
}, async (t) => {
  const { api, progressing } = await withBrokenRevision2(t);
  assert.equal(progressing()?.reason, 'NewReplicaSetAvailable');

  const d = createKubeDeployments(kubeConfigFor({ url: api.url }), 'prod');
  const back = await d.rollbackTo('orders', 2);
  assert.deepEqual(back.to.images, ['unpullable.example/orders:2.0.0']);
  const t0 = performance.now();
  await assert.rejects(d.waitRollout('orders', { timeoutMs: 20_000, signal: new AbortController().signal }), (e: unknown) => {
    assert.ok(e instanceof KubeError, String(e));
    assert.equal(e.reason, 'ProgressDeadlineExceeded');
    assert.equal(e.exitCode, 1, 'a rollout that cannot finish is the system failing the drill, not bad input');
    // kubectl's words first (DeploymentStatusViewer), then the controller's condition and what was seen.
    assert.match(
      e.message,
      /^deployment "orders" exceeded its progress deadline in namespace "prod" \(progressDeadlineSeconds: 2\): ReplicaSet "orders-[a-z0-9]+" has timed out progressing; 1\/3 updated, 3 available, 4 in total$/,
    );
    return true;
  });
  const took = performance.now() - t0;
  // The one new pod appears 100 ms after the patch (the last progress); the deadline counts 2 s from that
  // condition's lastUpdateTime, which has whole seconds, so it falls 1.1-2.1 s after the patch (t0 is taken when the
  // patch has answered: 0.8 s leaves 300 ms for that answer on a loaded machine). Up to 1.5 s more for a loaded
  // machine; the rollout timeout (20 s here, 5 min by default) is never waited out.
  assert.ok(took > 800 && took < 3600, `failed ${Math.round(took)} ms after the patch`);
  // The bad revision never took over: 3.0.0 still serves from three available pods, the new pod cannot pull.
  const pods = api.state.list('pods', 'prod', 'app=orders').filter((p) => !p.metadata.deletionTimestamp);
  assert.deepEqual(pods.map((p) => p.spec.containers[0].image).sort(), [
    'registry.example/orders:3.0.0',
    'registry.example/orders:3.0.0',
    'registry.example/orders:3.0.0',
    'unpullable.example/orders:2.0.0',
  ]);
  const stuck = pods.find((p) => p.spec.containers[0].image.startsWith('unpullable'))!;
  assert.equal(stuck.status.containerStatuses[0].state.waiting.reason, 'ImagePullBackOff');
  const state = await d.rollout('orders');
  assert.deepEqual(
    [state.complete, state.available, state.deadlineExceeded],
    [false, 3, `ReplicaSet "${back.to.replicaSet}" has timed out progressing.`],
  );
});

test('rollback drill to a broken revision: fails on the progress deadline in seconds, not the scenario timeout, and rolls forward', {
  timeout: 240_000,
}, async (t) => {
  const { api } = await withBrokenRevision2(t);
  const svc = await startPodService(api, { namespace: 'prod', selector: 'app=orders' });
  t.after(() => svc.stop());
  const dir = scratchDir('kube-rollback-broken');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url });
  const file = join(dir, 'broken.yaml');
  writeFileSync(
    file,
    [
      ...kubeDrillHead({ name: 'broken', kubeconfig, url: svc.url, context: false }),
      '  namespaces: [prod]',
      "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] } }",
      'load: { rate: 25, baseline: 2s, cooldown: 1s, timeout: 5s, requests: [{ method: GET, path: /version }] }',
      'scenarios:',
      '  - scenario: rollback',
      '    params: { deployment: orders, versionPath: /version, toRevision: 2, rolloutTimeout: 60s }',
      '    timeout: 60s',
      '',
    ].join('\n'),
  );
  const results = join(dir, 'results');
  const r = await drillCli(['run', file, '--results', results, '--yes', '--json']).done;
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const [runDir] = runFolders(results);
  const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'failed');
  assert.equal(rec.objectives.rto.measuredSeconds, null, 'never recovered');
  const events = readEvents(runDir!);
  const warned = events.find((e) => e.type === 'log' && e.level === 'warn')!;
  assert.match(
    String(warned.message),
    /^deployment "orders" exceeded its progress deadline in namespace "prod" \(progressDeadlineSeconds: 2\)/,
  );
  const failed = events.find((e) => e.type === 'recovery.failed') as unknown as { ms: number; probe: { detail: string } };
  assert.ok(failed, `recovery gave up; events: ${[...new Set(events.map((e) => e.type))].join(', ')}`);
  assert.match(
    failed.probe.detail,
    /^deployment "orders" exceeded its progress deadline \(ReplicaSet "orders-[a-z0-9]+" has timed out progressing\): 1\/3 updated, 3 available/,
  );
  // From the fault to giving up: the deadline (1.1-2.1 s after the patch, see the adapter test above) plus one
  // recovery poll (100 ms), and 2.5 s for a loaded machine; the scenario's 60 s timeout is never waited out.
  const fault = rec.marks.find((m: { name: string }) => m.name === 'fault-injected').ms;
  assert.ok(failed.ms - fault < 5000, `recovery gave up ${failed.ms - fault} ms after the fault`);
  // The drill's own rollback rolled forward to 3.0.0, and the bad revision never served.
  assert.equal(rec.actions[0].rollback.status, 'done');
  assert.equal(image(api), 'registry.example/orders:3.0.0');
  assert.deepEqual([...new Set(svc.answers.map((a) => a.version))], ['3.0.0']);
});

test('minReadySeconds: available lags ready, and the rollout waits for available', { timeout: 60_000 }, async (t) => {
  const seed = deployment({ name: 'orders', namespace: 'prod', replicas: 1, labels: { app: 'orders' } });
  seed.spec.minReadySeconds = 2;
  const api = await startKubeApi({ objects: [seed], replaceDelayMs: 50, readyDelayMs: 50 });
  t.after(() => api.stop());
  const apps = kubeConfigFor({ url: api.url }).makeApiClient(AppsV1Api);
  const d0 = await apps.readNamespacedDeployment({ name: 'orders', namespace: 'prod' });
  d0.spec!.template.spec!.containers[0]!.image = 'registry.example/orders:2.0.0';
  await apps.replaceNamespacedDeployment({ name: 'orders', namespace: 'prod', body: d0 });
  const t0 = performance.now();
  // The new pod is Ready within ~100 ms but not yet available: the Deployment shows fewer available than ready.
  await api.state.waitFor(() => {
    const s = api.state.get('deployments', 'prod', 'orders')!.status;
    return s.updatedReplicas === 1 && s.readyReplicas === 2 && s.availableReplicas < 2;
  }, 'the new pod ready but not available');
  const r = await createKubeDeployments(kubeConfigFor({ url: api.url }), 'prod').waitRollout('orders', {
    timeoutMs: 10_000,
    signal: new AbortController().signal,
  });
  assert.deepEqual([r.complete, r.available, r.total], [true, 1, 1]);
  const took = performance.now() - t0;
  // Available 2 s after the Ready condition's lastTransitionTime (~100 ms after the change), which has whole
  // seconds: 1.1-2.1 s after the change; the rollout cannot complete before that (less up to 300 ms for the PUT's
  // answer, after which t0 is taken), and 1.5 s more covers a loaded machine.
  assert.ok(took > 800 && took < 3600, `rolled out ${Math.round(took)} ms after the change`);
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
