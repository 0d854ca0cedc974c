// QueueSort: higher priority first, then older, then by name (deterministic).
import type { GangRequest, QueueSortPlugin } from '../../framework/types.ts';

export const Name = 'PrioritySort';

export function create(): QueueSortPlugin {
  return {
    name: Name,
    less(a: GangRequest, b: GangRequest): boolean {
      if (a.priority !== b.priority) return a.priority > b.priority;
      if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
      return a.id < b.id;
    },
  };
}
