// Namespace deletion: a namespace being deleted is Terminating; everything inside it is
// deleted, and once nothing remains its finalizer is removed and it disappears.
import type { Logger } from 'pino';
import { Namespace } from '../api/kinds/core.ts';
import type { Registry } from '../apiserver/registry.ts';
import { ApiError } from '../apiserver/errors.ts';
import { watchKind, type LocalInformer } from './informer.ts';

const NAMESPACE_FINALIZER = 'kubernetes';
const RECHECK_MS = 500;

export class NamespaceController {
  private informer?: LocalInformer;
  private readonly terminating = new Set<string>();
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.informer = watchKind(this.registry, Namespace, {
      onEvent: (e) => {
        if (e.type !== 'DELETED' && e.object.metadata.deletionTimestamp) this.terminating.add(e.object.metadata.name);
        else this.terminating.delete(e.object.metadata.name);
        this.schedule(0);
      },
    });
    await this.informer.synced;
  }

  stop(): void {
    this.informer?.stop();
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.timer || !this.terminating.size) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sweep();
    }, ms);
  }

  private async sweep(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const ns of [...this.terminating]) {
        try {
          if (await this.empty(ns)) await this.finalize(ns);
        } catch (err) {
          if (!(err instanceof ApiError && err.reason === 'NotFound')) this.log.warn({ err, namespace: ns }, 'namespace cleanup failed; will retry');
        }
      }
    } finally {
      this.busy = false;
      this.schedule(RECHECK_MS);
    }
  }

  /** Deletes what is left in the namespace; true when nothing remains. */
  private async empty(ns: string): Promise<boolean> {
    let remaining = 0;
    for (const def of this.registry.kinds.filter((k) => k.namespaced)) {
      const left = await this.registry.deleteCollection(def, ns, {});
      remaining += left.items.length;
    }
    return remaining === 0;
  }

  private async finalize(ns: string): Promise<void> {
    const obj = await this.registry.get(Namespace, undefined, ns);
    this.log.info({ namespace: ns }, 'namespace emptied; removing it');
    await this.registry.patch(Namespace, undefined, ns, 'merge', {
      metadata: { finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== NAMESPACE_FINALIZER), resourceVersion: obj.metadata.resourceVersion },
    });
  }
}
