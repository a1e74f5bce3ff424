import { WriteFate, type WriteFateCode } from './ledger.ts';
import { Outcome, type OutcomeCode } from '../measure/request-log.ts';

/**
 * The reason the generator aborts a request whose timeout (counted from its scheduled send) ran out.
 * One shared instance: a timeout storm must not allocate an Error, with its stack, per request.
 */
export class LoadTimeoutError extends Error {
  readonly code = 'DRILL_LOAD_TIMEOUT';
  constructor() {
    super('no response within the request timeout, counted from the scheduled send');
    this.name = 'LoadTimeoutError';
  }
}
export const TIMED_OUT = new LoadTimeoutError();

export function classifyStatus(status: number): OutcomeCode {
  if (status >= 500) return Outcome.http5xx;
  if (status >= 400) return Outcome.http4xx;
  return Outcome.ok;
}

const REFUSED_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);
// undici's own timers (backstops behind ours) and aborts: the generator only aborts on timeout.
const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'DRILL_LOAD_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_ABORTED',
  'ABORT_ERR',
]);

function fields(e: unknown): { code: unknown; name: unknown; message: unknown; cause: unknown } | null {
  return typeof e === 'object' && e !== null ? (e as { code: unknown; name: unknown; message: unknown; cause: unknown }) : null;
}

/** Outcome of a request that failed without an HTTP status. Looks one level into `cause`, where wrappers keep the socket error. */
export function classifyError(err: unknown): OutcomeCode {
  for (let e = fields(err), depth = 0; e !== null && depth < 2; e = fields(e.cause), depth++) {
    if (typeof e.code === 'string') {
      if (REFUSED_CODES.has(e.code)) return Outcome.refused;
      if (TIMEOUT_CODES.has(e.code)) return Outcome.timeout;
    }
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return Outcome.timeout;
    if (typeof e.message === 'string' && e.message.includes('other side closed')) return Outcome.refused;
  }
  return Outcome.other;
}

// The connection was never made, so the request never left: the write definitely did not happen.
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * A write's fate from the HTTP status it got in time: 4xx is the service saying no before it committed;
 * a 5xx may come after the commit (the database died between the insert and the answer), so it is
 * unknown unless the service marked it not applied (WRITE_NOT_APPLIED_HEADER).
 */
export function writeFateOfStatus(status: number, notApplied: boolean): WriteFateCode {
  if (status >= 500) return notApplied ? WriteFate.failed : WriteFate.unknown;
  if (status >= 400) return WriteFate.failed;
  return WriteFate.ok;
}

/** A write's fate from a request error: refused on connect never went out; anything after the send is unknown. */
export function writeFateOfError(err: unknown): WriteFateCode {
  for (let e = fields(err), depth = 0; e !== null && depth < 2; e = fields(e.cause), depth++) {
    if (typeof e.code === 'string' && NOT_SENT_CODES.has(e.code)) return WriteFate.failed;
  }
  return WriteFate.unknown;
}
