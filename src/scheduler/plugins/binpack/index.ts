// Score: fuller nodes first (most-allocated), so whole nodes stay free for large gangs.
import type { ScorePlugin } from '../../framework/types.ts';

export const Name = 'BinPack';

export function create(): ScorePlugin {
  return {
    name: Name,
    score(_ctx, _member, node, choice) {
      if (node.devices.length === 0) return 100 * (1 - node.cpuFree / Math.max(1, node.cpuMilli));
      const wholeTaken = choice.devices.filter((d) => d.whole).length;
      const freeAfter = node.freeWhole - wholeTaken;
      return 100 * (1 - freeAfter / node.devices.length);
    },
  };
}
