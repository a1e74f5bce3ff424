/** A plain HTTP service: load and runbook commands only; nothing to open but a check that it answers. */
import { createExec } from '../adapters/exec.ts';
import { assertReachable } from './reachable.ts';
import type { TargetKind } from './types.ts';

export const httpTarget: TargetKind<'http'> = {
  kind: 'http',
  capabilities: () => ['exec', 'load'],
  async open(target) {
    await assertReachable(target.url);
    return {
      adapters: { exec: createExec({ DRILL_SERVICE_URL: target.url }) },
      serviceUrl: target.url,
      details: { kind: 'http', url: target.url },
      async close() {},
    };
  },
  async peek(target) {
    return { adapters: { exec: createExec() }, serviceUrl: target.url, note: `http target ${target.url}` };
  },
  async reopen(details) {
    return { adapters: { exec: createExec({ DRILL_SERVICE_URL: String(details.url) }) } };
  },
};
