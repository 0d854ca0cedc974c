// Every manifest under examples/ is a working one: it parses, validates against its kind's
// schema, can be applied together with all the others, and refers only to things that exist
// (in the examples or in the demo fleet the examples are written for).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ALL_KINDS, K8S4AI_KINDS, Namespace } from '../src/api/kinds/index.ts';
import { apiVersionOf, type KindDefinition } from '../src/api/kind.ts';
import { compileValidator, type KindValidator } from '../src/api/validate.ts';
import type { KubeObject } from '../src/api/meta.ts';
import type { MemberTemplate } from '../src/api/kinds/workload.ts';
import type { GangSchedulingGroupSpec } from '../src/api/kinds/gangschedulinggroup.ts';
import type { InferenceServiceSpec } from '../src/api/kinds/inferenceservice.ts';
import type { ContentRouterSpec } from '../src/api/kinds/contentrouter.ts';
import type { VRAMPoolSpec } from '../src/api/kinds/vrampool.ts';
import type { QueueSpec } from '../src/api/kinds/queue.ts';
import type { TopologyDomainSpec } from '../src/api/kinds/topologydomain.ts';
import type { NodeSpec, NodeStatus } from '../src/api/kinds/node.ts';
import { loadFleet, expandFleet, FLEET_DEMO_PATH } from '../src/fleet/index.ts';
import { manifestFiles } from '../src/cli/manifests.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

interface Example {
  file: string;
  obj: KubeObject;
  def: KindDefinition;
}

const files = manifestFiles(EXAMPLES);
const examples: Example[] = [];
for (const path of files) {
  const file = relative(ROOT, path).split('\\').join('/');
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    assert.deepEqual(doc.errors.map((e) => e.message), [], `${file}: YAML errors`);
    const obj = doc.toJS() as KubeObject | null;
    if (obj === null) continue;
    const def = ALL_KINDS.find((k) => apiVersionOf(k) === obj.apiVersion && k.kind === obj.kind);
    assert.ok(def, `${file}: no kind ${obj.apiVersion} ${obj.kind}`);
    examples.push({ file, obj, def });
  }
}

const validators = new Map<KindDefinition, KindValidator>();
const validatorOf = (def: KindDefinition) => {
  let v = validators.get(def);
  if (!v) validators.set(def, (v = compileValidator(def)));
  return v;
};

const ofKind = (kind: string) => examples.filter((e) => e.obj.kind === kind);
const demo = expandFleet(loadFleet(FLEET_DEMO_PATH));
const demoNames = (kind: string) => new Set(demo.filter((o) => o.kind === kind).map((o) => o.metadata.name));
/** Names of a kind that exist once the demo fleet is up and every example is applied. */
const known = (kind: string) => new Set([...demoNames(kind), ...ofKind(kind).map((e) => e.obj.metadata.name)]);

describe('examples', () => {
  it('are found, several documents per file where natural', () => {
    assert.ok(files.length >= 13, `only ${files.length} files`);
    assert.ok(examples.length > files.length);
  });

  it('cover every k8s4ai kind and the core Namespace', () => {
    for (const def of [...K8S4AI_KINDS, Namespace]) {
      assert.ok(examples.some((e) => e.def === def), `no example of ${def.kind}`);
    }
  });

  it('validate against their kind\'s schema with no causes', () => {
    for (const { file, obj, def } of examples) {
      const { causes } = validatorOf(def).validate(structuredClone(obj));
      assert.deepEqual(causes, [], `${file}: ${obj.kind} ${obj.metadata?.name}: ${JSON.stringify(causes)}`);
    }
  });

  it('have valid names, and live in default unless they are about team-a', () => {
    for (const { file, obj, def } of examples) {
      assert.ok(typeof obj.metadata?.name === 'string' && DNS_SUBDOMAIN.test(obj.metadata.name) && obj.metadata.name.length <= 63, `${file}: bad name`);
      if (!def.namespaced) {
        assert.equal(obj.metadata.namespace, undefined, `${file}: ${obj.kind} is cluster-scoped`);
      } else {
        assert.ok(obj.metadata.namespace === undefined || obj.metadata.namespace === 'default', `${file}: ${obj.kind} ${obj.metadata.name} is in ${obj.metadata.namespace}`);
      }
    }
    const namespaces = ofKind('Namespace');
    assert.deepEqual(namespaces.map((e) => [e.file, e.obj.metadata.name]), [['examples/namespaces/team-a.yaml', 'team-a']]);
    assert.equal(examples.filter((e) => e.file === 'examples/namespaces/team-a.yaml').length, 1, 'the namespace file stands alone');
  });

  it('never use one name twice for the same kind and namespace (they are applied together)', () => {
    const seen = new Map<string, string>();
    for (const { file, obj, def } of examples) {
      const key = `${obj.kind}/${def.namespaced ? (obj.metadata.namespace ?? 'default') : ''}/${obj.metadata.name}`;
      assert.ok(!seen.has(key), `${key} in both ${seen.get(key)} and ${file}`);
      seen.set(key, file);
    }
  });

  it('are all listed in examples/README.md', () => {
    const readme = readFileSync(join(EXAMPLES, 'README.md'), 'utf8');
    for (const path of files) {
      const rel = relative(EXAMPLES, path).split('\\').join('/');
      assert.ok(readme.includes(`(${rel})`), `README.md does not list ${rel}`);
    }
  });

  it('keep the H100 class word for word the demo fleet\'s', () => {
    const [example] = ofKind('AcceleratorClass').filter((e) => e.obj.metadata.name === 'h100-sxm-80gb');
    assert.ok(example);
    const obj = structuredClone(example.obj);
    validatorOf(example.def).validate(obj);
    const fleetClass = demo.find((o) => o.kind === 'AcceleratorClass' && o.metadata.name === 'h100-sxm-80gb')!;
    assert.deepEqual(obj.spec, fleetClass.spec);
  });

  it('ship a router whose tenant key hashes are the SHA-256 of the documented demo keys', () => {
    const [router] = ofKind('ContentRouter');
    const text = readFileSync(join(ROOT, router!.file), 'utf8');
    const tenants = (router!.obj.spec as ContentRouterSpec).tenants ?? [];
    assert.ok(tenants.length >= 1);
    for (const tenant of tenants) {
      const key = `sk-k8s4ai-demo-${tenant.name}`;
      assert.ok(text.includes(key), `the demo key for ${tenant.name} is not documented`);
      const hash = `sha256:${createHash('sha256').update(key).digest('hex')}`;
      assert.deepEqual(tenant.apiKeyHashes, [hash]);
    }
  });

  it('ship the gangs the brief asks for', () => {
    const gang = (name: string) => ofKind('GangSchedulingGroup').find((e) => e.obj.metadata.name === name)!.obj.spec as GangSchedulingGroupSpec;
    const gpus = (spec: GangSchedulingGroupSpec) => spec.roles.reduce((n, r) => n + (r.replicas ?? 1) * (r.template.resources?.gpus ?? 0), 0);
    const big = gang('llama-70b-pretrain');
    assert.equal(big.roles.length, 4);
    assert.equal(gpus(big), 32);
    assert.deepEqual(big.topology, { required: 'leaf', preferred: 'nvlink-island' });
    assert.deepEqual(big.roles[0]!.template.command, ['python3', 'train.py']);
    assert.ok((big.roles[0]!.template.env ?? []).length > 0);
    const small = gang('hello-gang');
    assert.equal(gpus(small), 2);
    assert.equal(small.roles[0]!.template.command[0], 'node');
    for (const name of ['notebook-a', 'notebook-b']) {
      const r = gang(name).roles[0]!.template.resources!;
      assert.equal(r.vram, '20Gi');
      assert.equal(r.computeMilli, 500);
    }
  });

  it('refer only to objects that exist once the demo fleet is up and the examples are applied', () => {
    const classes = known('AcceleratorClass');
    const queues = known('Queue');
    const domains = known('TopologyDomain');
    const policies = known('CheckpointPolicy');
    const pools = known('VRAMPool');
    const services = known('InferenceService');
    const checkTemplate = (where: string, t: MemberTemplate) => {
      const cls = t.resources?.acceleratorClassName;
      if (cls !== undefined) assert.ok(classes.has(cls), `${where}: class ${cls}`);
      if (t.vramPoolName !== undefined) assert.ok(pools.has(t.vramPoolName), `${where}: pool ${t.vramPoolName}`);
    };
    for (const { file, obj } of examples) {
      const where = `${file} ${obj.kind} ${obj.metadata.name}`;
      switch (obj.kind) {
        case 'GangSchedulingGroup': {
          const spec = obj.spec as GangSchedulingGroupSpec;
          assert.ok(queues.has(spec.queueName ?? 'default'), `${where}: queue ${spec.queueName}`);
          if (spec.checkpointPolicyName) assert.ok(policies.has(spec.checkpointPolicyName), `${where}: policy`);
          for (const p of spec.vramPoolNames ?? []) assert.ok(pools.has(p), `${where}: pool ${p}`);
          for (const role of spec.roles) checkTemplate(where, role.template);
          break;
        }
        case 'InferenceService': {
          const spec = obj.spec as InferenceServiceSpec;
          assert.ok(queues.has(spec.queueName ?? 'default'), `${where}: queue`);
          for (const m of spec.models) if (m.vramPoolName) assert.ok(pools.has(m.vramPoolName), `${where}: pool ${m.vramPoolName}`);
          checkTemplate(where, spec.template);
          break;
        }
        case 'ContentRouter': {
          const spec = obj.spec as ContentRouterSpec;
          if (spec.serviceName) assert.ok(services.has(spec.serviceName), `${where}: service ${spec.serviceName}`);
          break;
        }
        case 'VRAMPool': {
          const spec = obj.spec as VRAMPoolSpec;
          if (spec.acceleratorClassName) assert.ok(classes.has(spec.acceleratorClassName), `${where}: class`);
          break;
        }
        case 'Queue': {
          const spec = obj.spec as QueueSpec;
          if (spec.parent) assert.ok(queues.has(spec.parent), `${where}: parent ${spec.parent}`);
          for (const q of spec.quotas ?? []) assert.ok(q.acceleratorClassName === '*' || classes.has(q.acceleratorClassName), `${where}: class ${q.acceleratorClassName}`);
          break;
        }
        case 'TopologyDomain': {
          const spec = obj.spec as TopologyDomainSpec;
          if (spec.parent) assert.ok(domains.has(spec.parent), `${where}: parent ${spec.parent}`);
          break;
        }
        case 'Node': {
          const leaf = (obj.spec as NodeSpec).topologyDomain;
          if (leaf) assert.ok(domains.has(leaf), `${where}: domain ${leaf}`);
          const status = obj.status as NodeStatus;
          for (const d of status.topologyPath ?? []) assert.ok(domains.has(d), `${where}: path ${d}`);
          for (const g of status.gpus ?? []) if (g.acceleratorClassName) assert.ok(classes.has(g.acceleratorClassName), `${where}: class`);
          break;
        }
      }
    }
  });

  it('do not collide with the demo fleet except where they restate it on purpose', () => {
    const restated = new Set(['AcceleratorClass/h100-sxm-80gb']);
    const fleet = new Set(demo.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const { file, obj } of examples) {
      const key = `${obj.kind}/${obj.metadata.name}`;
      if (!restated.has(key)) assert.ok(!fleet.has(key), `${file}: ${key} would overwrite the demo fleet's`);
    }
  });
});
