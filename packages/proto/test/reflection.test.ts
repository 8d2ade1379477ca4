import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createReflection } from '@omnidict/proto';

type ListResponse = { listServicesResponse?: { service: Array<{ name: string }> } };

test('server reflection lists the OmniDict service and grpc.health.v1 over a real gRPC call', async () => {
  const reflection = createReflection(['omnidict/v1/kv.proto'], { resolveFrom: __filename });
  if (!('add' in reflection)) throw new Error(`reflection unavailable: ${reflection.error}`);
  const server = new grpc.Server();
  reflection.add(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const reflectionDir = path.dirname(createRequire(__filename).resolve('@grpc/reflection/package.json'));
  const def = loadSync('grpc/reflection/v1alpha/reflection.proto', {
    includeDirs: [path.join(reflectionDir, 'build', 'proto')],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1alpha: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.reflection.v1alpha.ServerReflection(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  try {
    const names = await new Promise<string[]>((resolve, reject) => {
      const call = (
        client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, ListResponse> }
      ).serverReflectionInfo();
      call.on('data', (res: ListResponse) => {
        resolve((res.listServicesResponse?.service ?? []).map((s) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ listServices: '*' });
    });
    expect(names).toEqual(expect.arrayContaining(['omnidict.v1.KV', 'grpc.health.v1.Health']));
  } finally {
    client.close();
    server.forceShutdown();
  }
});

test('a missing proto directory is reported, not thrown', () => {
  const r = createReflection(['omnidict/v1/kv.proto'], { resolveFrom: __filename, protoRoot: '/nonexistent' });
  expect('error' in r).toBe(true);
});
