/**
 * metav1.Status bodies. Clients branch on `reason` and `code` (kubectl prints `message`, client-go's
 * IsNotFound/IsConflict read `reason`), so every failure goes out in this shape, never as plain text.
 */

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: StatusCause[]; retryAfterSeconds?: number };
  code: number;
}

/** Thrown by handlers; the router turns it into the HTTP status and Status body. */
export class ApiError extends Error {
  constructor(readonly body: StatusBody) {
    super(body.message ?? body.reason ?? `HTTP ${body.code}`);
  }
  get code(): number {
    return this.body.code;
  }
}

interface Target {
  resource: string;
  group: string;
  name?: string;
}

function failure(code: number, reason: string, message: string, details?: StatusBody['details']): ApiError {
  return new ApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

/** The API server names a resource `deployments.apps` outside the core group. */
function qualified(t: Target): string {
  return t.group ? `${t.resource}.${t.group}` : t.resource;
}

export function notFound(t: Target & { name: string }): ApiError {
  return failure(404, 'NotFound', `${qualified(t)} "${t.name}" not found`, { name: t.name, group: t.group, kind: t.resource });
}

export function alreadyExists(t: Target & { name: string }): ApiError {
  return failure(409, 'AlreadyExists', `${qualified(t)} "${t.name}" already exists`, { name: t.name, group: t.group, kind: t.resource });
}

export function conflict(t: Target & { name: string }): ApiError {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(t)} "${t.name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name: t.name, group: t.group, kind: t.resource },
  );
}

export function invalid(t: Target & { kind: string; name: string }, causes: StatusCause[]): ApiError {
  const what = causes.map((c) => `${c.field ? `${c.field}: ` : ''}${c.message}`).join(', ');
  return failure(422, 'Invalid', `${t.kind}${t.group ? `.${t.group}` : ''} "${t.name}" is invalid: ${what}`, {
    name: t.name,
    group: t.group,
    kind: t.kind,
    causes,
  });
}

export function badRequest(message: string): ApiError {
  return failure(400, 'BadRequest', message);
}

export function unauthorized(): ApiError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

export function forbidden(message: string, t: Target): ApiError {
  return failure(403, 'Forbidden', message, { ...(t.name ? { name: t.name } : {}), group: t.group, kind: t.resource });
}

export function gone(message: string): ApiError {
  return failure(410, 'Expired', message);
}

export function methodNotAllowed(method: string): ApiError {
  return failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`);
}

/**
 * 415 as the API server words it (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/negotiation/errors.go,
 * errUnsupportedMediaType): the accepted types are the route's supportedTypes — built-in resources
 * (endpoints/installer.go) take strategic merge patch, custom resources
 * (apiextensions-apiserver pkg/apiserver/customresource_handler.go) do not. Server-side apply is listed as the
 * real server lists it, though this one does not implement it.
 */
export function unsupportedMediaType(accepts: string[]): ApiError {
  return failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepts.join(', ')}`,
  );
}

export function pathNotFound(): ApiError {
  return failure(404, 'NotFound', 'the server could not find the requested resource');
}

export function success(details: StatusBody['details']): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', ...(details ? { details } : {}), code: 200 };
}
