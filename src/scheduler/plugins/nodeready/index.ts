// Filter: only Ready, schedulable nodes take new members.
import { ok, unschedulable, type FilterPlugin } from '../../framework/types.ts';

export const Name = 'NodeReady';

export function create(): FilterPlugin {
  return {
    name: Name,
    filter(_ctx, _member, node) {
      if (!node.ready) return unschedulable('node(s) not ready');
      if (node.unschedulable) return unschedulable('node(s) unschedulable', true);
      return ok();
    },
  };
}
