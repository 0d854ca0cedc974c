import { Type, Struct, Quantity, StringEnum, NonNegativeInt, PositiveInt, Duration, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';

export const RoutingPolicies = ['k8s4ai', 'round-robin', 'least-loaded', 'sglang', 'llm-d'] as const;

/** What a router's prefix index learns from: its own routing history, or the engines' KV events. */
export const IndexSource = { History: 'History', KVEvents: 'KVEvents' } as const;
export type IndexSource = (typeof IndexSource)[keyof typeof IndexSource];
export const INDEX_SOURCES = [IndexSource.History, IndexSource.KVEvents] as const;

export const ContentRouterSpec = Struct({
  serviceName: Type.Optional(Type.String({ minLength: 1, description: 'The InferenceService whose ready Tasks are the backends.' })),
  backends: Type.Optional(Type.Array(Struct({ url: Type.String({ pattern: '^https?://' }) }), { description: 'A static backend list, for standalone use.' })),
  listen: Type.Optional(Struct({
    address: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 0 }),
  })),
  routing: Type.Optional(Struct({
    policy: StringEnum(RoutingPolicies, { default: 'k8s4ai' }),
    blockSize: Type.Optional(PositiveInt('Tokens per hashed prefix block.', { default: 64 })),
    loadBound: Type.Optional(Type.Number({ minimum: 1, default: 1.25, description: 'A backend may take at most this multiple of the mean load before affinity yields.' })),
    minMatchRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'Below this prefix match, route by load alone.' })),
  })),
  index: Type.Optional(Struct({
    capacityBlocks: PositiveInt('Blocks remembered per backend (LRU).', { default: 100000 }),
    source: StringEnum(INDEX_SOURCES, { default: IndexSource.History }),
  })),
  tenants: Type.Optional(Type.Array(Struct({
    name: Type.String({ minLength: 1 }),
    apiKeyHashes: Type.Array(Type.String({ pattern: '^sha256:[a-f0-9]{64}$' }), { minItems: 1, description: 'SHA-256 of each API key; keys are never stored.' }),
    cacheSalt: Type.Optional(Type.String({ minLength: 8, description: 'Seeds the tenant\'s block hashes; generated when absent.' })),
    maxInFlight: Type.Optional(PositiveInt('Requests in flight for the tenant.')),
  }))),
  retries: Type.Optional(NonNegativeInt('Retries on another backend before the first byte.', { default: 1 })),
  timeouts: Type.Optional(Struct({
    connect: Duration('', { default: '2s' }),
    firstToken: Duration('', { default: '60s' }),
    idle: Duration('', { default: '30s' }),
  })),
  maxInFlightPerBackend: Type.Optional(PositiveInt('Above this every backend counts as over its bound (429).', { default: 256 })),
  maxBodySize: Type.Optional(Quantity('Largest request body.', { default: '8Mi' })),
});
export type ContentRouterSpec = Static<typeof ContentRouterSpec>;

export const ContentRouterStatus = StatusStruct({
  url: Type.Optional(Type.String()),
  readyBackends: Type.Optional(NonNegativeInt('Backends passing health checks.')),
  backends: Type.Optional(Type.Array(Struct({
    url: Type.String(),
    ready: Type.Boolean(),
    inFlight: Type.Optional(NonNegativeInt('')),
  }))),
  blockHitRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  tokenHitRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
});

export const ContentRouter: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'ContentRouter', plural: 'contentrouters', singular: 'contentrouter',
  shortNames: ['cr', 'router'], namespaced: true, categories: [...CATEGORIES],
  description: 'A prefix-cache-aware, load-aware, tenant-isolated OpenAI-compatible entry point.',
  spec: ContentRouterSpec, status: ContentRouterStatus, specRequired: true,
  columns: [
    { name: 'Service', type: 'string', description: 'InferenceService', jsonPath: '.spec.serviceName' },
    { name: 'Policy', type: 'string', description: 'Routing policy', jsonPath: '.spec.routing.policy' },
    { name: 'Ready', type: 'integer', description: 'Ready backends', jsonPath: '.status.readyBackends' },
    { name: 'Hit-Rate', type: 'number', description: 'Block hit rate', jsonPath: '.status.blockHitRate' },
    { name: 'URL', type: 'string', description: 'Listen URL', jsonPath: '.status.url', priority: 1 },
  ],
};
