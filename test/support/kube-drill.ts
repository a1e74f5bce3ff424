/**
 * What the Kubernetes-target tests each wrote out by hand: a kubeconfig for the test API server, and the
 * head of a drill file aimed at it. One context, `test-ctx`, on cluster `test` as user `drill`.
 */
import { writeFileSync } from 'node:fs';

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
