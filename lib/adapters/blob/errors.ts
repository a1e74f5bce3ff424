import { UserError } from '../../errors.ts';
import { redactSecrets } from '../../util/secrets.ts';

export type BlobErrorCode =
  | 'not-found'
  | 'truncated'
  | 'length-mismatch'
  | 'checksum-mismatch'
  | 'changed'
  | 'range-failed'
  | 'request-failed'
  | 'upload-failed'
  | 'aborted'
  | 'invalid-argument';

/**
 * A Blob transfer failure worth telling a person about. The message names the container and blob
 * and is passed through redactSecrets, because SDK errors can carry request URLs with a SAS.
 */
export class BlobTransferError extends Error {
  readonly code: BlobErrorCode;
  readonly container: string;
  readonly blob: string;
  readonly statusCode: number | undefined;

  constructor(code: BlobErrorCode, container: string, blob: string, message: string, statusCode?: number) {
    super(redactSecrets(message));
    this.name = 'BlobTransferError';
    this.code = code;
    this.container = container;
    this.blob = blob;
    this.statusCode = statusCode;
  }
}

/** Missing or contradictory storage configuration: invalid input, exit code 2. */
export class BlobConfigError extends UserError {
  constructor(message: string, next?: string) {
    super(redactSecrets(message), { exitCode: 2, next, untouched: 'no storage request was made' });
    this.name = 'BlobConfigError';
  }
}

/** Status and service error code of an SDK RestError, without pulling the SDK's type here. */
export function restStatus(e: unknown): { status: number | undefined; code: string | undefined } {
  if (typeof e !== 'object' || e === null) return { status: undefined, code: undefined };
  const r = e as { statusCode?: unknown; code?: unknown; details?: { errorCode?: unknown } };
  const status = typeof r.statusCode === 'number' ? r.statusCode : undefined;
  const code = typeof r.details?.errorCode === 'string' ? r.details.errorCode : typeof r.code === 'string' ? r.code : undefined;
  return { status, code };
}

/** A one-line, secret-free description of any thrown value. */
export function describeError(e: unknown): string {
  const { status, code } = restStatus(e);
  // Service messages carry RequestId/Time on later lines; the first line is the human part.
  const msg = (e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)).trim();
  const head = status !== undefined ? `HTTP ${status}${code ? ` ${code}` : ''}` : '';
  // Azurite and Azure name a 403 differently (AuthorizationFailure, AuthenticationFailed,
  // AuthorizationPermissionMismatch); the likely cause is the same.
  const hint = status === 403 ? 'the configured credential does not allow this (SAS permissions or expiry, key, or network rules)' : '';
  return redactSecrets([head, msg, hint].filter(Boolean).join(': ') || 'unknown error');
}
