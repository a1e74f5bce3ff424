/**
 * `drill recover` on a Kubernetes target: a run killed (SIGKILL) right after it deleted a pod leaves a journal
 * with the kill and no rollback; recover reopens the cluster from what the journal recorded and finishes the
 * rollback: the Deployment is whole again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployment, startKubeApi } from '../support/kube-api/index.ts';
import { startPodService } from '../support/kube-api/service.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

test('a killed run on the Kubernetes target is finished by drill recover from its journal', { timeout: 240_000 }, async (t) => {
  // The replacement takes long enough that the run is still observing when it is killed.
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } })],
    replaceDelayMs: 4000,
    readyDelayMs: 200,
  });
  t.after(() => api.stop());
  const svc = await startPodService(api, { namespace: 'prod', selector: 'app=orders' });
  t.after(() => svc.stop());
  const dir = scratchDir('kube-recover');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n  - name: t\n    cluster: { server: "${api.url}" }\nusers:\n  - name: u\n    user: {}\ncontexts:\n  - name: ctx\n    context: { cluster: t, user: u }\ncurrent-context: ctx\n`,
  );
  const file = join(dir, 'drill.yaml');
  writeFileSync(
    file,
    `name: recover\nkind: adhoc\ntarget: { kind: kubernetes, kubeconfig: ${kubeconfig}, namespaces: [prod], url: ${svc.url} }\npolicy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] } }\nload: { rate: 20, baseline: 2s, cooldown: 1s, timeout: 5s }\nscenarios:\n  - scenario: pod-kill\n    params: { selector: app=orders }\n    timeout: 60s\n`,
  );
  const results = join(dir, 'results');
  const run = drillCli(['run', file, '--results', results, '--yes']);
  t.after(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
  });
  await waitFor('the kill to be done', () => /killed orders-/.test(run.output()), 180_000);
  run.child.kill('SIGKILL');
  await run.done;
  const [runDir] = runFolders(results);
  assert.ok(runDir, 'the run left its folder');
  const before = readEvents(runDir!);
  assert.ok(
    before.some((e) => e.type === 'action.intent') && !before.some((e) => e.type.startsWith('rollback.')),
    'journal: the kill, no rollback',
  );
  const live = () => api.state.list('pods', 'prod').filter((p) => !p.metadata.deletionTimestamp).length;
  assert.equal(live(), 2, 'one pod down when the run died');

  const r = await drillCli(['recover', '--results', results]).done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // Converged, or already whole when recover looked (the Deployment replaces the pod by itself): checked either way.
  assert.match(r.stdout, /(rolled back|already held): kill replicas: .*3\/3 replicas of deployment\/orders ready/);
  assert.equal(live(), 3);
  const after = readEvents(runDir!);
  assert.ok(
    after.some((e) => e.recovered === true),
    'recover appended to the same journal',
  );
});
