import type {
  ApplyContext,
  CommittedEntry,
  KvRange,
  KvReader,
  SnapshotWriter,
  StateMachine,
} from '@omnidict/raft/runtime';
import { installRanges, snapshotRanges } from '@omnidict/raft/runtime';
import type { ApplyResult } from './state/pdState.js';
import { decodeCommand, PdState } from './state/pdState.js';

/**
 * PD's durable state in its classic-level database: the whole PdState snapshot (see
 * `PdState.snapshot`) cut into parts of at most PART_BYTES under `0x06 ‖ part(u32 BE)`, rewritten
 * once per `applyEntries` call atomically with the applied index. Whole-state writes are a
 * deliberate simplification: PD state is small (nodes, shard descriptors, a bounded operator
 * history) and changes at heartbeat pace, not at data pace.
 */
const PREFIX = 0x06;
const PART_BYTES = 256 * 1024;
export const PD_STATE_RANGE: KvRange = { gte: Uint8Array.of(PREFIX), lt: Uint8Array.of(PREFIX + 1) };

function partKey(i: number): Uint8Array {
  const k = new Uint8Array(5);
  k[0] = PREFIX;
  new DataView(k.buffer).setUint32(1, i);
  return k;
}

/** Reads the PD state stored in `reader` (an empty state when there is none). */
export async function loadPdState(reader: KvReader): Promise<{ state: PdState; parts: number }> {
  const parts: Uint8Array[] = [];
  for await (const [, v] of reader.iterate(PD_STATE_RANGE)) parts.push(v);
  if (parts.length === 0) return { state: new PdState(), parts: 0 };
  return { state: PdState.fromSnapshot(Buffer.concat(parts)), parts: parts.length };
}

/**
 * PdStateMachine applies PD commands to one in-memory PdState and persists it. `onApplied` runs
 * after each call (the server wakes map watchers and waiting leaders from it).
 */
export class PdStateMachine implements StateMachine<ApplyResult> {
  readonly state: PdState;
  #parts: number;
  readonly #onApplied: () => void;

  constructor(initial: { state: PdState; parts: number }, onApplied: () => void) {
    this.state = initial.state;
    this.#parts = initial.parts;
    this.#onApplied = onApplied;
  }

  applyEntries(entries: readonly CommittedEntry[], ctx: ApplyContext): ApplyResult[] {
    const results = entries.map((e): ApplyResult => {
      if (e.kind !== 'normal') return {};
      try {
        return this.state.apply(decodeCommand(e.data));
      } catch (err) {
        // A command that cannot be decoded is skipped identically on every replica.
        return { error: { code: 'INVALID_ARGUMENT', message: `undecodable PD command: ${String(err)}` } };
      }
    });
    const bytes = this.state.snapshot();
    const parts = Math.max(1, Math.ceil(bytes.length / PART_BYTES));
    for (let i = 0; i < parts; i++) ctx.batch.put(partKey(i), bytes.subarray(i * PART_BYTES, (i + 1) * PART_BYTES));
    for (let i = parts; i < this.#parts; i++) ctx.batch.del(partKey(i));
    this.#parts = parts;
    queueMicrotask(this.#onApplied);
    return results;
  }

  snapshotChunks(view: KvReader, maxChunkBytes: number): AsyncIterable<Uint8Array> {
    return snapshotRanges(view, [PD_STATE_RANGE], maxChunkBytes);
  }

  async installSnapshot(chunks: AsyncIterable<Uint8Array>, writer: SnapshotWriter): Promise<void> {
    await installRanges(chunks, writer, [PD_STATE_RANGE]);
  }

  async onSnapshotInstalled(reader: KvReader): Promise<void> {
    // Restore into the same object: the server and the controller hold a reference to it.
    const loaded = await loadPdState(reader);
    this.state.restore(loaded.state.snapshot());
    this.#parts = loaded.parts;
    this.#onApplied();
  }
}
