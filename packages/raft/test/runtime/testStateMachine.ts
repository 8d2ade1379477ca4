import type {
  ApplyContext,
  CommittedEntry,
  KvRange,
  KvReader,
  SnapshotWriter,
  StateMachine,
} from '@omnidict/raft/runtime';
import { destroyRanges, installRanges, snapshotRanges } from '@omnidict/raft/runtime';

/** Test state machine: a durable log of applied commands, key 0x10‖groupId(u64)‖index(u64) → command. */
const PREFIX = 0x10;

function u64(buf: Uint8Array, off: number, n: number): void {
  const v = new DataView(buf.buffer, buf.byteOffset);
  v.setUint32(off, Math.floor(n / 2 ** 32));
  v.setUint32(off + 4, n >>> 0);
}

export function commandRange(groupId: number): KvRange {
  const gte = new Uint8Array(9);
  gte[0] = PREFIX;
  u64(gte, 1, groupId);
  const lt = new Uint8Array(9);
  lt[0] = PREFIX;
  u64(lt, 1, groupId + 1);
  return { gte, lt };
}

function commandKey(groupId: number, index: number): Uint8Array {
  const k = new Uint8Array(17);
  k[0] = PREFIX;
  u64(k, 1, groupId);
  u64(k, 9, index);
  return k;
}

export interface CommandResult {
  readonly index: number;
  readonly command: string;
}

export class CommandLogStateMachine implements StateMachine<CommandResult> {
  readonly groupId: number;
  installs = 0;

  constructor(groupId: number) {
    this.groupId = groupId;
  }

  applyEntries(entries: readonly CommittedEntry[], ctx: ApplyContext): CommandResult[] {
    return entries.map((e) => {
      if (e.kind !== 'normal') return { index: e.index, command: '' };
      ctx.batch.put(commandKey(this.groupId, e.index), e.data);
      return { index: e.index, command: Buffer.from(e.data).toString() };
    });
  }

  snapshotChunks(view: KvReader, maxChunkBytes: number): AsyncIterable<Uint8Array> {
    return snapshotRanges(view, [commandRange(this.groupId)], maxChunkBytes);
  }

  async installSnapshot(chunks: AsyncIterable<Uint8Array>, writer: SnapshotWriter): Promise<void> {
    this.installs++;
    await installRanges(chunks, writer, [commandRange(this.groupId)]);
  }

  destroy(writer: SnapshotWriter): Promise<void> {
    return destroyRanges(writer, [commandRange(this.groupId)]);
  }
}

/** Reads the applied commands of a group from an engine, in index order. */
export async function readCommands(reader: KvReader, groupId: number): Promise<string[]> {
  const out: string[] = [];
  for await (const [, v] of reader.iterate(commandRange(groupId))) out.push(Buffer.from(v).toString());
  return out;
}
