/*
 * KV commands: what a shard's Raft log entries carry. Proposed by the shard leader, applied by every
 * replica in log order (kvStateMachine.ts). Everything that depends on time was fixed by the leader
 * when proposing, so apply is a pure function of (state, command, index):
 *   - `nowMs` is the leader's clock at proposal; apply treats records with expireAtMs <= nowMs as
 *     absent (Update of such a key fails NOT_FOUND, CAS expecting absence succeeds, …);
 *   - TTLs are absolute `expireAtMs` (0 = no expiry).
 *
 * Wire format (compact binary; see docs/commands.md):
 *   tag(u8) ‖ nowMs(varint) ‖ fields…
 * Unsigned integers are LEB128 varints (exact up to 2^53); byte strings are varint length ‖ bytes;
 * booleans one byte 0/1; lists varint count ‖ items. Tags are never reused.
 */

export const CommandTag = {
  Put: 1,
  Update: 2,
  Delete: 3,
  Expire: 4,
  Persist: 5,
  CompareAndSwap: 6,
  DeleteRange: 7,
  ExpireSweep: 8,
  Split: 9,
} as const;

/** What a CompareAndSwap requires of the key's current record. */
export type CasExpectation =
  | { readonly kind: 'modIndex'; readonly modIndex: number }
  | { readonly kind: 'value'; readonly value: Uint8Array }
  | { readonly kind: 'absent' };

export interface SweepEntry {
  readonly key: Uint8Array;
  /** The expiry the leader saw in the index; apply deletes the key only if it still has exactly this. */
  readonly expireAtMs: number;
}

export type KvCommand =
  | {
      readonly type: 'put';
      readonly nowMs: number;
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly expireAtMs: number;
    }
  | {
      readonly type: 'update';
      readonly nowMs: number;
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly expireAtMs: number;
      /** Keep the record's current expiry; `expireAtMs` is then ignored. */
      readonly keepTtl: boolean;
    }
  | { readonly type: 'delete'; readonly nowMs: number; readonly key: Uint8Array }
  | { readonly type: 'expire'; readonly nowMs: number; readonly key: Uint8Array; readonly expireAtMs: number }
  | { readonly type: 'persist'; readonly nowMs: number; readonly key: Uint8Array }
  | {
      readonly type: 'cas';
      readonly nowMs: number;
      readonly key: Uint8Array;
      readonly expected: CasExpectation;
      readonly value: Uint8Array;
      readonly expireAtMs: number;
    }
  | { readonly type: 'deleteRange'; readonly nowMs: number }
  | { readonly type: 'expireSweep'; readonly nowMs: number; readonly entries: readonly SweepEntry[] }
  | {
      readonly type: 'split';
      readonly nowMs: number;
      /** Ring position where the new (right) shard starts. */
      readonly at: number;
      readonly newShardId: number;
      /** One replica id per replica of the shard, in descriptor order. */
      readonly newReplicaIds: readonly number[];
    };

export type KvCommandType = KvCommand['type'];

const EXPECT_MOD_INDEX = 0;
const EXPECT_VALUE = 1;
const EXPECT_ABSENT = 2;

class Writer {
  private buf: Buffer;
  private len = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(n: number): void {
    this.ensure(1);
    this.buf[this.len++] = n;
  }

  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
    this.ensure(8);
    let v = n;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new RangeError('truncated command');
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    throw new RangeError('varint too long');
  }

  bytes(): Buffer {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new RangeError('truncated command');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bool(): boolean {
    return this.u8() !== 0;
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new RangeError(`${this.buf.length - this.pos} trailing bytes in command`);
  }
}

/** Encodes a command for a Raft log entry. */
export function encodeCommand(cmd: KvCommand): Buffer {
  const w = new Writer(32 + ('key' in cmd ? cmd.key.length : 0) + ('value' in cmd ? cmd.value.length : 0));
  switch (cmd.type) {
    case 'put':
      w.u8(CommandTag.Put);
      w.varint(cmd.nowMs);
      w.bytes(cmd.key);
      w.bytes(cmd.value);
      w.varint(cmd.expireAtMs);
      break;
    case 'update':
      w.u8(CommandTag.Update);
      w.varint(cmd.nowMs);
      w.bytes(cmd.key);
      w.bytes(cmd.value);
      w.varint(cmd.expireAtMs);
      w.u8(cmd.keepTtl ? 1 : 0);
      break;
    case 'delete':
      w.u8(CommandTag.Delete);
      w.varint(cmd.nowMs);
      w.bytes(cmd.key);
      break;
    case 'expire':
      w.u8(CommandTag.Expire);
      w.varint(cmd.nowMs);
      w.bytes(cmd.key);
      w.varint(cmd.expireAtMs);
      break;
    case 'persist':
      w.u8(CommandTag.Persist);
      w.varint(cmd.nowMs);
      w.bytes(cmd.key);
      break;
    case 'cas':
      w.u8(CommandTag.CompareAndSwap);
      w.varint(cmd.nowMs);
      w.bytes(cmd.key);
      switch (cmd.expected.kind) {
        case 'modIndex':
          w.u8(EXPECT_MOD_INDEX);
          w.varint(cmd.expected.modIndex);
          break;
        case 'value':
          w.u8(EXPECT_VALUE);
          w.bytes(cmd.expected.value);
          break;
        case 'absent':
          w.u8(EXPECT_ABSENT);
          break;
      }
      w.bytes(cmd.value);
      w.varint(cmd.expireAtMs);
      break;
    case 'deleteRange':
      w.u8(CommandTag.DeleteRange);
      w.varint(cmd.nowMs);
      break;
    case 'expireSweep':
      w.u8(CommandTag.ExpireSweep);
      w.varint(cmd.nowMs);
      w.varint(cmd.entries.length);
      for (const e of cmd.entries) {
        w.bytes(e.key);
        w.varint(e.expireAtMs);
      }
      break;
    case 'split':
      w.u8(CommandTag.Split);
      w.varint(cmd.nowMs);
      w.varint(cmd.at);
      w.varint(cmd.newShardId);
      w.varint(cmd.newReplicaIds.length);
      for (const id of cmd.newReplicaIds) w.varint(id);
      break;
  }
  return w.finish();
}

/** Decodes a command; throws RangeError on malformed bytes (a bug or corruption, never user input). */
export function decodeCommand(bytes: Uint8Array): KvCommand {
  const r = new Reader(bytes);
  const tag = r.u8();
  const nowMs = r.varint();
  let cmd: KvCommand;
  switch (tag) {
    case CommandTag.Put:
      cmd = { type: 'put', nowMs, key: r.bytes(), value: r.bytes(), expireAtMs: r.varint() };
      break;
    case CommandTag.Update:
      cmd = { type: 'update', nowMs, key: r.bytes(), value: r.bytes(), expireAtMs: r.varint(), keepTtl: r.bool() };
      break;
    case CommandTag.Delete:
      cmd = { type: 'delete', nowMs, key: r.bytes() };
      break;
    case CommandTag.Expire:
      cmd = { type: 'expire', nowMs, key: r.bytes(), expireAtMs: r.varint() };
      break;
    case CommandTag.Persist:
      cmd = { type: 'persist', nowMs, key: r.bytes() };
      break;
    case CommandTag.CompareAndSwap: {
      const key = r.bytes();
      const kind = r.u8();
      let expected: CasExpectation;
      if (kind === EXPECT_MOD_INDEX) expected = { kind: 'modIndex', modIndex: r.varint() };
      else if (kind === EXPECT_VALUE) expected = { kind: 'value', value: r.bytes() };
      else if (kind === EXPECT_ABSENT) expected = { kind: 'absent' };
      else throw new RangeError(`unknown CAS expectation ${kind}`);
      cmd = { type: 'cas', nowMs, key, expected, value: r.bytes(), expireAtMs: r.varint() };
      break;
    }
    case CommandTag.DeleteRange:
      cmd = { type: 'deleteRange', nowMs };
      break;
    case CommandTag.ExpireSweep: {
      const n = r.varint();
      const entries: SweepEntry[] = [];
      for (let i = 0; i < n; i++) entries.push({ key: r.bytes(), expireAtMs: r.varint() });
      cmd = { type: 'expireSweep', nowMs, entries };
      break;
    }
    case CommandTag.Split: {
      const at = r.varint();
      const newShardId = r.varint();
      const n = r.varint();
      const newReplicaIds: number[] = [];
      for (let i = 0; i < n; i++) newReplicaIds.push(r.varint());
      cmd = { type: 'split', nowMs, at, newShardId, newReplicaIds };
      break;
    }
    default:
      throw new RangeError(`unknown command tag ${tag}`);
  }
  r.end();
  return cmd;
}

/** The user key a single-key command touches, or undefined for range/admin commands. */
export function commandKey(cmd: KvCommand): Uint8Array | undefined {
  return 'key' in cmd ? cmd.key : undefined;
}
