import type { Message, ReadOnlyOption, ReplicaId } from './types.js';

/** A read-index request the leader is confirming with a heartbeat round (§6.4, thesis). */
export interface ReadIndexStatus {
  readonly request: Message;
  readonly index: number;
  readonly acks: Set<ReplicaId>;
}

/** ctxKey turns a request context into a map key (byte-exact). */
export function ctxKey(ctx: Uint8Array | undefined): string {
  if (ctx === undefined) return '';
  let s = '';
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}

/**
 * ReadOnly tracks read-index requests waiting for a quorum of heartbeat acks (etcd read_only.go).
 * Requests are served in arrival order: an ack for a later request confirms every earlier one.
 */
export class ReadOnly {
  readonly option: ReadOnlyOption;
  readonly #pending = new Map<string, ReadIndexStatus>();
  #queue: string[] = [];

  constructor(option: ReadOnlyOption) {
    this.option = option;
  }

  /** addRequest registers a read request at commit index `index`; duplicates are ignored. */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.context);
    if (this.#pending.has(key)) return;
    this.#pending.set(key, { index, request: m, acks: new Set() });
    this.#queue.push(key);
  }

  /** recvAck records a heartbeat ack carrying `ctx`; returns the ack set, or undefined if unknown. */
  recvAck(id: ReplicaId, ctx: Uint8Array | undefined): Set<ReplicaId> | undefined {
    const rs = this.#pending.get(ctxKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** advance dequeues and returns every request up to and including the one with `ctx`. */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const i = this.#queue.indexOf(key);
    if (i < 0) return [];
    const done = this.#queue.slice(0, i + 1);
    this.#queue = this.#queue.slice(i + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.#pending.get(k);
      if (rs !== undefined) out.push(rs);
      this.#pending.delete(k);
    }
    return out;
  }

  /** lastPendingRequestCtx: context of the newest pending request, or undefined. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.#queue[this.#queue.length - 1];
    return k === undefined ? undefined : this.#pending.get(k)?.request.context;
  }

  /** reset drops all pending requests (on a role change; their clients time out and retry). */
  reset(): void {
    this.#pending.clear();
    this.#queue = [];
  }

  get pendingCount(): number {
    return this.#queue.length;
  }
}
