// Filter: the node has the CPU and host memory the member asks for.
import { ok, unschedulable, type FilterPlugin } from '../../framework/types.ts';

export const Name = 'NodeResourcesFit';

export function create(): FilterPlugin {
  return {
    name: Name,
    filter(_ctx, member, node) {
      if (member.cpuMilli > node.cpuFree) return unschedulable('Insufficient cpu');
      if (member.memoryBytes > node.memoryFree) return unschedulable('Insufficient memory');
      return ok();
    },
  };
}
