import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/**
 * A loopback port nobody listens on right now: bind port 0, read what the kernel gave, close.
 * Another process can take it before the caller binds it; callers that can bind 0 themselves should.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('kernel gave no port'))));
    });
  });
}

/** True when nothing listens on host:port, checked by binding it for an instant. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * A free loopback port below the kernel's ephemeral range, for servers that keep their port across
 * restarts (PostgreSQL). bind(0) and outgoing connections only take ports inside that range, so a port
 * outside it cannot be grabbed between choosing it and binding it, nor while the lab is down.
 */
export async function freeStablePort(host = '127.0.0.1'): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const low = Number(range.trim().split(/\s+/)[0]);
  const floor = 10_000;
  if (Number.isInteger(low) && low - floor >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = floor + Math.floor(Math.random() * (low - floor));
      if (await portIsFree(port, host)) return port;
    }
  }
  return freePort(host);
}
