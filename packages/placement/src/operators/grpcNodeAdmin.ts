import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { fromServiceError, nodepb } from '@omnidict/proto';
import type { NodeAdminApi } from './nodeAdminApi.js';

/**
 * GrpcNodeAdmin is the real NodeAdminApi: one `omnidict.node.v1.NodeAdmin` client per node
 * address, unary calls with a deadline, gRPC failures turned into OmniErrors.
 */
export class GrpcNodeAdmin implements NodeAdminApi {
  readonly #clients = new Map<string, nodepb.NodeAdminClient>();
  readonly #deadlineMs: number;

  constructor(options: { deadlineMs?: number } = {}) {
    this.#deadlineMs = options.deadlineMs ?? 5_000;
  }

  createShard(address: string, req: nodepb.CreateShardRequest): Promise<nodepb.CreateShardResponse> {
    return this.#call(address, (c, d, cb) => c.createShard(req, new Metadata(), { deadline: d }, cb));
  }

  splitShard(address: string, req: nodepb.SplitShardRequest): Promise<nodepb.SplitShardResponse> {
    return this.#call(address, (c, d, cb) => c.splitShard(req, new Metadata(), { deadline: d }, cb));
  }

  changeReplicas(address: string, req: nodepb.ChangeReplicasRequest): Promise<nodepb.ChangeReplicasResponse> {
    return this.#call(address, (c, d, cb) => c.changeReplicas(req, new Metadata(), { deadline: d }, cb));
  }

  transferLeader(address: string, req: nodepb.TransferLeaderRequest): Promise<nodepb.TransferLeaderResponse> {
    return this.#call(address, (c, d, cb) => c.transferLeader(req, new Metadata(), { deadline: d }, cb));
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  #call<R>(
    address: string,
    send: (c: nodepb.NodeAdminClient, deadline: Date, cb: (err: ServiceError | null, res: R) => void) => void,
  ): Promise<R> {
    let client = this.#clients.get(address);
    if (!client) {
      client = new nodepb.NodeAdminClient(address, credentials.createInsecure());
      this.#clients.set(address, client);
    }
    const c = client;
    return new Promise<R>((resolve, reject) => {
      send(c, new Date(Date.now() + this.#deadlineMs), (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res),
      );
    });
  }
}
