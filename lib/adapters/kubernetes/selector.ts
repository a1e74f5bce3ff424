/**
 * Label selectors on the client side: matching a drill's selector against a workload's pod template (to find
 * the workload when none of its pods exist right now) and spelling a workload's spec selector as a query.
 */
import type { V1LabelSelector } from '@kubernetes/client-node';
import { matchesSelector, parseSelector } from '../selector.ts';

/** Whether labels match a selector the API server has already accepted. */
export function selectorMatches(selector: string, labels: Record<string, string> | undefined): boolean {
  return matchesSelector(labels ?? {}, parseSelector(selector));
}

/** A workload's spec.selector as the `labelSelector` query string. */
export function selectorToString(sel: V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${(e.values ?? []).join(',')})`);
  }
  return parts.join(',');
}
