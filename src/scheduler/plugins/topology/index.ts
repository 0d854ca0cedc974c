// Score: keep a gang's members close. A member scores highest on a node that already holds
// members of its gang, then in the same leaf, then the same spine; and when its devices sit
// in one NVLink island.
import type { ScorePlugin } from '../../framework/types.ts';

export const Name = 'TopologyPack';

export function create(): ScorePlugin {
  return {
    name: Name,
    score(ctx, _member, node, choice) {
      let proximity = 0;
      if (ctx.placed.length) {
        for (const p of ctx.placed) {
          if (p.node === node.name) {
            proximity = 100;
            break;
          }
          const other = ctx.cache.nodes.get(p.node);
          if (!other) continue;
          if (other.leaf === node.leaf) proximity = Math.max(proximity, 70);
          else if (other.path[1] !== undefined && other.path[1] === node.path[1]) proximity = Math.max(proximity, 35);
        }
      } else {
        proximity = 50;
      }
      const islands = new Set(choice.devices.map((g) => node.devices.find((d) => d.index === g.index)?.island));
      const island = islands.size <= 1 ? 100 : 100 / islands.size;
      return 0.7 * proximity + 0.3 * island;
    },
  };
}
