import * as grpc from '@grpc/grpc-js';
import { nodepb, OmniError } from '@omnidict/proto';
import { LevelEngine, type Logger, NetTransport, noopLogger, type RaftHostConfig } from '@omnidict/raft/runtime';
import { HealthImplementation } from 'grpc-health-check';
import { DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES } from './kv/buildCommand.js';
import { PdClient } from './pd/pdClient.js';
import { type StaleReplica, Store, toOmniError } from './store/store.js';

export interface NodeOptions {
  readonly nodeId: number;
  /** host:port for NodeKV, NodeAdmin, health and reflection (port 0 = pick one). */
  readonly listen: string;
  /** Service address given to PD and routers; default `listen` with the bound port. */
  readonly advertise?: string;
  /** host:port for the Raft transport (port 0 = pick one). */
  readonly raftListen: string;
  /** Raft address given to PD (and by PD to peers); default `raftListen` with the bound port. */
  readonly raftAdvertise?: string;
  /** Service addresses of ALL PD replicas; when given, the node registers and heartbeats. */
  readonly pd?: readonly string[];
  /** PD heartbeat period (node and shard heartbeats). Default 1000 ms. */
  readonly pdHeartbeatMs?: number;
  readonly dataDir: string;
  readonly maxValueBytes?: number;
  readonly logger?: Logger;
  readonly raft?: StoreRaftOptions;
  readonly sweepIntervalMs?: number;
  /** Adds server reflection (see reflection.ts); optional because it needs the .proto files. */
  readonly addReflection?: (server: grpc.Server) => void;
}

export type StoreRaftOptions = Partial<
  Omit<RaftHostConfig, 'nodeId' | 'engine' | 'transport' | 'stateMachine' | 'onUnknownGroup'>
>;

export interface NodeHandle {
  readonly store: Store;
  /** The service address registered with PD (advertised form). */
  readonly address: string;
  /** The Raft transport address registered with PD (advertised form). */
  readonly raftAddress: string;
  /** The PD link, when `pd` addresses were given. */
  readonly pd: PdClient | undefined;
  /** Bound port of the KV/admin server. */
  readonly port: number;
  /** Bound port of the Raft transport. */
  readonly raftPort: number;
  /** Graceful: health NOT_SERVING, leaderships handed over, Raft stopped, servers and DB closed. */
  close(opts?: { abrupt?: boolean }): Promise<void>;
}

/**
 * The NodeKV service: one long-lived bidi stream per router. Each response goes back as soon as its
 * request is done (responses finished in the same event-loop turn share one batch), so a read is
 * never held back by a write that arrived in the same request batch, nor a fast shard by a slow one.
 */
export function nodeKvService(store: Store, log: Logger): nodepb.NodeKVServer {
  return {
    execute: (call) => {
      let pending = 0;
      let ended = false;
      let done: nodepb.NodeResponse[] = [];
      let flushScheduled = false;
      const maybeEnd = () => {
        if (ended && pending === 0 && done.length === 0) call.end();
      };
      const flush = () => {
        flushScheduled = false;
        const responses = done;
        done = [];
        if (responses.length > 0 && !call.cancelled && !call.destroyed) call.write({ responses });
        maybeEnd();
      };
      const finished = (response: nodepb.NodeResponse) => {
        pending--;
        done.push(response);
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      };
      call.on('data', (batch: nodepb.NodeRequestBatch) => {
        // Requests are started in order, so writes of one batch are proposed in order.
        for (const r of batch.requests) {
          pending++;
          store.execute(r).then(finished, (err: unknown) => {
            // execute never throws (errors are in the response): a bug if it happens. Answer anyway.
            log.error({ err: String(err), id: r.id }, 'execute failed');
            finished({ id: r.id, error: errorPb(err), result: undefined });
          });
        }
      });
      call.on('end', () => {
        ended = true;
        maybeEnd();
      });
      call.on('error', (err) => log.debug({ err: String(err) }, 'NodeKV stream error'));
    },
  };
}

function errorPb(err: unknown) {
  return toOmniError(err).toProto();
}

/** The NodeAdmin service. Errors travel in each response's `error` field (never as gRPC status). */
export function nodeAdminService(store: Store): nodepb.NodeAdminServer {
  return {
    createShard: (call, cb) => {
      store.createShard(call.request).then(
        () => cb(null, {}),
        (err: unknown) => cb(null, { error: errorPb(err) }),
      );
    },
    splitShard: (call, cb) => {
      store.splitShard(call.request).then(
        ({ left, right }) => cb(null, { left, right }),
        (err: unknown) => cb(null, { error: errorPb(err) }),
      );
    },
    changeReplicas: (call, cb) => {
      store.changeReplicas(call.request).then(
        (shard) => cb(null, { shard }),
        (err: unknown) => cb(null, { error: errorPb(err) }),
      );
    },
    transferLeader: (call, cb) => {
      try {
        store.transferLeader(call.request);
        cb(null, {});
      } catch (err) {
        cb(null, { error: errorPb(err) });
      }
    },
    listShards: (_call, cb) => {
      store.listShards().then(
        (r) => cb(null, r),
        (err: unknown) => cb(toOmniErrorStatus(err)),
      );
    },
    setFaults: (call, cb) => {
      store.setFaults(call.request);
      cb(null, {});
    },
    destroyReplica: (call, cb) => {
      store.destroyReplica(call.request).then(
        (destroyed) => cb(null, { destroyed }),
        (err: unknown) => cb(null, { error: errorPb(err), destroyed: false }),
      );
    },
  };
}

function toOmniErrorStatus(err: unknown): grpc.ServiceError {
  const e = toOmniError(err);
  return Object.assign(new Error(e.message), {
    code: grpc.status.INTERNAL,
    details: e.message,
    metadata: new grpc.Metadata(),
  });
}

/** Starts a storage node: LSM, Raft transport, Store (recovering every replica), gRPC services. */
export async function startNode(opts: NodeOptions): Promise<NodeHandle> {
  // The Store and the runtime bind nodeId themselves; `log` is for this function's own lines.
  const base = opts.logger ?? noopLogger;
  const log = base.child({ nodeId: opts.nodeId });
  const engine = await LevelEngine.open(opts.dataDir);
  const transport = new NetTransport({ nodeId: opts.nodeId, listenAddress: opts.raftListen, logger: base });
  const peerAdmins = new Map<string, nodepb.NodeAdminClient>();
  let store: Store;
  /** Sends a stale replica's node the leader's descriptor: the proof it needs to destroy the replica. */
  const destroyStale = (stale: StaleReplica): void => {
    const address = store.serviceAddressOf(stale.nodeId);
    if (address === undefined) {
      log.warn({ shardId: stale.shard.id, staleNodeId: stale.nodeId }, 'stale replica on a node of unknown address');
      return;
    }
    let admin = peerAdmins.get(address);
    if (admin === undefined) {
      admin = new nodepb.NodeAdminClient(address, grpc.credentials.createInsecure());
      peerAdmins.set(address, admin);
    }
    admin.destroyReplica(
      { shard: stale.shard, replicaId: stale.replicaId },
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 5000) },
      (err, res) => {
        if (err !== null || res?.error !== undefined) {
          log.warn(
            { shardId: stale.shard.id, staleNodeId: stale.nodeId, err: err?.message ?? res?.error?.message },
            'DestroyReplica of a stale replica failed; retried when it is heard again',
          );
        } else if (res?.destroyed === true) {
          log.info({ shardId: stale.shard.id, staleNodeId: stale.nodeId }, 'stale replica destroyed on its node');
        }
      },
    );
  };
  try {
    store = await Store.open({
      nodeId: opts.nodeId,
      engine,
      transport,
      logger: base,
      limits: { maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES },
      onPeerAddress: (nodeId, address) => transport.setPeer(nodeId, address),
      onStaleReplica: destroyStale,
      ...(opts.raft !== undefined ? { raft: opts.raft } : {}),
      ...(opts.sweepIntervalMs !== undefined ? { sweepIntervalMs: opts.sweepIntervalMs } : {}),
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 64 << 20,
  });
  server.addService(nodepb.NodeKVService, nodeKvService(store, log));
  server.addService(nodepb.NodeAdminService, nodeAdminService(store));
  const health = new HealthImplementation({
    '': 'SERVING',
    'omnidict.node.v1.NodeKV': 'SERVING',
    'omnidict.node.v1.NodeAdmin': 'SERVING',
  });
  health.addToServer(server);
  opts.addReflection?.(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err === null
        ? resolve(p)
        : reject(new OmniError('UNAVAILABLE', `cannot listen on ${opts.listen}: ${err.message}`)),
    );
  });
  const address = opts.advertise ?? withPort(opts.listen, port);
  const raftAddress = opts.raftAdvertise ?? withPort(opts.raftListen, transport.port);
  log.info({ port, raftPort: transport.port, address, raftAddress, dataDir: opts.dataDir }, 'storage node serving');
  let pd: PdClient | undefined;
  if (opts.pd !== undefined && opts.pd.length > 0) {
    for (const a of [address, raftAddress]) {
      if (/^(0\.0\.0\.0|\[::\]|::):/.test(a))
        log.warn({ address: a }, 'registering a wildcard address; set --advertise/--raft-advertise');
    }
    pd = new PdClient({
      pdAddresses: opts.pd,
      nodeId: opts.nodeId,
      serviceAddress: address,
      raftAddress,
      store,
      logger: base.child({ nodeId: opts.nodeId }),
      dataDir: opts.dataDir,
      ...(opts.pdHeartbeatMs !== undefined ? { heartbeatMs: opts.pdHeartbeatMs } : {}),
    });
    pd.start();
  }
  let closed = false;
  return {
    store,
    port,
    raftPort: transport.port,
    address,
    raftAddress,
    pd,
    async close(closeOpts = {}) {
      if (closed) return;
      closed = true;
      await pd?.close();
      health.setStatus('', 'NOT_SERVING');
      await store.close(closeOpts.abrupt === true ? { abrupt: true } : {});
      // tryShutdown waits for every open call, and routers keep NodeKV streams open for good:
      // give them a moment to end, then cut them (a crash cuts them at once).
      if (closeOpts.abrupt !== true) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      server.forceShutdown();
      for (const a of peerAdmins.values()) a.close();
      await engine.close();
      log.info({}, 'storage node stopped');
    },
  };
}

/** `host:0` → `host:<bound port>`; other addresses are returned as given. */
function withPort(listen: string, port: number): string {
  return listen.replace(/:0$/, `:${port}`);
}
