/**
 * zipfian returns a generator of item indexes in [0, n) with a Zipf distribution (YCSB's
 * ZipfianGenerator, Gray et al. "Quickly generating billion-record synthetic databases"): item 0 is
 * the hottest. theta 0.99 is YCSB's default skew.
 */
export function zipfian(n: number, rand: () => number, theta = 0.99): () => number {
  let zetan = 0;
  for (let i = 1; i <= n; i++) zetan += 1 / i ** theta;
  const zeta2 = 1 + 1 / 2 ** theta;
  const alpha = 1 / (1 - theta);
  const eta = (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetan);
  return () => {
    const u = rand();
    const uz = u * zetan;
    if (uz < 1) return 0;
    if (uz < 1 + 0.5 ** theta) return Math.min(1, n - 1);
    return Math.min(n - 1, Math.floor(n * (eta * u - eta + 1) ** alpha));
  };
}

export function uniform(n: number, rand: () => number): () => number {
  return () => Math.floor(rand() * n);
}
