/** Free loopback ports for tests; the lab uses the same helper (bind 0, read, close). */
export { freePort, portIsFree } from '../../lib/lab/ports.ts';
