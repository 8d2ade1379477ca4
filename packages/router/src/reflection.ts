import { createRequire } from 'node:module';
import path from 'node:path';
import type { Server } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';

/**
 * createReflection returns a hook that adds gRPC server reflection for omnidict.v1.KV.
 *
 * `protoRoot` is the directory holding omnidict/v1/*.proto (packages/proto/proto in the monorepo).
 * @grpc/proto-loader is not a direct dependency of the router: it is loaded through
 * @grpc/reflection's own dependency, resolved from `resolveFrom` (a file path or URL of a module
 * of this package). Returns `{ error }` when either cannot be found: reflection is a debugging aid
 * and its absence must not stop the router (the caller logs it).
 */
export function createReflection(
  protoRoot: string,
  resolveFrom: string,
): { add: (server: Server) => void } | { error: string } {
  try {
    const req = createRequire(resolveFrom);
    const reflectionEntry = req.resolve('@grpc/reflection');
    const loader = createRequire(reflectionEntry)('@grpc/proto-loader') as {
      loadSync(files: string[], options: object): ConstructorParameters<typeof ReflectionService>[0];
    };
    const healthRoot = path.dirname(createRequire(resolveFrom).resolve('grpc-health-check/package.json'));
    const pkg = loader.loadSync(['omnidict/v1/kv.proto', 'health/v1/health.proto'], {
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
