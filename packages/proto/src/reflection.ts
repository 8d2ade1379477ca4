import { createRequire } from 'node:module';
import path from 'node:path';
import type { Server } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

/**
 * createReflection returns a hook adding gRPC server reflection for the given OmniDict .proto files
 * (paths under this package's `proto/` directory, e.g. 'omnidict/v1/kv.proto') plus
 * grpc.health.v1. `resolveFrom` is a file path of the calling binary (process.argv[1]); this package
 * is resolved from there, so the files are found wherever it is installed. `protoRoot` overrides
 * the directory of the OmniDict .proto files. Returns `{ error }` when something is missing:
 * reflection is a debugging aid and its absence must not stop a server (the caller logs it).
 */
export function createReflection(
  protoFiles: readonly string[],
  options: { resolveFrom: string; protoRoot?: string | undefined },
): { add: (server: Server) => void } | { error: string } {
  try {
    const ownPackageJson = createRequire(options.resolveFrom).resolve('@omnidict/proto/package.json');
    const protoRoot = options.protoRoot ?? path.join(path.dirname(ownPackageJson), 'proto');
    const healthRoot = path.dirname(createRequire(ownPackageJson).resolve('grpc-health-check/package.json'));
    const definitions = loadSync([...protoFiles, 'health/v1/health.proto'], {
      includeDirs: [protoRoot, path.join(healthRoot, 'proto')],
      keepCase: false,
      longs: Number,
      defaults: true,
    });
    const service = new ReflectionService(definitions);
    return { add: (server) => service.addToServer(server) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
