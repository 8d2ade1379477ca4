import type { raftpb } from '@omnidict/proto';
import type { NodeId } from './types.js';

/** What a transport delivers to its host. */
export interface TransportHandler {
  /** An inbound batch from a peer process. Must not throw; the host drops what it cannot queue. */
  onBatch(batch: raftpb.MessageBatch): void;
  /**
   * An inbound snapshot: `header` (group, Raft Snap message with metadata) then data chunks, pulled
   * with backpressure. Resolving means the data is staged durably and handed to Raft; rejecting
   * refuses it (the sender reports the snapshot as failed and Raft retries later).
   */
  onSnapshot(header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/**
 * Transport is the network seam: `NetTransport` (one long-lived framed TCP connection per peer
 * process for batches, plus the gRPC Snapshot streaming RPC on the same port) and `MemoryNetwork`'s
 * transports for tests.
 * Delivery is best effort: batches may be dropped, delayed or reordered; Raft retries.
 */
export interface Transport {
  readonly nodeId: NodeId;
  start(handler: TransportHandler): Promise<void>;
  /** Queues a batch for `toNode`. Never blocks, never throws; drops when the peer's queue is full. */
  send(toNode: NodeId, batch: raftpb.MessageBatch): void;
  /** Streams a snapshot to `toNode`; resolves when the receiver accepted it. */
  sendSnapshot(toNode: NodeId, header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  close(): Promise<void>;
}
