// Garbage collection by ownerReferences, as Kubernetes does it: when every owner of an
// object is gone, the object is deleted (background cascading deletion); an owner being
// deleted in the foreground waits, through its finalizer, until its dependents are gone.
import type { KindDefinition } from '../api/kind.ts';
import type { KubeObject } from '../api/meta.ts';
import type { Registry } from '../apiserver/registry.ts';
import { FOREGROUND_FINALIZER } from '../apiserver/registry.ts';
import { ApiError } from '../apiserver/errors.ts';
import { watchKind, type LocalInformer } from './informer.ts';
import type { Logger } from 'pino';

interface Ref {
  def: KindDefinition;
  namespace?: string;
  name: string;
  uid: string;
}

export class GarbageCollector {
  /** uid -> live object reference */
  private readonly live = new Map<string, Ref & { foreground: boolean }>();
  /** uid -> owner uids of that object */
  private readonly owners = new Map<string, string[]>();
  /** owner uid -> dependent uids */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly informers: LocalInformer[] = [];
  private readonly queue = new Set<string>();
  private draining = false;
  private ready = false;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const def of this.registry.kinds) {
      this.informers.push(
        watchKind(this.registry, def, {
          onEvent: (e) => (e.type === 'DELETED' ? this.forget(e.object) : this.observe(def, e.object)),
          onResync: (objects) => {
            for (const o of objects) this.observe(def, o);
          },
        }),
      );
    }
    await Promise.all(this.informers.map((i) => i.synced));
    this.ready = true;
    // Objects whose owners vanished while no collector ran.
    for (const uid of this.owners.keys()) this.queue.add(uid);
    for (const [uid, ref] of this.live) if (ref.foreground) this.queue.add(uid);
    this.kick();
  }

  stop(): void {
    for (const i of this.informers) i.stop();
  }

  private observe(def: KindDefinition, obj: KubeObject): void {
    const uid = obj.metadata.uid!;
    const foreground = Boolean(obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FOREGROUND_FINALIZER));
    this.live.set(uid, { def, namespace: obj.metadata.namespace, name: obj.metadata.name, uid, foreground });
    for (const o of this.owners.get(uid) ?? []) this.dependents.get(o)?.delete(uid);
    const ownerUids = (obj.metadata.ownerReferences ?? []).map((r) => r.uid);
    if (ownerUids.length) {
      this.owners.set(uid, ownerUids);
      for (const o of ownerUids) {
        if (!this.dependents.has(o)) this.dependents.set(o, new Set());
        this.dependents.get(o)!.add(uid);
      }
      this.queue.add(uid);
    } else {
      this.owners.delete(uid);
    }
    if (foreground) this.queue.add(uid);
    this.kick();
  }

  private forget(obj: KubeObject): void {
    const uid = obj.metadata.uid!;
    this.live.delete(uid);
    for (const o of this.owners.get(uid) ?? []) {
      const deps = this.dependents.get(o);
      deps?.delete(uid);
      if (this.live.get(o)?.foreground) this.queue.add(o);
    }
    this.owners.delete(uid);
    for (const dep of this.dependents.get(uid) ?? []) this.queue.add(dep);
    this.dependents.delete(uid);
    this.kick();
  }

  private kick(): void {
    if (!this.ready || this.draining) return;
    this.draining = true;
    void this.drain().finally(() => {
      this.draining = false;
      if (this.queue.size) setTimeout(() => this.kick(), 50);
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.size) {
      const uid = this.queue.values().next().value as string;
      this.queue.delete(uid);
      try {
        await this.process(uid);
      } catch (err) {
        if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) continue;
        this.log.warn({ err, uid }, 'garbage collection failed; will retry');
        setTimeout(() => {
          this.queue.add(uid);
          this.kick();
        }, 1000);
      }
    }
  }

  private async process(uid: string): Promise<void> {
    const ref = this.live.get(uid);
    if (!ref) return;
    // A foreground owner: delete its dependents, then let it go.
    if (ref.foreground) {
      const deps = [...(this.dependents.get(uid) ?? [])].filter((d) => this.live.has(d));
      if (deps.length === 0) {
        const obj = await this.registry.get(ref.def, ref.namespace, ref.name);
        await this.registry.patch(ref.def, ref.namespace, ref.name, 'merge', {
          metadata: { finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== FOREGROUND_FINALIZER), resourceVersion: obj.metadata.resourceVersion },
        });
      } else {
        for (const d of deps) await this.deleteRef(this.live.get(d)!, 'Foreground');
      }
    }
    // A dependent: collected once none of its owners is alive.
    const ownerUids = this.owners.get(uid);
    if (ownerUids?.length && ownerUids.every((o) => !this.live.has(o))) {
      this.log.info({ kind: ref.def.kind, name: ref.name, namespace: ref.namespace }, 'deleting object whose owners are gone');
      await this.deleteRef(ref, 'Background');
    }
  }

  private async deleteRef(ref: Ref, policy: 'Background' | 'Foreground'): Promise<void> {
    await this.registry.delete(ref.def, ref.namespace, ref.name, { propagationPolicy: policy, preconditions: { uid: ref.uid } });
  }
}
