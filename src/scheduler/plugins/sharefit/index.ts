// Score: a share goes to the GPU it fills best (least compute and memory left over), so
// partly used GPUs fill up before fresh ones are broken into.
import type { ScorePlugin } from '../../framework/types.ts';

export const Name = 'ShareFit';

export function create(): ScorePlugin {
  return {
    name: Name,
    score(_ctx, member, node, choice) {
      if (member.gpus > 0 || choice.devices.length !== 1) return 50;
      const g = choice.devices[0]!;
      const d = node.devices.find((x) => x.index === g.index)!;
      const milliLeft = (d.milliFree - g.milli) / 1000;
      const memLeft = d.memoryBytes ? (d.memoryFree - g.memoryBytes) / d.memoryBytes : 0;
      return 100 * (1 - (milliLeft + memLeft) / 2);
    },
  };
}
