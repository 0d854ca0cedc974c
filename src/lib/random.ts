// Seeded randomness: the same seed gives the same stream, so simulations, benchmarks and
// the Random baseline repeat exactly.

/** mulberry32: small, fast, uniform in [0, 1). Seed 0 is moved off the all-zero state. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
