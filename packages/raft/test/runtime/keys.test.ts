import { seededRng } from '@omnidict/raft';
import { entryKey, RAFT_PREFIX } from '@omnidict/raft/runtime';

/** The layout of DESIGN.md, built independently with BigInt: prefix ‖ groupId(u64 BE) ‖ 0x01 ‖ index(u64 BE). */
function reference(groupId: number, index: number): Buffer {
  const b = Buffer.alloc(18);
  b[0] = RAFT_PREFIX;
  b.writeBigUInt64BE(BigInt(groupId), 1);
  b[9] = 0x01;
  b.writeBigUInt64BE(BigInt(index), 10);
  return b;
}

test('entry keys are big-endian u64s: byte order is numeric order, across the 2^32 and 2^53 edges', () => {
  const seed = 20261122;
  console.log(`keys test seed ${seed}`);
  const rand = seededRng(seed);
  const edges = [0, 1, 255, 256, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, Number.MAX_SAFE_INTEGER];
  const values = [...edges, ...Array.from({ length: 500 }, () => Math.floor(rand() * Number.MAX_SAFE_INTEGER))];
  for (const v of values) {
    expect(Buffer.from(entryKey(v, v))).toEqual(reference(v, v));
    expect(Buffer.from(entryKey(7, v))).toEqual(reference(7, v));
  }
  const sorted = [...values].sort((a, b) => a - b);
  const byKey = [...values].sort((a, b) => Buffer.compare(entryKey(3, a), entryKey(3, b)));
  expect(byKey).toEqual(sorted);
});
