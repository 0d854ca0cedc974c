// An in-process informer over the registry: the current objects of a kind, then every
// change, relisting from scratch when the watch falls behind the retained history (410).
import type { KindDefinition } from '../api/kind.ts';
import type { KubeObject } from '../api/meta.ts';
import type { Registry, ObjectEvent } from '../apiserver/registry.ts';
import type { ApiError } from '../apiserver/errors.ts';

export interface LocalInformer {
  /** Resolves once the initial objects have been delivered. */
  synced: Promise<void>;
  stop(): void;
}

export interface InformerHandlers {
  onEvent(event: ObjectEvent): void;
  /** The watch restarted from a fresh list: these are all the objects now. */
  onResync?(objects: KubeObject[]): void;
  onError?(err: ApiError): void;
}

export function watchKind(registry: Registry, def: KindDefinition, handlers: InformerHandlers, retryMs = 500): LocalInformer {
  let stopped = false;
  let current: { close(): void } | undefined;
  let resolveSynced!: () => void;
  const synced = new Promise<void>((r) => (resolveSynced = r));

  const start = async (first: boolean): Promise<void> => {
    while (!stopped) {
      try {
        const list = await registry.list(def, undefined);
        if (stopped) return;
        if (first) for (const object of list.items) handlers.onEvent({ type: 'ADDED', object, revision: Number(object.metadata.resourceVersion) });
        else handlers.onResync?.(list.items);
        resolveSynced();
        current = await registry.watch(def, undefined, { resourceVersion: list.metadata.resourceVersion }, handlers.onEvent, (err) => {
          handlers.onError?.(err);
          current = undefined;
          if (!stopped) setTimeout(() => void start(false), retryMs);
        });
        if (stopped) current.close();
        return;
      } catch (err) {
        handlers.onError?.(err as ApiError);
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  };
  void start(true);
  return {
    synced,
    stop() {
      stopped = true;
      current?.close();
    },
  };
}
