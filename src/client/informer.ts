// An informer over HTTP: list, then watch from the list's resourceVersion; re-watch from
// the last seen revision when the server closes the stream, and relist from scratch when
// the revision is too old (410 Gone). Keeps a cache of the current objects.
import type { KindDefinition } from '../api/kind.ts';
import type { KubeObject } from '../api/meta.ts';
import type { Status } from '../apiserver/errors.ts';
import { ApiClient, ClientError, type ClientWatch } from './client.ts';

export interface InformerEvents {
  add?(obj: KubeObject): void;
  update?(obj: KubeObject, old: KubeObject): void;
  delete?(obj: KubeObject): void;
  /** A relist happened (after a 410); the cache now holds exactly these objects. */
  relist?(objects: KubeObject[]): void;
  error?(err: Error): void;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer {
  readonly cache = new Map<string, KubeObject>();
  private resourceVersion = '';
  private watch?: ClientWatch;
  private stopped = false;
  private syncedResolve!: () => void;
  readonly synced = new Promise<void>((r) => (this.syncedResolve = r));
  /** How many times the informer had to relist (410s and first list). */
  lists = 0;

  constructor(
    private readonly client: ApiClient,
    private readonly def: KindDefinition,
    private readonly namespace: string | undefined,
    private readonly handlers: InformerEvents = {},
    private readonly params: { labelSelector?: string; fieldSelector?: string } = {},
    private readonly retryMs = 500,
  ) {}

  start(): this {
    void this.run();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.watch?.close();
  }

  private async relist(): Promise<void> {
    const list = await this.client.listAll(this.def, this.namespace, this.params);
    this.lists++;
    const fresh = new Map(list.items.map((o) => [keyOf(o), o]));
    const first = this.lists === 1;
    for (const [k, old] of this.cache) if (!fresh.has(k)) this.handlers.delete?.(old);
    for (const [k, obj] of fresh) {
      const old = this.cache.get(k);
      if (!old) this.handlers.add?.(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.handlers.update?.(obj, old);
    }
    this.cache.clear();
    for (const [k, o] of fresh) this.cache.set(k, o);
    this.resourceVersion = list.metadata.resourceVersion ?? '';
    if (!first) this.handlers.relist?.(list.items);
    this.syncedResolve();
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) await this.relist();
        needList = false;
        let gone = false;
        this.watch = await this.client.watch(this.def, this.namespace, { ...this.params, resourceVersion: this.resourceVersion, allowWatchBookmarks: true }, (e) => {
          if (e.type === 'ERROR') {
            const status = e.object as Status;
            if (status.code === 410) gone = true;
            else this.handlers.error?.(new ClientError(status.code, status, status.message));
            return;
          }
          const obj = e.object as KubeObject;
          if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
          if (e.type === 'BOOKMARK') return;
          const k = keyOf(obj);
          const old = this.cache.get(k);
          if (e.type === 'DELETED') {
            this.cache.delete(k);
            this.handlers.delete?.(obj);
          } else {
            this.cache.set(k, obj);
            if (old) this.handlers.update?.(obj, old);
            else this.handlers.add?.(obj);
          }
        });
        await this.watch.done;
        if (gone) needList = true;
        // The server ended the stream (timeout, restart, dropped connection): pause before
        // re-watching from the last revision so a restarting server is not hammered.
        else if (!this.stopped) await new Promise((r) => setTimeout(r, this.retryMs));
      } catch (err) {
        if (err instanceof ClientError && err.statusCode === 410) needList = true;
        else {
          this.handlers.error?.(err as Error);
          await new Promise((r) => setTimeout(r, this.retryMs));
        }
      }
    }
  }
}
