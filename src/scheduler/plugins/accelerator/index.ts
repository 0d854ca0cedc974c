// Filter: the node has devices of the class (or capabilities) a member asks for.
// `deviceMatches` is the one definition of "this device will do", shared with the allocator.
import { matchesExpressions } from '../../../api/selector.ts';
import type { MatchExpression } from '../../../api/selector.ts';
import { ok, unschedulable, type FilterPlugin, type MemberRequest } from '../../framework/types.ts';
import type { DeviceState } from '../../cache/cluster.ts';

export const Name = 'AcceleratorMatch';

export function deviceMatches(member: MemberRequest, device: DeviceState): boolean {
  if (member.acceleratorClass && device.className !== member.acceleratorClass) return false;
  if (member.allowedClasses?.length && !member.allowedClasses.includes(device.className)) return false;
  if (member.capabilities?.length && !matchesExpressions(member.capabilities as MatchExpression[], device.attrs)) return false;
  return true;
}

const wantsGpu = (m: MemberRequest) => m.gpus > 0 || m.gpuMilli > 0 || m.vramBytes > 0 || Boolean(m.migProfile);

export function create(): FilterPlugin {
  return {
    name: Name,
    filter(_ctx, member, node) {
      if (!wantsGpu(member)) return ok();
      if (node.devices.some((d) => deviceMatches(member, d))) return ok();
      const what = member.acceleratorClass ?? (member.allowedClasses?.length ? member.allowedClasses.join('|') : 'the requested capabilities');
      return unschedulable(`node(s) without ${what} GPUs`, true);
    },
  };
}
