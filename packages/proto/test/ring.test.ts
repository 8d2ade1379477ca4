import { evenRanges, murmur3, RING_SIZE, ringPosition } from '@omnidict/proto';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('ring position (murmur3_x86_32)', () => {
  // Published MurmurHash3_x86_32 test vectors (SMHasher verification set).
  test.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\u0000\u0000\u0000\u0000', 0, 0x2362f9de],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ])('murmur3(%j, seed %d) = %d', (input, seed, expected) => {
    expect(murmur3(bytes(input), seed)).toBe(expected);
  });

  test('ringPosition is seed 0 over the key bytes, string or bytes alike', () => {
    expect(ringPosition('hello')).toBe(murmur3(bytes('hello'), 0));
    expect(ringPosition(bytes('hello'))).toBe(ringPosition('hello'));
    expect(ringPosition('héllo')).toBe(murmur3(bytes('héllo'), 0));
    const p = ringPosition('some key');
    expect(Number.isInteger(p) && p >= 0 && p < RING_SIZE).toBe(true);
  });

  test('even ranges tile [0, 2^32) exactly', () => {
    for (const n of [1, 3, 8, 1000]) {
      const r = evenRanges(n);
      expect(r).toHaveLength(n);
      expect(r[0]?.start).toBe(0);
      expect(r[n - 1]?.end).toBe(RING_SIZE);
      for (let i = 1; i < n; i++) expect(r[i]?.start).toBe(r[i - 1]?.end);
    }
    expect(() => evenRanges(0)).toThrow(/shard count/);
  });
});
