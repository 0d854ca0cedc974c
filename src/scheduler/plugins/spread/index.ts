// Score: least allocated first, the way kube-scheduler's NodeResourcesFit scores with its
// default LeastAllocated strategy: the mean, over GPU compute, CPU and memory, of the share
// of the node's capacity left free once the member is placed. It spreads work over the
// emptiest nodes and knows nothing of topology; the `spread` profile pairs it with a
// topology-blind search (profile.topologyAware = false) as the baseline of `bench topology`.
import type { ScorePlugin } from '../../framework/types.ts';

export const Name = 'LeastAllocated';

export function create(): ScorePlugin {
  return {
    name: Name,
    score(_ctx, member, node, choice) {
      let sum = 0;
      let parts = 0;
      if (node.devices.length) {
        let free = 0;
        for (const d of node.devices) if (!d.mig && !d.pool) free += d.milliFree;
        let asked = 0;
        for (const g of choice.devices) asked += g.whole ? 1000 : g.milli;
        sum += (free - asked) / (node.devices.length * 1000);
        parts++;
      }
      if (node.cpuMilli > 0) {
        sum += (node.cpuFree - member.cpuMilli) / node.cpuMilli;
        parts++;
      }
      if (node.memoryBytes > 0) {
        sum += (node.memoryFree - member.memoryBytes) / node.memoryBytes;
        parts++;
      }
      return parts ? (100 * sum) / parts : 0;
    },
  };
}
