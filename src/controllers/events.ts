// Records core v1 Events about objects, as Kubernetes components do: one Event per
// object, reason and message, counted up when it repeats. `kubectl describe` shows them.
import { createHash } from 'node:crypto';
import type { KubeObject } from '../api/meta.ts';
import { Event } from '../api/kinds/core.ts';
import type { Registry } from '../apiserver/registry.ts';
import { timestamp, DEFAULT_NAMESPACE } from '../apiserver/registry.ts';
import { ApiError } from '../apiserver/errors.ts';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  constructor(
    private readonly registry: Registry,
    private readonly component: string,
  ) {}

  async record(involved: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = involved.metadata.namespace ?? DEFAULT_NAMESPACE;
    const digest = createHash('sha1').update(`${involved.metadata.uid}\0${reason}\0${message}`).digest('hex').slice(0, 10);
    const name = `${involved.metadata.name}.${digest}`;
    const now = timestamp();
    const existing = await this.registry.tryGet(Event, namespace, name);
    if (existing) {
      await this.registry.patch(Event, namespace, name, 'merge', { count: ((existing.count as number | undefined) ?? 1) + 1, lastTimestamp: now });
      return;
    }
    try {
      await this.registry.create(Event, namespace, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: involved.metadata.name,
          ...(involved.metadata.namespace ? { namespace: involved.metadata.namespace } : {}),
          uid: involved.metadata.uid,
          resourceVersion: involved.metadata.resourceVersion,
        },
        reason,
        message,
        type,
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (err) {
      // A racing recorder created it first: count this occurrence on it.
      if (err instanceof ApiError && err.reason === 'AlreadyExists') return this.record(involved, type, reason, message);
      throw err;
    }
  }
}
