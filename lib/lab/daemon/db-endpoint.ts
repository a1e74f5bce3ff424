/**
 * The lab's stable database address: a TCP proxy to the current primary. A failover repoints it and
 * closes every client connection, so applications reconnect to the new primary as they would after a
 * DNS or virtual-IP switch.
 */
import net from 'node:net';
import { listenOnLoopback } from './listen.ts';

export class DbEndpoint {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private boundPort = 0;

  constructor(
    private primary: number,
    private readonly log: (line: string) => void,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  get port(): number {
    return this.boundPort;
  }

  get primaryPort(): number {
    return this.primary;
  }

  get connections(): number {
    return this.pairs.size;
  }

  async listen(port = 0): Promise<number> {
    this.boundPort = await listenOnLoopback(this.server, port);
    return this.boundPort;
  }

  /** Points new connections at `port` and cuts the existing ones; returns how many were cut. */
  repoint(port: number): number {
    const from = this.primary;
    this.primary = port;
    const cut = this.pairs.size;
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    this.log(`db endpoint ${from} -> ${port}, ${cut} connections closed`);
    return cut;
  }

  close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    return new Promise((r) => this.server.close(() => r()));
  }

  private accept(client: net.Socket): void {
    // PostgreSQL's protocol is many small request/response messages: Nagle plus delayed ACK would add 40 ms.
    client.setNoDelay(true);
    const upstream = net.connect({ host: '127.0.0.1', port: this.primary });
    upstream.setNoDelay(true);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const cut = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
