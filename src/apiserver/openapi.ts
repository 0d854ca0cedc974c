// Discovery and OpenAPI documents, all derived from the kind registry.
import { createHash } from 'node:crypto';
import type { KindDefinition } from '../api/kind.ts';
import { apiVersionOf, GROUP, VERSION } from '../api/kind.ts';
import { crdSchema } from '../api/crd.ts';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function apiResourceList(groupVersion: string, kinds: readonly KindDefinition[]) {
  const resources = kinds.flatMap((k) => [
    {
      name: k.plural,
      singularName: k.singular,
      namespaced: k.namespaced,
      kind: k.kind,
      verbs: VERBS,
      ...(k.shortNames.length ? { shortNames: k.shortNames } : {}),
      ...(k.categories.length ? { categories: k.categories } : {}),
    },
    { name: `${k.plural}/status`, singularName: '', namespaced: k.namespaced, kind: k.kind, verbs: ['get', 'patch', 'update'] },
  ]);
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}

export function apiGroup() {
  const gv = { groupVersion: `${GROUP}/${VERSION}`, version: VERSION };
  return { kind: 'APIGroup', apiVersion: 'v1', name: GROUP, versions: [gv], preferredVersion: gv };
}

export function apiGroupList() {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [apiGroup()] };
}

export function apiVersions(serverAddress: string) {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/**
 * The smallest valid protobuf OpenAPI v2 document: gnostic `Document{swagger: "2.0"}`.
 * kubectl asks /openapi/v2 for protobuf before `apply`; this answer satisfies every
 * version, while field validation happens on the server through OpenAPI v3.
 */
export const OPENAPI_V2_PROTOBUF = Buffer.from([0x0a, 0x03, 0x32, 0x2e, 0x30]);

const schemaName = (k: KindDefinition) => `${k.group ? k.group.split('.').reverse().join('.') : 'io.k8s.api.core'}.${k.version}.${k.kind}`;

const param = (name: string, description: string, inPath = false) => ({
  name,
  in: inPath ? 'path' : 'query',
  description,
  ...(inPath ? { required: true } : {}),
  schema: { type: 'string', uniqueItems: true },
});

/** One OpenAPI v3 document for a group-version: schemas and paths whose write operations
 *  advertise `fieldValidation`, so kubectl leaves validation to the server. */
export function openapiV3(groupVersion: string, kinds: readonly KindDefinition[]) {
  const schemas: Record<string, unknown> = {};
  const paths: Record<string, unknown> = {};
  for (const k of kinds) {
    const gvk = [{ group: k.group, version: k.version, kind: k.kind }];
    const ref = { $ref: `#/components/schemas/${schemaName(k)}` };
    schemas[schemaName(k)] = { ...crdSchema(k), 'x-kubernetes-group-version-kind': gvk };
    const body = (types: string[]) => ({ content: Object.fromEntries(types.map((t) => [t, { schema: types[0] === 'application/json' ? ref : { type: 'object' } }])), required: true });
    const ok = { 200: { description: 'OK', content: { 'application/json': { schema: ref } } } };
    // Strategic merge is not advertised, even for core kinds (the server still accepts it there):
    // kubectl 1.27+ would then build strategic patches from these schemas, whose metadata is
    // opaque, and warn "error calculating patch from openapi v3 spec" on every apply.
    const patchTypes = ['application/json-patch+json', 'application/merge-patch+json'];
    const writeParams = [param('dryRun', 'All: validate without persisting'), param('fieldManager', 'Name of the writer'), param('fieldValidation', 'Strict, Warn or Ignore unknown fields')];
    const ext = { 'x-kubernetes-group-version-kind': gvk[0] };
    const base = `/${k.group ? `apis/${apiVersionOf(k)}` : 'api/v1'}${k.namespaced ? '/namespaces/{namespace}' : ''}/${k.plural}`;
    const nsParams = k.namespaced ? [param('namespace', 'object name and auth scope', true)] : [];
    paths[base] = {
      parameters: nsParams,
      get: { operationId: `list${k.kind}`, 'x-kubernetes-action': 'list', ...ext, responses: ok },
      post: { operationId: `create${k.kind}`, 'x-kubernetes-action': 'post', ...ext, parameters: writeParams, requestBody: body(['application/json', 'application/yaml']), responses: ok },
      delete: { operationId: `deleteCollection${k.kind}`, 'x-kubernetes-action': 'deletecollection', ...ext, responses: ok },
    };
    for (const sub of ['', '/status']) {
      paths[`${base}/{name}${sub}`] = {
        parameters: [param('name', `name of the ${k.kind}`, true), ...nsParams],
        get: { operationId: `read${k.kind}${sub ? 'Status' : ''}`, 'x-kubernetes-action': 'get', ...ext, responses: ok },
        put: { operationId: `replace${k.kind}${sub ? 'Status' : ''}`, 'x-kubernetes-action': 'put', ...ext, parameters: writeParams, requestBody: body(['application/json', 'application/yaml']), responses: ok },
        patch: { operationId: `patch${k.kind}${sub ? 'Status' : ''}`, 'x-kubernetes-action': 'patch', ...ext, parameters: writeParams, requestBody: body(patchTypes), responses: ok },
        ...(sub ? {} : { delete: { operationId: `delete${k.kind}`, 'x-kubernetes-action': 'delete', ...ext, responses: ok } }),
      };
    }
  }
  return { openapi: '3.0.0', info: { title: 'k8s4ai', version: groupVersion }, paths, components: { schemas } };
}

export function openapiV3Index(docs: Record<string, unknown>) {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [gvPath, doc] of Object.entries(docs)) {
    const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 32).toUpperCase();
    paths[gvPath] = { serverRelativeURL: `/openapi/v3/${gvPath}?hash=${hash}` };
  }
  return { paths };
}
