import { RaftError } from './errors.js';
import type { ConfChange, ConfChangeType } from './types.js';

/*
 * Wire format of a ConfChange entry's data (version 1), big-endian:
 *   u8 version(=1) | u8 type | u32 replicaIdHigh | u32 replicaIdLow | u8 hasContext | [u32 len | bytes]
 * Replica ids are non-negative safe integers (< 2^53).
 */
const VERSION = 1;
const HEADER_BYTES = 11;

/** encodeConfChange serializes a ConfChange into the data of an EntryType.ConfChange entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context;
  const out = new Uint8Array(HEADER_BYTES + (ctx === undefined ? 0 : 4 + ctx.length));
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(1, cc.type);
  view.setUint32(2, Math.floor(cc.replicaId / 2 ** 32));
  view.setUint32(6, cc.replicaId >>> 0);
  view.setUint8(10, ctx === undefined ? 0 : 1);
  if (ctx !== undefined) {
    view.setUint32(11, ctx.length);
    out.set(ctx, 15);
  }
  return out;
}

/** decodeConfChange is the inverse of encodeConfChange. Throws INVALID_CONFIG on malformed bytes. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (bytes.length < HEADER_BYTES || bytes[0] !== VERSION) {
    throw new RaftError('INVALID_CONFIG', 'malformed conf change entry');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint8(1);
  if (type > 2) throw new RaftError('INVALID_CONFIG', `unknown conf change type ${type}`);
  const replicaId = view.getUint32(2) * 2 ** 32 + view.getUint32(6);
  if (view.getUint8(10) === 0) return { type: type as ConfChangeType, replicaId };
  if (bytes.length < HEADER_BYTES + 4) throw new RaftError('INVALID_CONFIG', 'malformed conf change context');
  const len = view.getUint32(11);
  if (bytes.length !== HEADER_BYTES + 4 + len) throw new RaftError('INVALID_CONFIG', 'malformed conf change context');
  return { type: type as ConfChangeType, replicaId, context: bytes.slice(15, 15 + len) };
}
