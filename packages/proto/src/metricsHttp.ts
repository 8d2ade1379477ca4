import { createServer } from 'node:http';

/** What a Prometheus registry (prom-client's `Registry`) offers to an exporter. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  /** The bound port (useful when 0 was asked for). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * serveMetrics exposes `GET /metrics` from `source` on `port` (0 = pick one), on `host` or on every
 * interface when it is undefined (what Prometheus scraping a pod needs). Other paths answer 404.
 * Resolves once listening; rejects if the port cannot be bound. The one exporter of PD, node and
 * router.
 */
export async function serveMetrics(source: MetricsSource, port: number, host?: string): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    source.metrics().then(
      (body) => res.writeHead(200, { 'content-type': source.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host?.replace(/^\[|\]$/g, ''), () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
