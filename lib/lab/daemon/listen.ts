import type { Server } from 'node:net';

/** Listens on 127.0.0.1 (the lab serves loopback only) and resolves with the port bound: `port` 0 takes a free one. */
export function listenOnLoopback(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}
