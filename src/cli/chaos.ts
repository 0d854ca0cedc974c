// `k8s4ai chaos`: failures on purpose, to watch a gang recover.
//   kill-node NODE     the node's agent plays dead: no heartbeats, its processes killed
//   revive-node NODE   the agent serves the node again
//   preempt GANG       a preemption notice: a just-in-time checkpoint, then a clean stop
import { ClientError, type ApiClient } from '../client/client.ts';
import { GangSchedulingGroup, Node } from '../api/kinds/index.ts';
import type { Condition } from '../api/meta.ts';
import { setCondition } from '../api/meta.ts';
import { ANNOTATION_CHAOS, CHAOS_NODE_KILLED } from '../agent/annotations.ts';
import { CONDITION_PREEMPTION } from '../controllers/gang/lifecycle.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { CliError } from './errors.ts';

async function withClient<T>(opts: GlobalOptions, fn: (client: ApiClient) => Promise<T>): Promise<T> {
  const client = clientFor(opts);
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof ClientError) throw new CliError(`Error from server (${err.reason}): ${err.message}`);
    throw err;
  } finally {
    await client.close();
  }
}

export async function chaosKillNode(name: string, opts: GlobalOptions): Promise<void> {
  await withClient(opts, async (client) => {
    await client.patch(Node, undefined, name, { metadata: { annotations: { [ANNOTATION_CHAOS]: CHAOS_NODE_KILLED } } });
    console.log(`node.k8s4ai.io "${name}" killed: its agent stops posting heartbeats and kills its processes; it turns NotReady after the grace period`);
  });
}

export async function chaosReviveNode(name: string, opts: GlobalOptions): Promise<void> {
  await withClient(opts, async (client) => {
    await client.patch(Node, undefined, name, { metadata: { annotations: { [ANNOTATION_CHAOS]: null } } });
    console.log(`node.k8s4ai.io "${name}" revived: its agent serves it again`);
  });
}

export async function chaosPreempt(name: string, opts: GlobalOptions & { namespace?: string; message?: string }): Promise<void> {
  await withClient(opts, async (client) => {
    const ns = opts.namespace ?? client.namespace;
    // Read-modify-write under the gang's resourceVersion: a concurrent status write wins and we retry.
    for (let attempt = 0; ; attempt++) {
      const gang = await client.get(GangSchedulingGroup, ns, name);
      const status = (gang.status ?? {}) as { phase?: string; conditions?: Condition[] };
      if (status.phase !== 'Running') throw new CliError(`gang "${name}" is ${status.phase ?? 'Pending'}; only a Running gang can be preempted`);
      const conditions = setCondition(status.conditions, { type: CONDITION_PREEMPTION, status: 'True', reason: 'ChaosPreempt', message: opts.message ?? 'preempted by k8s4ai chaos preempt' });
      try {
        await client.update(GangSchedulingGroup, ns, name, { ...gang, status: { ...status, conditions } }, 'status');
        console.log(`gangschedulinggroup.k8s4ai.io "${name}" preempted: it checkpoints now, then stops and is queued again`);
        return;
      } catch (err) {
        if (!(err instanceof ClientError && err.statusCode === 409) || attempt >= 5) throw err;
      }
    }
  });
}
