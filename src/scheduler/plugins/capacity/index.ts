// PreFilter: a quick no when the whole cluster lacks the free GPUs the gang needs,
// before any node is examined.
import { ok, unschedulable, type PreFilterPlugin } from '../../framework/types.ts';

export const Name = 'ClusterCapacity';

export function create(): PreFilterPlugin {
  return {
    name: Name,
    preFilter(ctx) {
      const byClass = new Map<string, number>();
      let whole = 0;
      for (const m of ctx.gang.members) {
        whole += m.gpus;
        if (m.acceleratorClass) byClass.set(m.acceleratorClass, (byClass.get(m.acceleratorClass) ?? 0) + m.gpus);
      }
      const roots = ctx.cache.roots();
      const free = roots.reduce((s, d) => s + d.freeWhole, 0);
      if (whole > free) return unschedulable(`needs ${whole} whole GPUs; the cluster has ${free} free`);
      for (const [cls, need] of byClass) {
        const have = roots.reduce((s, d) => s + (d.freeWholeByClass.get(cls) ?? 0), 0);
        if (need > have) return unschedulable(`needs ${need}×${cls}; the cluster has ${have} free`);
      }
      return ok();
    },
  };
}
