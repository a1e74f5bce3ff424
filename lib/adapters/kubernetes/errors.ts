/**
 * Kubernetes failures told to a person: which request was refused or failed, why, and what to change.
 * Drill output lands in incident channels and audit records, so a 403 names the missing RBAC rule as a
 * Role snippet, and an unreachable API server names the URL that was tried.
 */
import { ApiException } from '@kubernetes/client-node';
import { UserError } from '../../errors.ts';

/** What the adapter was doing when a call failed. */
export interface KubeCall {
  verb: string;
  /** Plural resource, with a subresource if any: `pods`, `deployments/scale`. */
  resource: string;
  /** API group: '' for core, `apps`, `autoscaling`. */
  group: string;
  namespace: string;
  name?: string;
  /** The API server URL, for messages about reaching it. */
  server: string;
}

export type KubeErrorReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'Conflict'
  | 'AlreadyExists'
  | 'Invalid'
  | 'Expired'
  | 'Timeout'
  | 'ProgressDeadlineExceeded'
  | 'Unreachable'
  | 'ServerError'
  | 'BadRequest'
  | 'Unknown';

/** A failed Kubernetes call, or a wait that ran out of time. `status` is the HTTP code when there was one. */
export class KubeError extends UserError {
  readonly status: number | undefined;
  readonly reason: KubeErrorReason;
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;

  constructor(
    message: string,
    fields: {
      status?: number;
      reason: KubeErrorReason;
      verb: string;
      resource: string;
      namespace: string;
      next?: string;
      untouched?: string;
      exitCode?: number;
    },
  ) {
    super(message, { exitCode: fields.exitCode ?? 2, next: fields.next, untouched: fields.untouched });
    this.name = 'KubeError';
    this.status = fields.status;
    this.reason = fields.reason;
    this.verb = fields.verb;
    this.resource = fields.resource;
    this.namespace = fields.namespace;
  }
}

/** A guardrail refused an action before any call was made: the drill's configuration asks for too much. */
export class KubeGuardrailError extends UserError {
  constructor(message: string, next: string) {
    super(message, { exitCode: 2, untouched: 'nothing: the request was refused before any call to the API server', next });
    this.name = 'KubeGuardrailError';
  }
}

/** The RBAC rule that would allow `call`, as it goes into a Role's `rules:`. */
export function roleRule(call: Pick<KubeCall, 'verb' | 'resource' | 'group'>): string {
  return [`- apiGroups: ["${call.group}"]`, `  resources: ["${call.resource}"]`, `  verbs: ["${call.verb}"]`].join('\n');
}

function what(call: KubeCall): string {
  const target = call.name ? `${call.resource} "${call.name}"` : call.resource;
  return `${call.verb} ${target} in namespace "${call.namespace}"`;
}

/** The Status body of an API error, parsed if it is one. client-node hands it over as text. */
function statusBody(e: ApiException<unknown>): {
  message?: string;
  reason?: string;
  details?: { causes?: { field?: string; message?: string }[] };
} {
  const b = e.body;
  if (typeof b === 'string') {
    try {
      return JSON.parse(b) as ReturnType<typeof statusBody>;
    } catch {
      return { message: b.slice(0, 500) };
    }
  }
  return (b && typeof b === 'object' ? b : {}) as ReturnType<typeof statusBody>;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
]);

/** The system error code of a failed connection (node-fetch FetchError, or a cause chain), if that is what `e` is. */
export function networkCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/** True when retrying later can help: the server was unreachable, too slow to answer, or said so (429, 5xx). */
export function isTransient(e: unknown): boolean {
  if (networkCode(e)) return true;
  if (e instanceof KubeError) return e.reason === 'Unreachable' || e.reason === 'ServerError' || e.reason === 'Timeout';
  return e instanceof ApiException && (e.code === 429 || e.code >= 500);
}

export function httpStatus(e: unknown): number | undefined {
  if (e instanceof ApiException) return e.code;
  if (e instanceof KubeError) return e.status;
  if (typeof e !== 'object' || e === null) return undefined;
  const s = (e as { statusCode?: unknown }).statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Turn anything a Kubernetes call threw into a KubeError that explains itself. */
export function explain(e: unknown, call: KubeCall, requestTimeoutMs?: number): KubeError {
  if (e instanceof KubeError) return e;
  const base = { verb: call.verb, resource: call.resource, namespace: call.namespace };
  const net = networkCode(e);
  if (net) {
    return new KubeError(`cannot reach the Kubernetes API server at ${call.server} (${net}) to ${what(call)}`, {
      ...base,
      reason: 'Unreachable',
      next: 'check the server address of the kubeconfig context, the VPN or network path to the cluster, and that the cluster is running',
    });
  }
  const name = (e as { name?: string }).name;
  if (name === 'AbortError' || name === 'TimeoutError' || (e as { type?: string }).type === 'aborted') {
    return new KubeError(
      `the Kubernetes API server at ${call.server} did not answer within ${requestTimeoutMs ?? '?'} ms to ${what(call)}`,
      {
        ...base,
        reason: 'Timeout',
        next: 'the API server is overloaded or the network path drops packets; check the cluster control plane health',
      },
    );
  }
  const status = httpStatus(e);
  if (status === undefined) {
    return new KubeError(`${what(call)} failed: ${(e as Error)?.message ?? String(e)}`, { ...base, reason: 'Unknown' });
  }
  const body = e instanceof ApiException ? statusBody(e) : {};
  const said = body.message ? `: ${body.message}` : '';
  switch (status) {
    case 401:
      return new KubeError(
        `the Kubernetes API server at ${call.server} did not accept the credentials (401 Unauthorized) to ${what(call)}`,
        {
          ...base,
          status,
          reason: 'Unauthorized',
          next: 'the token or client certificate of the kubeconfig context is missing, expired or for another cluster: refresh the credentials (e.g. `az aks get-credentials`) and run again',
        },
      );
    case 403:
      return new KubeError(
        `not allowed to ${what(call)} (403 Forbidden${said}). The drill's identity needs this rule in a Role bound to it in namespace "${call.namespace}":\n${roleRule(call)}`,
        {
          ...base,
          status,
          reason: 'Forbidden',
          next: `add the rule to the drill's Role in namespace "${call.namespace}" (see the RBAC example in the docs) and run again`,
        },
      );
    case 404:
      return new KubeError(
        `${call.name ? `${call.resource} "${call.name}"` : call.resource} not found in namespace "${call.namespace}" (404${said}) while trying to ${call.verb} it`,
        {
          ...base,
          status,
          reason: 'NotFound',
          next: 'check the namespace and selector in the drill file against the cluster',
        },
      );
    case 409:
      return new KubeError(`conflict trying to ${what(call)} (409${said}): it changed while the drill was acting on it`, {
        ...base,
        status,
        reason: body.reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict',
        next: 'something else is changing this workload at the same time (a deploy, an operator); run again when it is settled',
      });
    case 410:
      return new KubeError(`the API server expired the watch or list position to ${what(call)} (410 Gone${said})`, {
        ...base,
        status,
        reason: 'Expired',
      });
    case 422: {
      const causes = (body.details?.causes ?? []).map((c) => `${c.field ? `${c.field}: ` : ''}${c.message}`).join('; ');
      return new KubeError(
        `the API server refused to ${what(call)} as invalid (422${said}${causes && !said.includes(causes) ? `; ${causes}` : ''})`,
        { ...base, status, reason: 'Invalid' },
      );
    }
    case 400:
      return new KubeError(`the API server refused the request to ${what(call)} as malformed (400${said})`, {
        ...base,
        status,
        reason: 'BadRequest',
        next: 'check the label selector syntax in the drill file (e.g. `app=orders,tier in (web,api)`)',
      });
    default:
      return new KubeError(`the API server failed to ${what(call)} (${status}${said})`, {
        ...base,
        status,
        reason: status >= 500 || status === 429 ? 'ServerError' : 'Unknown',
      });
  }
}
