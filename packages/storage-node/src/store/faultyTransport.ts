import type { raftpb } from '@omnidict/proto';
import type { NodeId, Transport, TransportHandler } from '@omnidict/raft/runtime';

/**
 * FaultyTransport wraps a Transport with the NodeAdmin.SetFaults hook: Raft traffic to and from the
 * partitioned peer nodes is dropped in both directions (snapshots are refused). Dropping is safe:
 * Raft retries.
 */
export class FaultyTransport implements Transport {
  #partitioned = new Set<NodeId>();

  /** `onInbound` sees every batch that is delivered (after fault filtering), before the host does. */
  constructor(
    private readonly inner: Transport,
    private readonly onInbound?: (batch: raftpb.MessageBatch) => void,
  ) {}

  get nodeId(): NodeId {
    return this.inner.nodeId;
  }

  /** Replaces the set of partitioned peers (empty heals). */
  setPartitioned(nodes: readonly NodeId[]): void {
    this.#partitioned = new Set(nodes);
  }

  get partitioned(): ReadonlySet<NodeId> {
    return this.#partitioned;
  }

  start(handler: TransportHandler): Promise<void> {
    return this.inner.start({
      onBatch: (batch) => {
        if (this.#partitioned.has(batch.fromNode)) return;
        this.onInbound?.(batch);
        handler.onBatch(batch);
      },
      onSnapshot: (header, chunks) => {
        if (this.#partitioned.has(header.fromNode)) return Promise.reject(new Error('partitioned by SetFaults'));
        return handler.onSnapshot(header, chunks);
      },
    });
  }

  send(toNode: NodeId, batch: raftpb.MessageBatch): void {
    if (!this.#partitioned.has(toNode)) this.inner.send(toNode, batch);
  }

  sendSnapshot(toNode: NodeId, header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.#partitioned.has(toNode)) return Promise.reject(new Error('partitioned by SetFaults'));
    return this.inner.sendSnapshot(toNode, header, chunks);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
