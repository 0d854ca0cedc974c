// Permit: a gang is bound only when at least minMember members found a place.
import { ok, unschedulable, type PermitPlugin } from '../../framework/types.ts';

export const Name = 'GangPermit';

export function create(): PermitPlugin {
  return {
    name: Name,
    permit(_ctx, placement) {
      const need = placement.gang.minMember;
      if (placement.members.length >= need) return ok();
      return unschedulable(`only ${placement.members.length} of the ${need} members that must start together found a place`);
    },
  };
}
