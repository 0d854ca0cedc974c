// Namespace and Event live in the core group (/api/v1), as in Kubernetes, so kubectl's
// `get ns`, `create ns` and `describe` (which reads core Events) work unchanged.
import { Type, Struct, StringEnum, type Static } from '../schema.ts';
import type { KindDefinition } from '../kind.ts';

export const NamespaceSpec = Struct({ finalizers: Type.Optional(Type.Array(Type.String())) });
export const NamespaceStatus = Struct({
  phase: Type.Optional(StringEnum(['Active', 'Terminating'] as const)),
  conditions: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
});

export const Namespace: KindDefinition = {
  group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', singular: 'namespace',
  shortNames: ['ns'], namespaced: false, categories: [],
  description: 'A scope for names; objects in a namespace that does not exist are refused.',
  spec: NamespaceSpec, status: NamespaceStatus,
  columns: [{ name: 'Status', type: 'string', description: 'Phase', jsonPath: '.status.phase' }],
};

const ObjectReference = Struct({
  apiVersion: Type.Optional(Type.String()),
  kind: Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  uid: Type.Optional(Type.String()),
  resourceVersion: Type.Optional(Type.String()),
  fieldPath: Type.Optional(Type.String()),
});

const Timestamp = Type.Optional(Type.Union([Type.String(), Type.Null()]));

export const EventFields = {
  involvedObject: ObjectReference,
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  source: Type.Optional(Struct({ component: Type.Optional(Type.String()), host: Type.Optional(Type.String()) })),
  firstTimestamp: Timestamp,
  lastTimestamp: Timestamp,
  eventTime: Timestamp,
  count: Type.Optional(Type.Integer({ minimum: 0 })),
  type: Type.Optional(StringEnum(['Normal', 'Warning'] as const)),
  action: Type.Optional(Type.String()),
  related: Type.Optional(ObjectReference),
  reportingComponent: Type.Optional(Type.String()),
  reportingInstance: Type.Optional(Type.String()),
  series: Type.Optional(Type.Object({}, { additionalProperties: true })),
};
export type EventFields = { [K in keyof typeof EventFields]?: Static<(typeof EventFields)[K]> };

export const Event: KindDefinition = {
  group: '', version: 'v1', kind: 'Event', plural: 'events', singular: 'event',
  shortNames: ['ev'], namespaced: true, categories: [],
  description: 'Something that happened to an object, for people to read.',
  topLevel: EventFields,
  selectableFields: ['involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace', 'involvedObject.uid', 'reason', 'type'],
  columns: [
    { name: 'Type', type: 'string', description: 'Normal or Warning', jsonPath: '.type' },
    { name: 'Reason', type: 'string', description: 'Reason', jsonPath: '.reason' },
    { name: 'Object', type: 'string', description: 'Involved object', jsonPath: '.involvedObject.name',
      value: (o) => `${String((o.involvedObject as { kind?: string })?.kind ?? '').toLowerCase()}/${(o.involvedObject as { name?: string })?.name ?? ''}` },
    { name: 'Message', type: 'string', description: 'Message', jsonPath: '.message' },
  ],
};
