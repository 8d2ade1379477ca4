import { serveMetrics } from '../src/index.js';

const source = { metrics: async () => 'omnidict_up 1\n', contentType: 'text/plain; version=0.0.4' };

test('serveMetrics answers GET /metrics with the registry text and 404 elsewhere', async () => {
  const server = await serveMetrics(source, 0, '127.0.0.1');
  try {
    const ok = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe(source.contentType);
    expect(await ok.text()).toBe('omnidict_up 1\n');
    expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
  } finally {
    await server.close();
  }
});

test('a registry failure is a 500 with its message; a taken port rejects instead of crashing', async () => {
  const failing = { metrics: async () => Promise.reject(new Error('collector broke')), contentType: 'text/plain' };
  const server = await serveMetrics(failing, 0, '127.0.0.1');
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.text()).toContain('collector broke');
    await expect(serveMetrics(source, server.port, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
  } finally {
    await server.close();
  }
});
