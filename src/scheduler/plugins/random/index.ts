// Score: Random (the FGD paper's baseline; simulator plugin/random_score.go): one feasible node
// chosen uniformly at random scores 100, the others 0; a sharing pod gets a GPU chosen
// uniformly among those that fit (Open-Gpu-Share's "random" GPU selection). Seeded by
// args.seed, so runs repeat.
import type { ScorePlugin } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { Selection, seedOf } from './tiebreak.ts';

export const Name = 'Random';

export function create(args: PluginArgs = {}): ScorePlugin {
  const sel = new Selection(seedOf(args, 0x5eed));
  return {
    name: Name,
    score(ctx, member, node, choice) {
      sel.enter(ctx, member);
      // Independent uniform draws per node: the highest is a uniform pick among the feasible
      // nodes. The per-device draw only orders the GPUs of one node.
      const device = choice.devices.length === 1 && !choice.devices[0]!.whole ? sel.uniform2(node.slot, choice.devices[0]!.index) : 0;
      return 100 * sel.uniform(node.slot) + 1e-7 * device;
    },
  };
}
