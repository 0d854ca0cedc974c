// The generic registry: Kubernetes object semantics over a Store, for every kind alike.
// uid, resourceVersion (the store's modRevision), generation (spec changes only),
// spec/status split, finalizers and two-phase deletion, namespaces that must exist,
// selectors, paging and watches. The HTTP layer and in-process controllers both use it.
import { randomUUID, randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import jsonPatch from 'fast-json-patch';
import type { Store, KeyValue, Watch, TxnOp } from '../store/store.ts';
import { StoreError, StoreErrorCode, isStoreError } from '../store/store.ts';
import type { KindDefinition } from '../api/kind.ts';
import { apiVersionOf, readPath } from '../api/kind.ts';
import type { KubeObject, KubeList } from '../api/meta.ts';
import { compileValidator, type FieldCause, type FieldValidation, type KindValidator } from '../api/validate.ts';
import { parseLabelSelector, parseFieldSelector, matchesLabels, matchesFields, labelKeyError, labelValueError, SelectorError } from '../api/selector.ts';
import type { LabelRequirement, FieldRequirement } from '../api/selector.ts';
import { ApiError, notFound, alreadyExists, conflict, invalid } from './errors.ts';
import { Namespace } from '../api/kinds/core.ts';

export const DEFAULT_NAMESPACE = 'default';
const NAMESPACE_FINALIZER = 'kubernetes';
export const FOREGROUND_FINALIZER = 'foregroundDeletion';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export type PatchType = 'merge' | 'json' | 'strategic';
export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

export interface WriteOptions {
  dryRun?: boolean;
  fieldValidation?: FieldValidation;
  /** In-process writers (fleet registration, controllers) may set status on create. */
  keepStatus?: boolean;
}

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface WatchQuery {
  labelSelector?: string;
  fieldSelector?: string;
  /** Changes after this revision; absent or "0": the current objects first, as ADDED. */
  resourceVersion?: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface ObjectEvent {
  type: WatchEventType;
  object: KubeObject;
  revision: number;
}

/** One write of a Registry.transact: a create, or an update (of the object or its /status). */
export type TransactWrite =
  | { op: 'create'; def: KindDefinition; namespace?: string; body: unknown; opts?: WriteOptions }
  | { op: 'update'; def: KindDefinition; namespace?: string; name: string; body: unknown; subresource?: 'status'; opts?: WriteOptions };

export interface WriteResult {
  object: KubeObject;
  /** Unknown fields dropped under fieldValidation=Warn. */
  warnings: string[];
}

interface Selectors {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

/** Seconds-precision RFC 3339, as Kubernetes writes timestamps. */
export const timestamp = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export class Registry {
  readonly store: Store;
  readonly kinds: readonly KindDefinition[];
  private readonly validators = new Map<KindDefinition, KindValidator>();
  /**
   * Namespaces known to exist, kept from a watch, so that a create does not read its
   * namespace from the store. A miss still reads the store (a namespace created a moment
   * ago may not have reached the watch yet).
   */
  private readonly namespaceCache = new Map<string, { terminating: boolean }>();
  private namespaceWatch?: Watch;
  private closed = false;

  constructor(store: Store, kinds: readonly KindDefinition[]) {
    this.store = store;
    this.kinds = kinds;
  }

  /** Makes sure `default` exists, as a new cluster has it, and starts the namespace cache. */
  async bootstrap(): Promise<void> {
    try {
      await this.create(Namespace, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DEFAULT_NAMESPACE } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
    await this.syncNamespaces();
  }

  /** Stops the registry's own watches. */
  close(): void {
    this.closed = true;
    this.namespaceWatch?.close();
  }

  private async syncNamespaces(): Promise<void> {
    if (this.closed) return;
    const prefix = this.prefix(Namespace);
    const remember = (kv: KeyValue) => {
      const ns = this.decode(kv);
      this.namespaceCache.set(ns.metadata.name, { terminating: Boolean(ns.metadata.deletionTimestamp) });
    };
    try {
      const list = await this.store.list(prefix);
      this.namespaceCache.clear();
      list.items.forEach(remember);
      this.namespaceWatch = await this.store.watch(
        prefix,
        {
          onEvent: (e) => (e.type === 'delete' ? this.namespaceCache.delete(e.kv.key.slice(prefix.length)) : remember(e.kv)),
          onError: () => {
            // Without a watch the cache would go stale: drop it and sync again shortly.
            this.namespaceCache.clear();
            setTimeout(() => void this.syncNamespaces(), 500).unref();
          },
        },
        { afterRevision: list.revision },
      );
      if (this.closed) this.namespaceWatch.close();
    } catch {
      this.namespaceCache.clear();
      setTimeout(() => void this.syncNamespaces(), 500).unref();
    }
  }

  find(group: string, version: string, plural: string): KindDefinition | undefined {
    return this.kinds.find((k) => k.group === group && k.version === version && k.plural === plural);
  }

  findByKind(apiVersion: string, kind: string): KindDefinition | undefined {
    return this.kinds.find((k) => apiVersionOf(k) === apiVersion && k.kind === kind);
  }

  // ---- keys ---------------------------------------------------------------------------

  prefix(def: KindDefinition, namespace?: string): string {
    const base = `/registry/${def.group || 'core'}/${def.plural}/`;
    return def.namespaced && namespace ? `${base}${namespace}/` : base;
  }

  key(def: KindDefinition, namespace: string | undefined, name: string): string {
    return `${this.prefix(def, def.namespaced ? namespace : undefined)}${name}`;
  }

  decode(kv: KeyValue): KubeObject {
    const obj = JSON.parse(kv.value) as KubeObject;
    obj.metadata.resourceVersion = String(kv.modRevision);
    return obj;
  }

  private encode(obj: KubeObject): string {
    const { resourceVersion: _rv, ...metadata } = obj.metadata;
    return JSON.stringify({ ...obj, metadata });
  }

  // ---- reads --------------------------------------------------------------------------

  async get(def: KindDefinition, namespace: string | undefined, name: string): Promise<KubeObject> {
    const kv = await this.store.get(this.key(def, namespace, name));
    if (!kv) throw notFound(def, name);
    return this.decode(kv);
  }

  async tryGet(def: KindDefinition, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const kv = await this.store.get(this.key(def, namespace, name));
    return kv ? this.decode(kv) : undefined;
  }

  async list(def: KindDefinition, namespace: string | undefined, query: ListQuery = {}): Promise<KubeList> {
    const selectors = this.parseSelectors(def, query.labelSelector, query.fieldSelector);
    const prefix = this.prefix(def, namespace);
    let revision: number | undefined;
    let startAfter: string | undefined;
    if (query.continue) ({ revision, startAfter } = decodeContinue(query.continue, prefix));
    const limit = query.limit && query.limit > 0 ? query.limit : 0;
    const items: KubeObject[] = [];
    let more = false;
    let lastKey: string | undefined;
    // Page through the store at one revision until `limit` objects match the selectors.
    for (;;) {
      const want = limit ? Math.max(limit - items.length, 1) : 0;
      let page;
      try {
        page = await this.store.list(prefix, { limit: want ? Math.max(want, 64) : 0, startAfter, revision });
      } catch (err) {
        if (isStoreError(err, StoreErrorCode.GONE)) {
          throw new ApiError('Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
        }
        throw err;
      }
      revision = page.revision;
      let stoppedEarly = false;
      for (const kv of page.items) {
        const obj = this.decode(kv);
        lastKey = kv.key;
        if (this.matches(def, obj, selectors)) items.push(obj);
        if (limit && items.length >= limit) {
          stoppedEarly = kv !== page.items[page.items.length - 1] || page.more;
          break;
        }
      }
      if (stoppedEarly) {
        more = true;
        break;
      }
      if (!page.more || page.items.length === 0) break;
      startAfter = lastKey;
    }
    return {
      apiVersion: apiVersionOf(def),
      kind: `${def.kind}List`,
      metadata: {
        resourceVersion: String(revision ?? (await this.store.currentRevision())),
        ...(more && lastKey ? { continue: encodeContinue(revision!, lastKey) } : {}),
      },
      items,
    };
  }

  /** Every object of a kind, unpaged, at one revision (for controllers and the CLI). */
  async listAll(def: KindDefinition, namespace?: string): Promise<KubeObject[]> {
    return (await this.list(def, namespace)).items;
  }

  parseSelectors(def: KindDefinition, labelSelector?: string, fieldSelector?: string): Selectors {
    try {
      const labels = labelSelector ? parseLabelSelector(labelSelector) : [];
      const fields = fieldSelector ? parseFieldSelector(fieldSelector) : [];
      const known = new Set(['metadata.name', 'metadata.namespace', ...(def.selectableFields ?? [])]);
      for (const f of fields) {
        if (!known.has(f.field)) {
          throw new ApiError('BadRequest', `"${f.field}" is not a known field selector: only ${[...known].map((k) => `"${k}"`).join(', ')}`);
        }
      }
      return { labels, fields };
    } catch (err) {
      if (err instanceof SelectorError) throw new ApiError('BadRequest', `unable to parse requirement: ${err.message}`);
      throw err;
    }
  }

  matches(_def: KindDefinition, obj: KubeObject, selectors: Selectors): boolean {
    if (selectors.labels.length && !matchesLabels(selectors.labels, obj.metadata.labels)) return false;
    if (selectors.fields.length) {
      const lookup = (field: string) => {
        const v = readPath(obj, field);
        return v === undefined || v === null ? undefined : String(v);
      };
      if (!matchesFields(selectors.fields, lookup)) return false;
    }
    return true;
  }

  // ---- create -------------------------------------------------------------------------

  async create(def: KindDefinition, namespace: string | undefined, body: unknown, opts: WriteOptions = {}): Promise<KubeObject> {
    return (await this.createWithWarnings(def, namespace, body, opts)).object;
  }

  async createWithWarnings(def: KindDefinition, namespace: string | undefined, body: unknown, opts: WriteOptions = {}): Promise<WriteResult> {
    const { object: obj, key, warnings } = await this.planCreate(def, namespace, body, opts);
    if (opts.dryRun) return { object: obj, warnings };
    try {
      const kv = await this.store.create(key, this.encode(obj));
      return { object: this.decode(kv), warnings };
    } catch (err) {
      if (isStoreError(err, StoreErrorCode.ALREADY_EXISTS)) throw alreadyExists(def, obj.metadata.name);
      throw err;
    }
  }

  /** Everything a create does before it writes: defaults, metadata, namespace check, validation. */
  private async planCreate(def: KindDefinition, namespace: string | undefined, body: unknown, opts: WriteOptions): Promise<{ object: KubeObject; key: string; warnings: string[] }> {
    const obj = this.checkBody(def, body);
    const ns = this.resolveNamespace(def, namespace, obj);
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = `${obj.metadata.generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
    }
    const name = obj.metadata.name ?? '';
    if (def.namespaced) await this.requireActiveNamespace(ns!);
    if (!opts.keepStatus) delete obj.status;
    const { resourceVersion: _rv, deletionTimestamp: _dt, deletionGracePeriodSeconds: _dg, ...meta } = obj.metadata;
    obj.metadata = {
      ...meta,
      name,
      ...(def.namespaced ? { namespace: ns } : {}),
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: timestamp(),
    };
    if (!def.namespaced) delete obj.metadata.namespace;
    if (def === Namespace) {
      obj.spec = { finalizers: [NAMESPACE_FINALIZER] };
      obj.status = { phase: 'Active' };
    }
    const warnings = this.validate(def, obj, opts.fieldValidation);
    return { object: obj, key: this.key(def, ns, name), warnings };
  }

  private checkBody(def: KindDefinition, body: unknown): KubeObject {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError('BadRequest', `the request body must be a ${def.kind} object`);
    }
    const obj = structuredClone(body) as KubeObject;
    const apiVersion = apiVersionOf(def);
    if (obj.kind !== undefined && obj.kind !== def.kind) {
      throw new ApiError('BadRequest', `the kind "${String(obj.kind)}" of the body does not match the resource ${def.plural} (kind ${def.kind})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersion) {
      throw new ApiError('BadRequest', `the apiVersion "${String(obj.apiVersion)}" of the body does not match ${apiVersion}`);
    }
    obj.apiVersion = apiVersion;
    obj.kind = def.kind;
    if (obj.metadata === undefined) obj.metadata = { name: '' };
    if (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata)) {
      throw invalid(def, '', [{ reason: 'FieldValueTypeInvalid', field: 'metadata', message: 'must be an object' }]);
    }
    return obj;
  }

  private resolveNamespace(def: KindDefinition, namespace: string | undefined, obj: KubeObject): string | undefined {
    if (!def.namespaced) return undefined;
    const fromBody = obj.metadata.namespace;
    if (namespace && fromBody && fromBody !== namespace) {
      throw new ApiError('BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    return namespace ?? fromBody ?? DEFAULT_NAMESPACE;
  }

  private async requireActiveNamespace(ns: string): Promise<void> {
    if (this.namespaceCache.get(ns)?.terminating === false) return;
    const kv = await this.store.get(this.key(Namespace, undefined, ns));
    if (!kv) throw new ApiError('NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
    const nsObj = this.decode(kv);
    if (nsObj.metadata.deletionTimestamp) {
      throw new ApiError('Forbidden', `unable to create new content in namespace ${ns} because it is being terminated`, { name: ns, kind: 'namespaces' });
    }
  }

  /** Validates metadata and the schema; throws 422 naming every bad field. */
  private validate(def: KindDefinition, obj: KubeObject, mode?: FieldValidation): string[] {
    const causes: FieldCause[] = [...metadataCauses(def, obj)];
    let validator = this.validators.get(def);
    if (!validator) {
      validator = compileValidator(def);
      this.validators.set(def, validator);
    }
    const result = validator.validate(obj, mode ?? 'Strict');
    causes.push(...result.causes);
    if (causes.length) throw invalid(def, obj.metadata.name ?? '', causes);
    return result.warnings;
  }

  // ---- update -------------------------------------------------------------------------

  async update(
    def: KindDefinition,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions & { subresource?: 'status' } = {},
  ): Promise<KubeObject> {
    return (await this.updateWithWarnings(def, namespace, name, body, opts)).object;
  }

  async updateWithWarnings(
    def: KindDefinition,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions & { subresource?: 'status' } = {},
  ): Promise<WriteResult> {
    const incoming = this.checkUpdateBody(def, namespace, name, body);
    const current = await this.get(def, namespace, name);
    const wanted = incoming.metadata.resourceVersion;
    if (wanted && wanted !== current.metadata.resourceVersion) throw conflict(def, name);
    return this.replace(def, current, incoming, opts);
  }

  /** The checks an update makes of its body before reading the stored object. */
  private checkUpdateBody(def: KindDefinition, namespace: string | undefined, name: string, body: unknown): KubeObject {
    const incoming = this.checkBody(def, body);
    if (incoming.metadata.name && incoming.metadata.name !== name) {
      throw new ApiError('BadRequest', `the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (def.namespaced && incoming.metadata.namespace && namespace && incoming.metadata.namespace !== namespace) {
      throw new ApiError('BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    return incoming;
  }

  /**
   * Writes `incoming` over `current` (which must be what the store holds at its
   * resourceVersion): the main resource keeps status, /status keeps everything else.
   */
  private async replace(
    def: KindDefinition,
    current: KubeObject,
    incoming: KubeObject,
    opts: WriteOptions & { subresource?: 'status' },
  ): Promise<WriteResult> {
    const plan = this.planReplace(def, current, incoming, opts);
    const { warnings } = plan;
    if (plan.write === 'none') return { object: current, warnings };
    if (opts.dryRun) return { object: { ...plan.next, metadata: { ...plan.next.metadata, resourceVersion: current.metadata.resourceVersion } }, warnings };
    if (plan.write === 'remove') return { object: await this.removeNow(def, current), warnings };
    const name = current.metadata.name;
    try {
      const kv = await this.store.update(this.key(def, current.metadata.namespace, name), this.encode(plan.next), Number(current.metadata.resourceVersion));
      return { object: this.decode(kv), warnings };
    } catch (err) {
      throw this.translateWriteError(def, name, err);
    }
  }

  /**
   * What replacing `current` with `incoming` comes to, validated, before anything is
   * written: nothing (no change), an update to `next`, or (the last finalizer gone from an
   * object being deleted) the removal of the object.
   */
  private planReplace(
    def: KindDefinition,
    current: KubeObject,
    incoming: KubeObject,
    opts: WriteOptions & { subresource?: 'status' },
  ): { write: 'none' | 'update' | 'remove'; next: KubeObject; warnings: string[] } {
    const name = current.metadata.name;
    let next: KubeObject;
    if (opts.subresource === 'status') {
      next = { ...structuredClone(current), status: incoming.status };
      if (incoming.status === undefined) delete next.status;
    } else {
      next = { ...incoming };
      if (current.status !== undefined) next.status = structuredClone(current.status);
      else delete next.status;
      if (opts.keepStatus && incoming.status !== undefined) next.status = incoming.status;
      next.metadata = {
        ...incoming.metadata,
        name,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        generation: current.metadata.generation,
        ...(current.metadata.deletionTimestamp ? { deletionTimestamp: current.metadata.deletionTimestamp } : {}),
        ...(def.namespaced ? { namespace: current.metadata.namespace } : {}),
      };
      if (!current.metadata.deletionTimestamp) delete next.metadata.deletionTimestamp;
      if (def === Namespace) next.spec = current.spec;
      if (def.namespaced === false) delete next.metadata.namespace;
    }
    delete next.metadata.resourceVersion;
    const warnings = this.validate(def, next, opts.fieldValidation);
    if (opts.subresource !== 'status' && !isDeepStrictEqual(specOf(def, next), specOf(def, current))) {
      next.metadata.generation = (current.metadata.generation ?? 0) + 1;
    }
    const { resourceVersion: _currentRv, ...currentMeta } = current.metadata;
    if (isDeepStrictEqual({ ...current, metadata: currentMeta }, next)) return { write: 'none', next, warnings };
    // The last finalizer gone from an object being deleted: the delete completes now.
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers ?? []).length) return { write: 'remove', next, warnings };
    return { write: 'update', next, warnings };
  }

  // ---- transactions (added for the scheduler's atomic gang binding) ---------------------

  /**
   * Several writes, each checked exactly as the single write of the same kind would be
   * (the same planCreate / planReplace code), then committed in ONE store transaction: all
   * of them or, on any failure, none. An update's body carries the resourceVersion it was
   * based on (metadata.resourceVersion) and the transaction commits only if the object is
   * still at it; without one, at the version read here. A create of a name that exists,
   * or an update of an object that changed or vanished, refuses the whole transaction with
   * the same AlreadyExists / Conflict / NotFound error the single write gives.
   * An update that changes nothing is still written (unchanged) so that its
   * resourceVersion precondition is checked inside the transaction.
   */
  async transact(writes: readonly TransactWrite[], opts: { dryRun?: boolean } = {}): Promise<WriteResult[]> {
    const planned: { def: KindDefinition; name: string; op: TxnOp; object: KubeObject; warnings: string[] }[] = [];
    for (const w of writes) {
      if (w.op === 'create') {
        const { object, key, warnings } = await this.planCreate(w.def, w.namespace, w.body, w.opts ?? {});
        planned.push({ def: w.def, name: object.metadata.name, op: { op: 'create', key, value: this.encode(object) }, object, warnings });
        continue;
      }
      const incoming = this.checkUpdateBody(w.def, w.namespace, w.name, w.body);
      const current = await this.get(w.def, w.namespace, w.name);
      const wanted = incoming.metadata.resourceVersion;
      if (wanted && wanted !== current.metadata.resourceVersion) throw conflict(w.def, w.name);
      const plan = this.planReplace(w.def, current, incoming, { ...w.opts, subresource: w.subresource });
      const key = this.key(w.def, current.metadata.namespace, current.metadata.name);
      const expectedRevision = Number(current.metadata.resourceVersion);
      const op: TxnOp = plan.write === 'remove' ? { op: 'delete', key, expectedRevision } : { op: 'update', key, value: this.encode(plan.next), expectedRevision };
      planned.push({ def: w.def, name: current.metadata.name, op, object: plan.next, warnings: plan.warnings });
    }
    const keys = new Set<string>();
    for (const p of planned) {
      if (keys.has(p.op.key)) throw new ApiError('BadRequest', `a transaction may write ${p.def.plural} "${p.name}" only once`);
      keys.add(p.op.key);
    }
    if (opts.dryRun || planned.length === 0) return planned.map((p) => ({ object: p.object, warnings: p.warnings }));
    try {
      const res = await this.store.txn(planned.map((p) => p.op));
      return planned.map((p, i) => ({ object: this.decode(res.results[i]!), warnings: p.warnings }));
    } catch (err) {
      const culprit = isStoreError(err) ? planned.find((p) => p.op.key === err.key) : undefined;
      if (!culprit) throw err;
      if (isStoreError(err, StoreErrorCode.ALREADY_EXISTS)) throw alreadyExists(culprit.def, culprit.name);
      throw this.translateWriteError(culprit.def, culprit.name, err);
    }
  }

  private translateWriteError(def: KindDefinition, name: string, err: unknown): unknown {
    if (isStoreError(err, StoreErrorCode.CONFLICT)) return conflict(def, name);
    if (isStoreError(err, StoreErrorCode.NOT_FOUND)) return notFound(def, name);
    return err;
  }

  // ---- patch --------------------------------------------------------------------------

  async patch(
    def: KindDefinition,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: WriteOptions & { subresource?: 'status' } = {},
  ): Promise<WriteResult> {
    if (type === 'strategic' && def.group !== '') {
      throw new ApiError(
        'UnsupportedMediaType',
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
      );
    }
    // Retry on a concurrent write, unless the patch itself pins a resourceVersion.
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(def, namespace, name);
      const patched = applyPatch(type, current, patch);
      const pinned = (patched.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
      if (pinned && pinned !== current.metadata.resourceVersion) throw conflict(def, name);
      patched.metadata = { ...patched.metadata, resourceVersion: current.metadata.resourceVersion } as KubeObject['metadata'];
      try {
        const incoming = this.checkBody(def, patched);
        return await this.replace(def, current, incoming, opts);
      } catch (err) {
        const retriable = err instanceof ApiError && err.reason === 'Conflict' && !pinned && attempt < 8;
        if (!retriable) throw err;
        // Writers that collided once tend to collide again: a few ms of jitter spreads them.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 4 * (attempt + 1)));
      }
    }
  }

  // ---- delete -------------------------------------------------------------------------

  async delete(
    def: KindDefinition,
    namespace: string | undefined,
    name: string,
    opts: { propagationPolicy?: PropagationPolicy; preconditions?: { uid?: string; resourceVersion?: string }; dryRun?: boolean } = {},
  ): Promise<KubeObject> {
    if (def === Namespace && name === DEFAULT_NAMESPACE) {
      throw new ApiError('Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, { name, kind: 'namespaces' });
    }
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(def, namespace, name);
      const pre = opts.preconditions ?? {};
      if (pre.uid && pre.uid !== current.metadata.uid) {
        throw new ApiError('Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`, { name, kind: def.plural });
      }
      if (pre.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) throw conflict(def, name);
      if (opts.dryRun) return current;
      try {
        return await this.deleteCurrent(def, current, opts.propagationPolicy ?? 'Background');
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict') || pre.resourceVersion || attempt >= 8) throw err;
      }
    }
  }

  private async deleteCurrent(def: KindDefinition, current: KubeObject, policy: PropagationPolicy): Promise<KubeObject> {
    const finalizers = [...(current.metadata.finalizers ?? [])];
    if (def === Namespace && !finalizers.includes(NAMESPACE_FINALIZER) && !current.metadata.deletionTimestamp) {
      finalizers.push(NAMESPACE_FINALIZER);
    }
    if (policy === 'Foreground' && !finalizers.includes(FOREGROUND_FINALIZER)) finalizers.push(FOREGROUND_FINALIZER);
    if (policy === 'Orphan') await this.orphanDependents(current);
    if (!finalizers.length) return this.removeNow(def, current);
    if (current.metadata.deletionTimestamp && isDeepStrictEqual(finalizers, current.metadata.finalizers ?? [])) return current;
    const { resourceVersion: rv, ...meta } = current.metadata;
    const next: KubeObject = {
      ...current,
      metadata: { ...meta, finalizers, deletionTimestamp: current.metadata.deletionTimestamp ?? timestamp(), deletionGracePeriodSeconds: 0 },
    };
    if (def === Namespace) next.status = { ...(current.status as object), phase: 'Terminating' };
    try {
      const kv = await this.store.update(this.key(def, current.metadata.namespace, current.metadata.name), this.encode(next), Number(rv));
      return this.decode(kv);
    } catch (err) {
      throw this.translateWriteError(def, current.metadata.name, err);
    }
  }

  private async removeNow(def: KindDefinition, current: KubeObject): Promise<KubeObject> {
    try {
      const kv = await this.store.delete(
        this.key(def, current.metadata.namespace, current.metadata.name),
        Number(current.metadata.resourceVersion),
      );
      return this.decode(kv);
    } catch (err) {
      throw this.translateWriteError(def, current.metadata.name, err);
    }
  }

  /** Orphan deletion: dependents lose their reference to the owner before it goes. */
  private async orphanDependents(owner: KubeObject): Promise<void> {
    const uid = owner.metadata.uid;
    for (const def of this.kinds) {
      for (const dep of await this.listAll(def)) {
        const refs = dep.metadata.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        await this.patch(def, dep.metadata.namespace, dep.metadata.name, 'merge', {
          metadata: { ownerReferences: refs.filter((r) => r.uid !== uid) },
        });
      }
    }
  }

  async deleteCollection(
    def: KindDefinition,
    namespace: string | undefined,
    query: ListQuery & { propagationPolicy?: PropagationPolicy; dryRun?: boolean },
  ): Promise<KubeList> {
    const list = await this.list(def, namespace, { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector });
    const deleted: KubeObject[] = [];
    for (const obj of list.items) {
      try {
        deleted.push(await this.delete(def, obj.metadata.namespace, obj.metadata.name, query));
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
      }
    }
    return { ...list, items: deleted };
  }

  // ---- watch --------------------------------------------------------------------------

  /**
   * Streams changes of one kind (optionally one namespace), filtered by selectors. An
   * object that stops matching is reported DELETED, one that starts matching ADDED.
   */
  async watch(
    def: KindDefinition,
    namespace: string | undefined,
    query: WatchQuery,
    onEvent: (event: ObjectEvent) => void,
    onError: (err: ApiError) => void,
  ): Promise<Watch> {
    const selectors = this.parseSelectors(def, query.labelSelector, query.fieldSelector);
    const prefix = this.prefix(def, namespace);
    // What this watcher has told its client: keys it sees, and keys it saw leave the selector.
    const visible = new Set<string>();
    const left = new Set<string>();
    let afterRevision: number;
    const rv = query.resourceVersion;
    if (rv && rv !== '0') {
      afterRevision = Number(rv);
      if (!Number.isSafeInteger(afterRevision) || afterRevision < 0) throw new ApiError('BadRequest', `invalid resourceVersion "${rv}"`);
    } else {
      const initial = await this.store.list(prefix);
      afterRevision = initial.revision;
      for (const kv of initial.items) {
        const obj = this.decode(kv);
        if (!this.matches(def, obj, selectors)) continue;
        visible.add(kv.key);
        onEvent({ type: 'ADDED', object: obj, revision: kv.modRevision });
      }
    }
    const knownFromStart = !rv || rv === '0';
    try {
      return await this.store.watch(
        prefix,
        {
          onEvent: (e) => {
            const obj = this.decode(e.kv);
            const match = this.matches(def, obj, selectors);
            const wasVisible = visible.has(e.kv.key);
            if (e.type === 'delete') {
              visible.delete(e.kv.key);
              const wasLeft = left.delete(e.kv.key);
              if ((match && !wasLeft) || wasVisible) onEvent({ type: 'DELETED', object: obj, revision: e.kv.modRevision });
              return;
            }
            if (match) {
              visible.add(e.kv.key);
              const type = e.created || left.delete(e.kv.key) || (knownFromStart && !wasVisible) ? 'ADDED' : 'MODIFIED';
              onEvent({ type, object: obj, revision: e.kv.modRevision });
            } else if (wasVisible) {
              visible.delete(e.kv.key);
              left.add(e.kv.key);
              onEvent({ type: 'DELETED', object: obj, revision: e.kv.modRevision });
            }
          },
          onError: (err) => onError(storeToApiError(err)),
        },
        { afterRevision },
      );
    } catch (err) {
      throw storeToApiError(err);
    }
  }
}

export function storeToApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError) {
    if (err.code === StoreErrorCode.GONE) return new ApiError('Expired', `too old resource version: ${err.message}`);
    if (err.code === StoreErrorCode.UNAVAILABLE) return new ApiError('ServiceUnavailable', `storage is unavailable: ${err.message}`);
  }
  return new ApiError('InternalError', err instanceof Error ? err.message : String(err));
}

/** What generation tracks: spec, or for kinds without one every field beside metadata/status. */
function specOf(def: KindDefinition, obj: KubeObject): unknown {
  if (def.spec) return obj.spec;
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

function metadataCauses(def: KindDefinition, obj: KubeObject): FieldCause[] {
  const causes: FieldCause[] = [];
  const name = obj.metadata.name;
  if (!name) {
    causes.push({ reason: 'FieldValueRequired', field: 'metadata.name', message: 'name or generateName is required' });
  } else {
    const pattern = def === Namespace ? DNS_LABEL : DNS_SUBDOMAIN;
    const max = def === Namespace ? 63 : 253;
    if (name.length > max || !pattern.test(name)) {
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'metadata.name',
        message: `Invalid value: "${name}": a lowercase RFC 1123 ${def === Namespace ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (at most ${max} characters)`,
      });
    }
  }
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    const keyError = labelKeyError(k);
    if (keyError) causes.push({ reason: 'FieldValueInvalid', field: `metadata.labels`, message: `Invalid value: "${k}": ${keyError}` });
    const valueError = typeof v === 'string' ? labelValueError(v) : 'must be a string';
    if (valueError) causes.push({ reason: 'FieldValueInvalid', field: `metadata.labels[${k}]`, message: `Invalid value: ${JSON.stringify(v)}: ${valueError}` });
  }
  return causes;
}

function encodeContinue(revision: number, startAfter: string): string {
  return Buffer.from(JSON.stringify({ v: 1, rv: revision, start: startAfter })).toString('base64url');
}

function decodeContinue(token: string, prefix: string): { revision: number; startAfter: string } {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString()) as { rv: number; start: string };
    if (!Number.isSafeInteger(parsed.rv) || typeof parsed.start !== 'string' || !parsed.start.startsWith(prefix)) throw new Error('bad token');
    return { revision: parsed.rv, startAfter: parsed.start };
  } catch {
    throw new ApiError('BadRequest', 'invalid continue token: it was not issued for this list; start a new list without it');
  }
}

/** JSON merge patch (RFC 7386); strategic merge for core kinds is read the same way, minus its directives. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (k.startsWith('$')) continue; // strategic-merge directives ($patch, $retainKeys, $setElementOrder/…)
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function applyPatch(type: PatchType, current: KubeObject, patch: unknown): KubeObject {
  const base = structuredClone(current);
  if (type === 'json') {
    if (!Array.isArray(patch)) throw new ApiError('BadRequest', 'a JSON patch must be an array of operations');
    try {
      return jsonPatch.applyPatch(base, patch as jsonPatch.Operation[], true, false).newDocument as KubeObject;
    } catch (err) {
      const e = err as { name?: string; message: string; index?: number; operation?: { path?: string } };
      if (e.name === 'TEST_OPERATION_FAILED') throw new ApiError('Invalid', `the test operation at ${e.operation?.path ?? '?'} failed`);
      throw new ApiError('Invalid', `the JSON patch could not be applied: ${e.message.split('\n')[0]}`);
    }
  }
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new ApiError('BadRequest', 'a merge patch must be a JSON object');
  }
  return mergePatch(base, patch) as KubeObject;
}
