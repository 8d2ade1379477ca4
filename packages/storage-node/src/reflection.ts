import { createRequire } from 'node:module';
import path from 'node:path';
import type { Server } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';

/**
 * createReflection returns a hook adding gRPC server reflection for the node's services
 * (omnidict.node.v1.NodeKV / NodeAdmin and grpc.health.v1). `protoRoot` holds omnidict/**.proto;
 * @grpc/proto-loader is loaded through @grpc/reflection's own dependency. Returns `{ error }` when
 * something is missing: reflection is a debugging aid and must not stop the node (the caller logs it).
 */
export function createReflection(
  protoRoot: string,
  resolveFrom: string,
): { add: (server: Server) => void } | { error: string } {
  try {
    const req = createRequire(resolveFrom);
    const loader = createRequire(req.resolve('@grpc/reflection'))('@grpc/proto-loader') as {
      loadSync(files: string[], options: object): ConstructorParameters<typeof ReflectionService>[0];
    };
    const healthRoot = path.dirname(req.resolve('grpc-health-check/package.json'));
    const pkg = loader.loadSync(['omnidict/node/v1/node.proto', 'health/v1/health.proto'], {
      includeDirs: [protoRoot, path.join(healthRoot, 'proto')],
      keepCase: false,
      longs: Number,
      defaults: true,
    });
    const service = new ReflectionService(pkg);
    return { add: (server) => service.addToServer(server) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
