import type { ClassicLevel } from 'classic-level';
import type { KeyRange } from './keys.js';
import type { KvReader, KvWriteBatch } from './kvStateMachine.js';

/** Any classic-level database; every call below names its encodings explicitly. */
// biome-ignore lint/suspicious/noExplicitAny: the database's default encodings are irrelevant here.
export type AnyLevel = ClassicLevel<any, any>;

const BUF = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/** KvReader over a classic-level database (or over one of its explicit snapshots via `snapshot`). */
export function levelReader(db: AnyLevel, snapshot?: ReturnType<AnyLevel['snapshot']>): KvReader {
  const opts = snapshot === undefined ? BUF : { ...BUF, snapshot };
  return {
    get: (key) => db.get<Buffer, Buffer>(Buffer.from(key.buffer, key.byteOffset, key.byteLength), opts),
    iterate: (range: KeyRange) =>
      db.iterator<Buffer, Buffer>({
        ...opts,
        gte: Buffer.from(range.gte.buffer, range.gte.byteOffset, range.gte.byteLength),
        lt: Buffer.from(range.lt.buffer, range.lt.byteOffset, range.lt.byteLength),
      }),
  };
}

/** KvWriteBatch adding to a classic-level chained batch (`db.batch()`); the caller writes it. */
export function chainedBatchWriter(batch: ReturnType<AnyLevel['batch']>): KvWriteBatch {
  return {
    put: (key, value) => {
      batch.put(key, value, BUF);
    },
    del: (key) => {
      batch.del(key, { keyEncoding: 'buffer' });
    },
  };
}

/** A write operation in the shape of the runtime's `KvOp`. */
export type BatchOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** KvWriteBatch appending to a list of operations (for engines that take an op array). */
export function opsWriter(ops: BatchOp[]): KvWriteBatch {
  return {
    put: (key, value) => {
      ops.push({ type: 'put', key, value });
    },
    del: (key) => {
      ops.push({ type: 'del', key });
    },
  };
}
