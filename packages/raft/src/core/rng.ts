/**
 * seededRng returns a deterministic uniform generator in [0, 1) for a seed (mulberry32, the seed
 * used as is). The core takes randomness only through `RaftConfig.rng`; this is the generator the
 * runtime and the tests inject. Not cryptographically secure.
 */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
