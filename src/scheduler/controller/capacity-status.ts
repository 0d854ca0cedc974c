// Publishes what the scheduler's cache knows about free capacity: Node status.freeGpus
// (whole GPUs free, the FREE column of `kubectl get nodes.k8s4ai.io`) and AcceleratorClass
// status.devices/allocatedDevices. Changes are batched: nodes are marked dirty as the cache
// changes, and one flush a short while later writes only the values that differ from what
// the objects already say (a Node without freeGpus reads as all free), through /status.
import type { Logger } from 'pino';
import type { KubeObject } from '../../api/meta.ts';
import { AcceleratorClass, Node } from '../../api/kinds/index.ts';
import type { NodeStatus } from '../../api/kinds/node.ts';
import type { Registry } from '../../apiserver/registry.ts';
import { ApiError } from '../../apiserver/errors.ts';
import type { ClusterCache } from '../cache/cluster.ts';

export class CapacityStatusWriter {
  private readonly dirty = new Set<string>();
  private classesDirty = false;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly cache: ClusterCache,
    /** The newest Node and AcceleratorClass objects seen. */
    private readonly nodes: ReadonlyMap<string, KubeObject>,
    private readonly classes: ReadonlyMap<string, KubeObject>,
    private readonly log: Logger,
    private readonly delayMs = 100,
  ) {}

  markNode(name: string): void {
    this.dirty.add(name);
    this.classesDirty = true;
    this.arm();
  }

  markAll(): void {
    for (const name of this.nodes.keys()) this.dirty.add(name);
    this.classesDirty = true;
    this.arm();
  }

  /** Stops future flushes and waits for the one running. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.flushing;
  }

  private arm(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.flushing) return this.arm();
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.dirty.size || this.classesDirty) this.arm();
      });
    }, this.delayMs);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const names = [...this.dirty];
    this.dirty.clear();
    for (const name of names) {
      if (this.stopped) return;
      const node = this.cache.nodes.get(name);
      const obj = this.nodes.get(name);
      if (!node || !obj) continue;
      const status = (obj.status ?? {}) as NodeStatus;
      const shown = status.freeGpus ?? (status.gpus ?? []).length;
      if (shown === node.freeWhole) continue;
      await this.write(Node, name, { freeGpus: node.freeWhole });
    }
    if (!this.classesDirty || this.stopped) return;
    this.classesDirty = false;
    const byClass = this.cache.totals().byClass;
    for (const [name, obj] of this.classes) {
      const totals = byClass.get(name) ?? { gpus: 0, free: 0 };
      const status = (obj.status ?? {}) as { devices?: number; allocatedDevices?: number };
      const allocated = totals.gpus - totals.free;
      if (status.devices === totals.gpus && (status.allocatedDevices ?? 0) === allocated) continue;
      await this.write(AcceleratorClass, name, { devices: totals.gpus, allocatedDevices: allocated });
    }
  }

  private async write(def: typeof Node, name: string, status: Record<string, number>): Promise<void> {
    try {
      await this.registry.patch(def, undefined, name, 'merge', { status }, { subresource: 'status' });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return;
      if (this.stopped) return;
      this.log.warn({ err, kind: def.kind, name }, 'could not publish free capacity; will retry');
      if (def === Node) this.dirty.add(name);
      else this.classesDirty = true;
    }
  }
}
