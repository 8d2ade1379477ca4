import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { type kv, OmniError } from '@omnidict/proto';
import type { Bytes } from './bytes.js';
import { toKey } from './bytes.js';
import { toOmniError } from './grpcCall.js';
import {
  type CallOptions,
  type CasExpectation,
  type CasResult,
  casRequest,
  type GetResult,
  type PutOptions,
  putRequest,
  type ReadOptions,
  toCasResult,
  toGetResult,
  type UpdateOptions,
  updateRequest,
  type WriteResult,
} from './results.js';

export interface PipelineOptions {
  /** Deadline of each request on the stream. Defaults to the client's `defaultTimeoutMs`. */
  defaultTimeoutMs?: number;
  /** Requests allowed in flight at once; more wait in a local queue. Default 1024. */
  maxInFlight?: number;
}

type StreamOp = NonNullable<kv.StreamRequest['op']>;
type StreamResult = NonNullable<kv.StreamResponse['result']>;

interface Pending {
  expect: StreamOp['$case'];
  resolve: (r: StreamResult) => void;
  reject: (e: OmniError) => void;
  timer: NodeJS.Timeout;
}

/**
 * Pipeline multiplexes many requests over one `Stream` bidi call: each request carries an id, and
 * responses (which may arrive out of order) are matched back by id.
 *
 * Contract: nothing on a pipeline is retried. If the stream breaks, every request in flight fails
 * (UNAVAILABLE, naming the router) because any of them may have been applied; the next request opens a
 * fresh stream, to the next router. Each request has its own deadline (TIMEOUT); a late answer to a
 * timed-out request is dropped.
 */
export class Pipeline {
  private stream: ClientDuplexStream<kv.StreamRequest, kv.StreamResponse> | null = null;
  private streamTarget = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: (() => void)[] = [];
  private readonly defaultTimeoutMs: number;
  private readonly maxInFlight: number;
  private closed = false;

  /** @internal Created by `OmniClient.pipeline()`. */
  constructor(
    private readonly getClient: () => kv.KVClient,
    private readonly currentTarget: () => string,
    private readonly onUnavailable: () => void,
    opts: PipelineOptions,
    private readonly onClose: () => void,
  ) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
    this.maxInFlight = opts.maxInFlight ?? 1024;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  async put(key: Bytes, value: Bytes, opts: PutOptions = {}): Promise<WriteResult> {
    const r = await this.send({ $case: 'put', value: putRequest(key, value, opts) }, opts);
    return { modIndex: r.$case === 'put' ? r.value.modIndex : 0 };
  }

  async get(key: Bytes, opts: ReadOptions = {}): Promise<GetResult | null> {
    const r = await this.send({ $case: 'get', value: { key: toKey(key), stale: opts.stale ?? false } }, opts);
    return r.$case === 'get' ? toGetResult(r.value) : null;
  }

  async update(key: Bytes, value: Bytes, opts: UpdateOptions = {}): Promise<WriteResult> {
    const r = await this.send({ $case: 'update', value: updateRequest(key, value, opts) }, opts);
    return { modIndex: r.$case === 'update' ? r.value.modIndex : 0 };
  }

  async delete(key: Bytes, opts: CallOptions = {}): Promise<boolean> {
    const r = await this.send({ $case: 'delete', value: { key: toKey(key) } }, opts);
    return r.$case === 'delete' && r.value.deleted;
  }

  async cas(key: Bytes, expect: CasExpectation, value: Bytes, opts: PutOptions = {}): Promise<CasResult> {
    const r = await this.send({ $case: 'cas', value: casRequest(key, expect, value, opts) }, opts);
    if (r.$case !== 'cas') throw new OmniError('INTERNAL', `stream answered a cas with ${r.$case}`);
    return toCasResult(r.value);
  }

  /** Ends the stream; requests still in flight fail with CANCELLED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new OmniError('CANCELLED', 'pipeline closed'));
    this.stream?.end();
    this.stream = null;
    for (const wake of this.waiting.splice(0)) wake();
    this.onClose();
  }

  private async send(op: StreamOp, opts: CallOptions): Promise<StreamResult> {
    while (this.pending.size >= this.maxInFlight && !this.closed) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    if (this.closed) throw new OmniError('CANCELLED', 'pipeline closed');
    const stream = this.open();
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const target = this.streamTarget;
    return new Promise<StreamResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id)?.reject(
          new OmniError('TIMEOUT', `${op.$case} on ${target}: deadline of ${timeoutMs} ms exceeded`),
        );
      }, timeoutMs);
      this.pending.set(id, { expect: op.$case, resolve, reject, timer });
      stream.write({ id, op });
    });
  }

  private open(): ClientDuplexStream<kv.StreamRequest, kv.StreamResponse> {
    if (this.stream) return this.stream;
    const stream = this.getClient().stream();
    const target = `router ${this.currentTarget()}`;
    this.stream = stream;
    this.streamTarget = target;
    stream.on('data', (res: kv.StreamResponse) => this.handleResponse(res));
    stream.on('error', (err: ServiceError) => {
      if (this.stream === stream) this.stream = null;
      const e = toOmniError(err, target, 'Stream');
      if (e.code === 'UNAVAILABLE') this.onUnavailable();
      this.failAll(e);
    });
    stream.on('end', () => {
      if (this.stream === stream) this.stream = null;
      this.failAll(new OmniError('UNAVAILABLE', `${target} ended the stream`));
    });
    return stream;
  }

  private handleResponse(res: kv.StreamResponse): void {
    const p = this.settle(res.id);
    if (!p) return; // timed out or failed already; the answer has no one to go to
    if (res.error) p.reject(OmniError.fromProto(res.error));
    else if (!res.result || res.result.$case !== p.expect) {
      p.reject(
        new OmniError('INTERNAL', `stream answered ${p.expect} #${res.id} with ${res.result?.$case ?? 'nothing'}`),
      );
    } else p.resolve(res.result);
  }

  /** Removes request `id` from the in-flight table and wakes one queued sender. */
  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.pending.delete(id);
    this.waiting.shift()?.();
    return p;
  }

  private failAll(err: OmniError): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }
}
