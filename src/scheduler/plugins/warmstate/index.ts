// Score: devices that already hold the member's model weights (or belong to its VRAMPool)
// score highest, so restarts and new replicas land where the weights are warm.
import type { ScorePlugin } from '../../framework/types.ts';

export const Name = 'WarmWeights';

export function create(): ScorePlugin {
  return {
    name: Name,
    score(_ctx, member, node, choice) {
      if (!member.model && !member.vramPool) return 0;
      if (choice.devices.length === 0) return 0;
      let warm = 0;
      for (const g of choice.devices) {
        const d = node.devices.find((x) => x.index === g.index);
        if (!d) continue;
        if ((member.model && d.models.has(member.model)) || (member.vramPool && d.pool === member.vramPool)) warm++;
      }
      if (warm) choice.note = `${choice.note ? `${choice.note}; ` : ''}weights of ${member.model ?? member.vramPool} already resident`;
      return (100 * warm) / choice.devices.length;
    },
  };
}
