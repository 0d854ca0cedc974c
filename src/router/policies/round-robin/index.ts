// round-robin: each backend in turn, blind to load and to prefixes. The floor every
// cache-aware policy has to beat (it spreads a conversation over all replicas, so on the
// Mooncake conversation trace it gets about half the reuse, routing.md §8).
import type { PolicyModule } from '../registry.ts';

/** round-robin takes no options. */
export interface RoundRobinOptions {}

export const roundRobin = {
  name: 'round-robin',
  create() {
    let next = 0;
    return {
      name: 'round-robin',
      choose(req, backends, index) {
        const b = backends[next++ % backends.length]!;
        if (next >= 1 << 30) next = 0;
        return { backend: b.id, matchedBlocks: index.match(b.id, req.blocks), reason: 'round robin' };
      },
    };
  },
} as const satisfies PolicyModule<RoundRobinOptions>;
