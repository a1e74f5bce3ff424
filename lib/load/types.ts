/** What the load generator is asked to send: the profile and its request templates. */

export interface RequestTemplate {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD';
  path: string;
  /** JSON body; the string `{{seq}}` / `{{token}}` placeholders are filled per request. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Relative share of the arrival rate. */
  weight: number;
}

export interface LoadProfile {
  /** Base URL of the service, e.g. http://127.0.0.1:8080 . */
  url: string;
  /** Arrival rate, requests per second (open model: independent of how fast the service answers). */
  rate: number;
  requests: RequestTemplate[];
  timeoutMs: number;
  /** Cap on requests in flight; a request whose turn comes while the cap is reached is dropped. */
  maxInFlight: number;
  /** undici connection pool size. */
  connections: number;
  /**
   * A share of all requests (0 to below 1) that uploads an order attachment (`PUT /orders/<token>/attachment`,
   * the token in its bytes) and is ledgered in files.tsv: the file-storage data class. Absent or 0: none.
   */
  attachments?: { share: number };
}
