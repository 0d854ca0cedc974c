// least-loaded: fewest requests in flight, then least outstanding prefill, then the first
// listed. Blind to prefixes: the "load only" row of llm-d's benchmark.
import type { PolicyModule } from '../registry.ts';
import { leastLoadedIndex } from '../../load.ts';

/** least-loaded takes no options. */
export interface LeastLoadedOptions {}

export const leastLoaded = {
  name: 'least-loaded',
  create() {
    return {
      name: 'least-loaded',
      choose(req, backends, index) {
        const b = backends[leastLoadedIndex(backends)]!;
        return { backend: b.id, matchedBlocks: index.match(b.id, req.blocks), reason: 'least loaded' };
      },
    };
  },
} as const satisfies PolicyModule<LeastLoadedOptions>;
