/**
 * A Service in front of the test API server's pods: an HTTP server on loopback that answers each request as
 * one of the pods the API server reports Ready (round robin, as kube-proxy spreads connections over
 * endpoints), naming that pod and its image. No Ready pod: 503, as a Service with no endpoints refuses. So
 * the load sees a pod kill that takes the service below one Ready pod, and which version serves after a
 * rollback. It does not model a request in flight on a killed container being reset, nor kube-proxy's
 * endpoint propagation lag: endpoints change the instant the API server's pods do.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeApi, KubeObject } from './index.ts';

export interface PodService {
  url: string;
  /** Requests answered per pod name, and refusals with no Ready pod. */
  served: Map<string, number>;
  /** Every answer in order: when (this process's Date.now()), by which pod, and the version (image tag) it ran. */
  answers: { at: number; pod: string; version: string }[];
  failures: { 503: number };
  stop(): Promise<void>;
}

function ready(p: KubeObject): boolean {
  return (
    !p.metadata.deletionTimestamp &&
    (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True')
  );
}

export async function startPodService(api: KubeApi, o: { namespace: string; selector: string }): Promise<PodService> {
  let next = 0;
  const served = new Map<string, number>();
  const answers: PodService['answers'] = [];
  const failures = { 503: 0 };
  const server: Server = createServer((_req, res) => {
    const endpoints = api.state.list('pods', o.namespace, o.selector).filter(ready);
    if (endpoints.length === 0) {
      failures[503]++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no ready endpoints\n');
      return;
    }
    const pod = endpoints[next++ % endpoints.length]!;
    const name = pod.metadata.name!;
    served.set(name, (served.get(name) ?? 0) + 1);
    const image: string = pod.spec?.containers?.[0]?.image ?? '';
    answers.push({ at: Date.now(), pod: name, version: image.split(':').pop() ?? '' });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ pod: name, image, version: image.split(':').pop() }) + '\n');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    answers,
    failures,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
