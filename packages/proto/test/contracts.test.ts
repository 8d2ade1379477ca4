import * as grpc from '@grpc/grpc-js';
import { common, kv } from '@omnidict/proto';

describe('generated contracts', () => {
  test('a shard descriptor survives an encode/decode round trip, 2^32 range end included', () => {
    const shard: common.ShardDescriptor = {
      id: 7,
      start: 0x8000_0000,
      end: 2 ** 32,
      epoch: { version: 3, confVer: 5 },
      replicas: [
        { replicaId: 21, nodeId: 1, role: common.ReplicaRole.REPLICA_ROLE_VOTER },
        { replicaId: 22, nodeId: 2, role: common.ReplicaRole.REPLICA_ROLE_LEARNER },
      ],
    };
    const bytes = common.ShardDescriptor.encode(shard).finish();
    expect(common.ShardDescriptor.decode(bytes)).toEqual(shard);
  });

  test('compare-and-swap can express "expect absent" distinctly from an expected value', () => {
    const absent = kv.CompareAndSwapRequest.decode(
      kv.CompareAndSwapRequest.encode({
        key: Buffer.from('k'),
        expected: { $case: 'expectAbsent', value: true },
        value: Buffer.from('v'),
        ttlMs: 0,
      }).finish(),
    );
    expect(absent.expected).toEqual({ $case: 'expectAbsent', value: true });
    const byValue = kv.CompareAndSwapRequest.decode(
      kv.CompareAndSwapRequest.encode({
        key: Buffer.from('k'),
        expected: { $case: 'expectedValue', value: Buffer.from('') },
        value: Buffer.from('v'),
        ttlMs: 0,
      }).finish(),
    );
    expect(byValue.expected?.$case).toBe('expectedValue');
  });

  test('the KV service definition serves a real gRPC call over loopback', async () => {
    const server = new grpc.Server();
    const impl: Partial<kv.KVServer> = {
      put: (call, cb) => cb(null, { modIndex: call.request.value.length + 40 }),
    };
    server.addService(kv.KVService, impl as kv.KVServer);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const client = new kv.KVClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const res = await new Promise<kv.PutResponse>((resolve, reject) =>
        client.put({ key: Buffer.from('a'), value: Buffer.from('xy'), ttlMs: 0 }, (err, r) =>
          err ? reject(err) : resolve(r),
        ),
      );
      expect(res.modIndex).toBe(42);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
