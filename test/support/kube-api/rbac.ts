/**
 * Bearer-token authentication and RBAC authorization in miniature, with the API server's exact 401/403
 * wording: the adapter's error messages are tested against these, so they must match what a cluster says.
 */
import { forbidden, unauthorized, type ApiError } from './status.ts';
import type { RbacRule, RbacUser } from './types.ts';

/** What the authorizer decides on, as in k8s.io/apiserver's authorizer.Attributes. */
export interface Attributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/**
 * The user behind a request. With no tokens configured the server is open (like a kind cluster with an
 * admin kubeconfig); with tokens, a missing or unknown token is 401.
 */
export function authenticate(tokens: Record<string, RbacUser> | undefined, authorization: string | undefined): RbacUser | undefined {
  if (!tokens || Object.keys(tokens).length === 0) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  const user = m ? tokens[m[1]!.trim()] : undefined;
  if (!user) throw unauthorized();
  return user;
}

function covers(list: string[], value: string): boolean {
  return list.includes('*') || list.includes(value);
}

function allows(rule: RbacRule, a: Attributes): boolean {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (!covers(rule.verbs, a.verb) || !covers(rule.apiGroups, a.group) || !covers(rule.resources, resource)) return false;
  // A Role's rules apply only in its namespace, so they never grant cluster-scoped requests.
  if (rule.namespaces && (a.namespace === undefined || !rule.namespaces.includes(a.namespace))) return false;
  if (rule.resourceNames && rule.resourceNames.length > 0 && (a.name === undefined || !rule.resourceNames.includes(a.name))) return false;
  return true;
}

export function authorize(user: RbacUser | undefined, a: Attributes): void {
  if (!user || user.rules.some((r) => allows(r, a))) return;
  throw forbiddenError(user.user, a);
}

export function forbiddenError(username: string, a: Attributes): ApiError {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const qualified = a.group ? `${a.resource}.${a.group}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const reason = `User "${username}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}`;
  const message = a.name ? `${qualified} "${a.name}" is forbidden: ${reason}` : `${qualified} is forbidden: ${reason}`;
  return forbidden(message, { resource: a.resource, group: a.group, ...(a.name ? { name: a.name } : {}) });
}
