import {
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { type ErrorCode, kv, OmniError, toServiceError } from '@omnidict/proto';

interface Record {
  value: Buffer;
  modIndex: number;
  expireAtMs: number;
}

/** An injected failure: the next `count` calls of `method` fail with `code` (before or after applying). */
interface Fault {
  code: ErrorCode;
  count: number;
  afterApply: boolean;
}

/**
 * KvTwin is an in-memory stand-in for the router's `omnidict.v1.KV` service, served by a real
 * grpc-js server on 127.0.0.1, for tests of clients and tools. Semantics follow kv.proto (TTL,
 * mod indexes, CAS, glob scan with cursors). Faults and delays can be injected per method.
 */
export class KvTwin {
  readonly data = new Map<string, Record>();
  /** Calls received per method name (`Put`, `Get`, ..., `Stream` counts each request). */
  readonly calls = new Map<string, number>();
  private readonly faults = new Map<string, Fault>();
  private readonly delays = new Map<string, number>();
  private lastIndex = 0;

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async start(): Promise<KvTwin> {
    const server = new Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const twin = new KvTwin(server, `127.0.0.1:${port}`);
    server.addService(kv.KVService, twin.handlers());
    return twin;
  }

  /** Makes the next `count` calls of `method` fail with `code`; `afterApply` applies the write first. */
  fail(method: string, code: ErrorCode, count = 1, afterApply = false): void {
    this.faults.set(method, { code, count, afterApply });
  }

  /** Delays every answer of `method` by `ms` (0 removes the delay). */
  delay(method: string, ms: number): void {
    this.delays.set(method, ms);
  }

  callCount(method: string): number {
    return this.calls.get(method) ?? 0;
  }

  async stop(): Promise<void> {
    this.server.forceShutdown();
  }

  private live(key: Buffer): Record | undefined {
    const k = key.toString('hex');
    const r = this.data.get(k);
    if (r && r.expireAtMs !== 0 && r.expireAtMs <= Date.now()) {
      this.data.delete(k);
      return undefined;
    }
    return r;
  }

  private write(key: Buffer, value: Buffer, ttlMs: number, keepExpireAtMs?: number): number {
    const modIndex = ++this.lastIndex;
    const expireAtMs = keepExpireAtMs ?? (ttlMs > 0 ? Date.now() + ttlMs : 0);
    this.data.set(key.toString('hex'), { value, modIndex, expireAtMs });
    return modIndex;
  }

  private checkKey(key: Buffer): void {
    if (key.length === 0) throw new OmniError('INVALID_ARGUMENT', 'key must not be empty');
    if (key.length > 4096) throw new OmniError('TOO_LARGE', 'key over 4096 bytes');
  }

  private put(r: kv.PutRequest): kv.PutResponse {
    this.checkKey(r.key);
    return { modIndex: this.write(r.key, r.value, r.ttlMs) };
  }

  private get(r: kv.GetRequest): kv.GetResponse {
    this.checkKey(r.key);
    const rec = this.live(r.key);
    return rec ? { found: true, kv: { key: r.key, ...rec } } : { found: false };
  }

  private del(r: kv.DeleteRequest): kv.DeleteResponse {
    this.checkKey(r.key);
    const existed = this.live(r.key) !== undefined;
    this.data.delete(r.key.toString('hex'));
    return { deleted: existed, modIndex: existed ? ++this.lastIndex : 0 };
  }

  private update(r: kv.UpdateRequest): kv.UpdateResponse {
    this.checkKey(r.key);
    const rec = this.live(r.key);
    // The storage node's own message, which does not name the key (callers add it).
    if (!rec) throw new OmniError('NOT_FOUND', 'update of a key that does not exist');
    return { modIndex: this.write(r.key, r.value, r.ttlMs, r.keepTtl ? rec.expireAtMs : undefined) };
  }

  private cas(r: kv.CompareAndSwapRequest): kv.CompareAndSwapResponse {
    this.checkKey(r.key);
    const rec = this.live(r.key);
    const e = r.expected;
    const ok =
      e?.$case === 'expectAbsent'
        ? rec === undefined
        : e?.$case === 'expectedModIndex'
          ? rec?.modIndex === e.value
          : e?.$case === 'expectedValue'
            ? rec?.value.equals(e.value) === true
            : false;
    if (!ok) return { swapped: false, modIndex: 0, ...(rec ? { current: { key: r.key, ...rec } } : {}) };
    return { swapped: true, modIndex: this.write(r.key, r.value, r.ttlMs) };
  }

  private scan(r: kv.ScanRequest): kv.ScanResponse {
    const re = globToRegExp(r.pattern);
    const after = r.cursor.length > 0 ? r.cursor.toString('hex') : '';
    const limit = r.limit > 0 ? r.limit : 100;
    const keys = [...this.data.keys()].filter((k) => k > after).sort();
    const kvs: kv.KeyValue[] = [];
    let last = '';
    for (const k of keys) {
      if (kvs.length >= limit) break;
      last = k;
      const key = Buffer.from(k, 'hex');
      const rec = this.live(key);
      if (!rec || !re.test(key.toString('latin1'))) continue;
      kvs.push({
        key,
        value: r.keysOnly ? Buffer.alloc(0) : rec.value,
        modIndex: rec.modIndex,
        expireAtMs: rec.expireAtMs,
      });
    }
    const more = keys.length > 0 && last !== '' && last !== keys[keys.length - 1];
    return { kvs, nextCursor: more ? Buffer.from(last, 'hex') : Buffer.alloc(0) };
  }

  private handlers(): UntypedServiceImplementation {
    const ttl = (r: kv.TtlRequest): kv.TtlResponse => {
      this.checkKey(r.key);
      const rec = this.live(r.key);
      return { ttlMs: !rec ? -2 : rec.expireAtMs === 0 ? -1 : Math.max(0, rec.expireAtMs - Date.now()) };
    };
    const impl: { [K in keyof kv.KVServer]?: unknown } = {
      put: this.unary('Put', (r: kv.PutRequest) => this.put(r)),
      get: this.unary('Get', (r: kv.GetRequest) => this.get(r)),
      delete: this.unary('Delete', (r: kv.DeleteRequest) => this.del(r)),
      update: this.unary('Update', (r: kv.UpdateRequest) => this.update(r)),
      exists: this.unary('Exists', (r: kv.ExistsRequest) => ({
        exists: this.get({ key: r.key, stale: r.stale }).found,
      })),
      expire: this.unary('Expire', (r: kv.ExpireRequest): kv.ExpireResponse => {
        this.checkKey(r.key);
        const rec = this.live(r.key);
        if (!rec) return { applied: false, modIndex: 0 };
        rec.expireAtMs = Date.now() + r.ttlMs;
        rec.modIndex = ++this.lastIndex;
        return { applied: true, modIndex: rec.modIndex };
      }),
      ttl: this.unary('Ttl', ttl),
      persist: this.unary('Persist', (r: kv.PersistRequest): kv.PersistResponse => {
        this.checkKey(r.key);
        const rec = this.live(r.key);
        if (!rec || rec.expireAtMs === 0) return { applied: false, modIndex: 0 };
        rec.expireAtMs = 0;
        rec.modIndex = ++this.lastIndex;
        return { applied: true, modIndex: rec.modIndex };
      }),
      compareAndSwap: this.unary('CompareAndSwap', (r: kv.CompareAndSwapRequest) => this.cas(r)),
      batchGet: this.unary('BatchGet', (r: kv.BatchGetRequest) => ({
        results: r.keys.map((key) => this.get({ key, stale: r.stale })),
      })),
      batchPut: this.unary('BatchPut', (r: kv.BatchPutRequest) => ({
        modIndexes: r.puts.map((p) => this.put(p).modIndex),
      })),
      scan: this.unary('Scan', (r: kv.ScanRequest) => this.scan(r)),
      flush: this.unary('Flush', (): kv.FlushResponse => {
        const deleted = this.data.size;
        this.data.clear();
        return { deleted };
      }),
      stream: (call: ServerDuplexStream<kv.StreamRequest, kv.StreamResponse>) => {
        call.on('data', (req: kv.StreamRequest) => {
          this.count('Stream');
          const answer = (): kv.StreamResponse => {
            try {
              const op = req.op;
              switch (op?.$case) {
                case 'put':
                  return { id: req.id, result: { $case: 'put', value: this.put(op.value) } };
                case 'get':
                  return { id: req.id, result: { $case: 'get', value: this.get(op.value) } };
                case 'delete':
                  return { id: req.id, result: { $case: 'delete', value: this.del(op.value) } };
                case 'update':
                  return { id: req.id, result: { $case: 'update', value: this.update(op.value) } };
                case 'cas':
                  return { id: req.id, result: { $case: 'cas', value: this.cas(op.value) } };
                default:
                  throw new OmniError('INVALID_ARGUMENT', 'stream request without an op');
              }
            } catch (err) {
              const e = err instanceof OmniError ? err : new OmniError('INTERNAL', String(err));
              return { id: req.id, error: e.toProto() };
            }
          };
          // Answer out of order on purpose: odd ids a tick later than even ones.
          if (req.id % 2 === 1) setImmediate(() => call.write(answer()));
          else call.write(answer());
        });
        call.on('end', () => call.end());
      },
    };
    return impl as UntypedServiceImplementation;
  }

  private count(method: string): void {
    this.calls.set(method, this.callCount(method) + 1);
  }

  private unary<Req, Res>(method: string, fn: (req: Req) => Res) {
    return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
      this.count(method);
      const run = () => {
        const fault = this.faults.get(method);
        if (fault && fault.count > 0) {
          fault.count--;
          if (fault.afterApply) {
            try {
              fn(call.request);
            } catch {
              // the injected fault is what the caller sees
            }
          }
          cb(toServiceError(new OmniError(fault.code, `injected ${fault.code} on ${method}`)), null);
          return;
        }
        try {
          cb(null, fn(call.request));
        } catch (err) {
          cb(toServiceError(err), null);
        }
      };
      const ms = this.delays.get(method) ?? 0;
      if (ms > 0) setTimeout(run, ms);
      else run();
    };
  }
}

/** Glob (`*`, `?`, `[abc]`, `[a-z]`, `\` escapes) to an anchored RegExp over latin1 key text. */
export function globToRegExp(glob: string): RegExp {
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') src += '[\\s\\S]*';
    else if (ch === '?') src += '[\\s\\S]';
    else if (ch === '\\' && i + 1 < glob.length) src += escapeRe(glob[++i]!);
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end === -1) src += '\\[';
      else {
        src += `[${glob.slice(i + 1, end).replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
        i = end;
      }
    } else src += escapeRe(ch);
  }
  return new RegExp(`^${src}$`);
}

function escapeRe(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
