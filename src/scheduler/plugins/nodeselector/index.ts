// Filter: the node carries every label the member's nodeSelector names.
import { ok, unschedulable, type FilterPlugin } from '../../framework/types.ts';

export const Name = 'NodeSelector';

export function create(): FilterPlugin {
  return {
    name: Name,
    filter(_ctx, member, node) {
      for (const [k, v] of Object.entries(member.nodeSelector ?? {})) {
        if (node.labels[k] !== v) return unschedulable(`node(s) didn't match the node selector ${k}=${v}`, true);
      }
      return ok();
    },
  };
}
