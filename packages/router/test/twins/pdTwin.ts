import { Server, ServerCredentials, type ServerWritableStream, status } from '@grpc/grpc-js';
import { pdpb } from '@omnidict/proto';

/**
 * PdTwin: an in-test PD replica serving GetShardMap and WatchShardMap from an in-memory map.
 * A follower (`leader = false`) answers with header.error NOT_LEADER and `leaderAddress`.
 * Other PD RPCs are UNIMPLEMENTED.
 */
export class PdTwin {
  address = '';
  leader = true;
  /** Where a follower points (NOT_LEADER hint). */
  leaderAddress = '';
  getShardMapCalls = 0;
  watchCalls = 0;
  private map: pdpb.ShardMap = { revision: 0, routes: [], nodeAddresses: {} };
  private readonly watchers = new Set<ServerWritableStream<pdpb.GetShardMapRequest, pdpb.ShardMap>>();
  private readonly server = new Server();

  async start(): Promise<this> {
    const impl: Partial<pdpb.PDServer> = {
      getShardMap: (_call, cb) => {
        this.getShardMapCalls++;
        cb(null, this.answer());
      },
      watchShardMap: (call) => {
        this.watchCalls++;
        call.write(this.answer());
        if (!this.leader) {
          call.end();
          return;
        }
        this.watchers.add(call);
        const drop = () => this.watchers.delete(call);
        call.on('cancelled', drop);
        call.on('close', drop);
      },
    };
    this.server.addService(pdpb.PDService, impl as pdpb.PDServer);
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
    return this;
  }

  /** setMap installs a map (its revision must grow) and pushes it to every open watch. */
  setMap(map: pdpb.ShardMap): void {
    this.map = map;
    if (!this.leader) return;
    for (const w of this.watchers) w.write(this.answer());
  }

  get revision(): number {
    return this.map.revision;
  }

  /** Ends every open watch with UNAVAILABLE (as a crashing PD would). */
  breakWatches(): void {
    const err = Object.assign(new Error('twin broke the watch'), { code: status.UNAVAILABLE });
    for (const w of this.watchers) w.emit('error', err);
    this.watchers.clear();
  }

  close(): void {
    this.server.forceShutdown();
  }

  private answer(): pdpb.ShardMap {
    if (this.leader) return { ...this.map, header: { leaderAddress: this.address } };
    return {
      revision: 0,
      routes: [],
      nodeAddresses: {},
      header: {
        leaderAddress: this.leaderAddress,
        error: {
          code: 'NOT_LEADER',
          message: 'not the PD leader',
          leaderReplicaId: 0,
          leaderNodeId: 0,
          leaderAddress: this.leaderAddress,
          newShards: [],
        },
      },
    };
  }
}
