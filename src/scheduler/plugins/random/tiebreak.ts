// Seeded randomness and tie-breaking for score plugins.
//
// kube-scheduler picks uniformly at random among the nodes that share the highest score; the
// FGD simulator's policies (and their published numbers) depend on that. Our framework keeps
// the first best (node, choice) it meets, so a plugin that wants kube-scheduler's behaviour
// adds a per-node jitter in [0, JITTER) to its integer score: every node of one selection gets
// an independent draw, so among equal integer scores the winner is uniform, while the jitter
// never reorders different integer scores. All choices of one node get the same jitter, so
// within a node the first best choice still wins (as the simulator's GPU pickers do).
import type { CycleContext, MemberRequest } from '../../framework/types.ts';

/** A seeded PRNG, uniform in [0, 1): the project's one (src/lib/random.ts). */
export { seededRandom as rng } from '../../../lib/random.ts';
import { seededRandom as rng } from '../../../lib/random.ts';

/** A 32-bit integer hash (lowbias32): well mixed, for per-node draws from one salt. */
export function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Jitter stays below this, so integer scores keep their order. */
export const JITTER = 0.5;

/**
 * Tracks which node selection the framework is in: one (cycle, member) pair. Score plugins
 * are called per (node, choice); per-selection tables (a node's score, its jitter) are valid
 * until the framework moves to the next member or the next cycle.
 */
export class Selection {
  private state: Map<string, unknown> | undefined;
  private member: MemberRequest | undefined;
  /** Increases by one per selection; stamps per-node memos. */
  epoch = 0;
  private salt = 0;
  private readonly draw: () => number;

  /**
   * `fixedOrder`: one draw per node for the whole run (a random but fixed node order breaks
   * ties, as the simulator's renaming of nodes by a seeded permutation does); otherwise a new
   * draw per selection (kube-scheduler's uniform pick among the best).
   */
  constructor(
    seed: number,
    private readonly fixedOrder = false,
  ) {
    this.draw = rng(seed);
    this.salt = (this.draw() * 4294967296) >>> 0;
  }

  /** Call first in score(); true when a new selection began. */
  enter(ctx: CycleContext, member: MemberRequest): boolean {
    if (ctx.state === this.state && member === this.member) return false;
    this.state = ctx.state;
    this.member = member;
    this.epoch++;
    if (!this.fixedOrder) this.salt = (this.draw() * 4294967296) >>> 0;
    return true;
  }

  /** Uniform in [0, 1), independent per node slot, fixed within a selection. */
  uniform(slot: number): number {
    return hash32((this.salt ^ Math.imul(slot + 1, 0x9e3779b1)) >>> 0) / 4294967296;
  }

  /** Uniform in [0, 1), independent per (node slot, k): a second draw, e.g. per device. */
  uniform2(slot: number, k: number): number {
    return hash32((this.salt ^ Math.imul(slot + 1, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca6b)) >>> 0) / 4294967296;
  }

  /** Uniform in [0, JITTER). */
  jitter(slot: number): number {
    return this.uniform(slot) * JITTER;
  }
}

/** A per-node memo valid for one selection (indexed by node slot). */
export class NodeMemo {
  private stamps = new Int32Array(64);
  private values = new Float64Array(64);

  get(epoch: number, slot: number): number | undefined {
    return slot < this.stamps.length && this.stamps[slot] === epoch ? this.values[slot] : undefined;
  }

  set(epoch: number, slot: number, value: number): void {
    if (slot >= this.stamps.length) {
      let size = this.stamps.length;
      while (size <= slot) size *= 2;
      const stamps = new Int32Array(size);
      stamps.set(this.stamps);
      const values = new Float64Array(size);
      values.set(this.values);
      this.stamps = stamps;
      this.values = values;
    }
    this.stamps[slot] = epoch;
    this.values[slot] = value;
  }
}

/** The seed a plugin draws from: args.seed, or a fixed default so runs repeat. */
export function seedOf(args: { seed?: number }, salt: number): number {
  return ((args.seed ?? 42) * 2654435761 + salt) >>> 0;
}
