/**
 * What the Kubernetes-target tests each wrote out by hand: a kubeconfig for the test API server, and the
 * head of a drill file aimed at it. One context, `test-ctx`, on cluster `test` as user `drill`.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { KubeApi } from './kube-api/index.ts';
import { startPodService, type PodService } from './kube-api/service.ts';
import { scratchDir } from './tmp.ts';

export const TEST_CONTEXT = 'test-ctx';

export function writeKubeconfig(path: string, o: { server: string; namespace?: string; token?: string }): string {
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '  - name: test',
      `    cluster: { server: "${o.server}" }`,
      'users:',
      '  - name: drill',
      `    user: ${o.token ? `{ token: ${o.token} }` : '{}'}`,
      'contexts:',
      `  - name: ${TEST_CONTEXT}`,
      `    context: { cluster: test, user: drill${o.namespace ? `, namespace: ${o.namespace}` : ''} }`,
      `current-context: ${TEST_CONTEXT}`,
      '',
    ].join('\n'),
  );
  return path;
}

/** `name`, `kind: adhoc` and the target's first lines; the caller adds the rest of the target and the drill. */
export function kubeDrillHead(o: { name: string; kubeconfig: string; url: string; context?: boolean }): string[] {
  return [
    `name: ${o.name}`,
    'kind: adhoc',
    'target:',
    '  kind: kubernetes',
    `  kubeconfig: ${o.kubeconfig}`,
    ...(o.context === false ? [] : [`  context: ${TEST_CONTEXT}`]),
    `  url: ${o.url}`,
  ];
}

/**
 * What every drill against the test API server needs beside it: the service whose pods it serves (the load's
 * target), a scratch folder and a kubeconfig there. All of it is stopped and removed when the test ends.
 */
export async function workloadBeside(
  t: TestContext,
  api: KubeApi,
  scratch: string,
  kubeconfig: { namespace?: string; token?: string } = {},
): Promise<{ svc: PodService; dir: string; kubeconfig: string }> {
  const svc = await startPodService(api, { namespace: 'prod', selector: 'app=orders' });
  t.after(() => svc.stop());
  const dir = scratchDir(scratch);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { svc, dir, kubeconfig: writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url, ...kubeconfig }) };
}
