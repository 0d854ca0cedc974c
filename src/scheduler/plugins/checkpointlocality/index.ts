// Score: a restarting member goes back to the node whose local disk holds its part of the
// gang's latest checkpoint, so it resumes without copying the checkpoint over the network.
import type { ScorePlugin } from '../../framework/types.ts';

export const Name = 'CheckpointLocality';

export function create(): ScorePlugin {
  return {
    name: Name,
    score(_ctx, member, node, choice) {
      if (!member.checkpointNode || member.checkpointNode !== node.name) return 0;
      choice.note = `${choice.note ? `${choice.note}; ` : ''}holds its checkpoint`;
      return 100;
    },
  };
}
