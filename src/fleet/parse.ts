// Reading a fleet file: YAML → schema check (the project's validator, defaults filled) →
// cross-reference checks → a resolved Fleet. Every problem found is reported at once,
// each with its field path and line, so one edit-run cycle fixes them all.
import { readFileSync } from 'node:fs';
import { LineCounter, parseAllDocuments, isNode, type Document } from 'yaml';
import { compileValidator, type KindValidator } from '../api/validate.ts';
import { parseQuantity } from '../api/quantity.ts';
import type { AcceleratorClassSpec } from '../api/kinds/acceleratorclass.ts';
import type { QueueSpec } from '../api/kinds/queue.ts';
import {
  FleetError, FleetFileDefinition, FLEET_API_VERSION, FLEET_KIND,
  type Fleet, type FleetIssue, type FleetFileFabric, type FleetFileNodeTemplate, type FleetInterconnect,
  type FleetNodeTemplate, type FleetSpine, type FleetLeaf, type FleetQueue,
} from './format.ts';

type Path = (string | number)[];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Names the expansion generates for spines and leaves; the fabric may not take one. */
const GENERATED_DOMAIN = /^(spine|leaf)-s[0-9]+/;
/** Far beyond any real cluster; stops a typo (count: 1000000) from exhausting memory. */
const MAX_FLEET_NODES = 1_000_000;

let fleetValidator: KindValidator | undefined;

/** Reads and parses a fleet file; errors name the file (as given) and the field. */
export function loadFleet(path: string): Fleet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new FleetError(path, [{ field: '', message: `cannot read the fleet file: ${(err as Error).message}` }]);
  }
  return parseFleet(text, path);
}

/** Parses fleet YAML; `sourceName` (a path or a name) starts every error message. */
export function parseFleet(yamlText: string, sourceName: string): Fleet {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(yamlText, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  const yamlIssues: FleetIssue[] = [];
  for (const d of list) {
    for (const e of d.errors) {
      const first = e.message.split('\n')[0]!;
      const hint = e.code === 'DUPLICATE_KEY' ? ' (a name or field is declared twice in the same mapping)' : '';
      yamlIssues.push({ field: '', message: `invalid YAML: ${first}${hint}`, line: lineCounter.linePos(e.pos[0]).line });
    }
  }
  if (yamlIssues.length) throw new FleetError(sourceName, yamlIssues);
  const nonEmpty = list.filter((d) => d.contents !== null);
  if (nonEmpty.length === 0) throw new FleetError(sourceName, [{ field: '', message: 'the fleet file is empty' }]);
  if (nonEmpty.length > 1) {
    throw new FleetError(sourceName, [{ field: '', message: 'a fleet file holds exactly one YAML document', line: lineOf(nonEmpty[1]!, [], lineCounter) }]);
  }
  const doc = nonEmpty[0]!;
  const raw = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  const issues: FleetIssue[] = [];
  const report = (path: Path, message: string) => issues.push({ field: formatPath(path), message, line: lineOf(doc, path, lineCounter) });

  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    report([], 'a fleet file must be a mapping with apiVersion, kind, metadata, acceleratorClasses, nodeTemplates and fabric');
    throw new FleetError(sourceName, issues);
  }
  const obj = raw as Record<string, unknown>;
  if (obj.apiVersion !== FLEET_API_VERSION) report(['apiVersion'], `must be "${FLEET_API_VERSION}", not ${describe(obj.apiVersion)}`);
  if (obj.kind !== FLEET_KIND) {
    report(['kind'], `must be "${FLEET_KIND}", not ${describe(obj.kind)}${typeof obj.kind === 'string' && obj.kind ? ' (is this a manifest for kubectl apply rather than a fleet file?)' : ''}`);
    throw new FleetError(sourceName, issues);
  }

  // Shape, types and defaults: the one schema, through the project's validator.
  fleetValidator ??= compileValidator(FleetFileDefinition);
  for (const cause of fleetValidator.validate(obj).causes) {
    issues.push({ field: cause.field, message: cause.message, line: lineOf(doc, splitField(cause.field), lineCounter) });
  }
  if (issues.length) throw new FleetError(sourceName, issues);

  const file = obj as unknown as FleetFile;
  const fleet = resolve(file, sourceName, report);
  if (issues.length || !fleet) throw new FleetError(sourceName, issues);
  return fleet;
}

/** The fleet file after schema validation (defaults filled). */
interface FleetFile {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; labels?: Record<string, string> };
  acceleratorClasses: Record<string, AcceleratorClassSpec>;
  nodeTemplates: Record<string, FleetFileNodeTemplate>;
  fabric: FleetFileFabric;
  queues?: Record<string, QueueSpec>;
}

/** Cross-reference and value checks the schema cannot express; builds the Fleet. */
function resolve(file: FleetFile, source: string, report: (path: Path, message: string) => void): Fleet | undefined {
  const name = file.metadata.name;
  if (name === undefined) report(['metadata', 'name'], 'Required value: the fleet\'s name (it labels every object, k8s4ai.io/fleet)');
  else if (!isDnsLabel(name)) report(['metadata', 'name'], dnsMessage(name, 'a DNS label'));

  // Accelerator classes.
  const classes = new Map<string, AcceleratorClassSpec>();
  for (const [className, spec] of Object.entries(file.acceleratorClasses)) {
    const at: Path = ['acceleratorClasses', className];
    if (!isDnsLabel(className)) report(at, dnsMessage(className, 'a DNS label (it is also a label value)'));
    if (positive(spec.memory) === false) report([...at, 'memory'], 'must be more than 0');
    const reserved = spec.reservedMemory ?? 0;
    if (quantityAtLeast(reserved, spec.memory)) report([...at, 'reservedMemory'], `must be less than memory (${spec.memory})`);
    const profiles = new Set<string>();
    (spec.migProfiles ?? []).forEach((p, i) => {
      if (profiles.has(p.name)) report([...at, 'migProfiles', i, 'name'], `duplicate MIG profile "${p.name}"`);
      profiles.add(p.name);
      if (parseQuantity(p.memory) > parseQuantity(spec.memory)) {
        report([...at, 'migProfiles', i, 'memory'], `must not exceed the device memory (${spec.memory})`);
      }
    });
    classes.set(className, spec);
  }
  const classNames = [...classes.keys()].join(', ');

  // Node templates.
  const templates = new Map<string, FleetNodeTemplate>();
  for (const [templateName, t] of Object.entries(file.nodeTemplates)) {
    const at: Path = ['nodeTemplates', templateName];
    if (!isDnsLabel(templateName) || templateName.length > 40) {
      report(at, dnsMessage(templateName, 'a DNS label of at most 40 characters (it starts every node name)'));
    }
    const cls = classes.get(t.acceleratorClass);
    if (!cls) report([...at, 'acceleratorClass'], `"${t.acceleratorClass}" is not declared in acceleratorClasses (declared: ${classNames})`);
    const island = t.nvlinkIslandSize ?? 0;
    if (island > t.gpus) report([...at, 'nvlinkIslandSize'], `must not exceed gpus (${t.gpus})`);
    else if (island > 0 && t.gpus % island !== 0) report([...at, 'nvlinkIslandSize'], `must divide gpus (${t.gpus}) evenly`);
    if (positive(t.cpu) === false) report([...at, 'cpu'], 'must be more than 0');
    if (positive(t.memory) === false) report([...at, 'memory'], 'must be more than 0');
    const reserved = t.reservedGpuMemory ?? cls?.reservedMemory ?? '0';
    if (cls && t.reservedGpuMemory !== undefined && quantityAtLeast(t.reservedGpuMemory, cls.memory)) {
      report([...at, 'reservedGpuMemory'], `must be less than the class's memory (${cls.memory})`);
    }
    templates.set(templateName, {
      name: templateName,
      acceleratorClassName: t.acceleratorClass,
      gpus: t.gpus,
      nvlinkIslandSize: island,
      numaNodes: t.numaNodes ?? 1,
      cpu: t.cpu,
      memory: t.memory,
      ...(t.nvme !== undefined ? { nvme: t.nvme } : {}),
      reservedGpuMemory: reserved,
      ...(t.driverVersion !== undefined ? { driverVersion: t.driverVersion } : {}),
      ...(t.cudaVersion !== undefined ? { cudaVersion: t.cudaVersion } : {}),
      ...(t.operatingSystem !== undefined ? { operatingSystem: t.operatingSystem } : {}),
      labels: t.labels ?? {},
    });
  }
  const templateNames = [...templates.keys()].join(', ');

  // The fabric tree, unrolled to leaves.
  const fabricName = file.fabric.name;
  if (!isDnsLabel(fabricName)) report(['fabric', 'name'], dnsMessage(fabricName, 'a DNS label'));
  else if (GENERATED_DOMAIN.test(fabricName)) report(['fabric', 'name'], `"${fabricName}" looks like a generated spine or leaf name; choose another`);
  let totalNodes = 0;
  for (const group of file.fabric.spines) {
    for (const leaf of group.leaves) totalNodes += (group.count ?? 1) * (leaf.count ?? 1) * leaf.nodes;
  }
  if (totalNodes > MAX_FLEET_NODES) {
    report(['fabric', 'spines'], `declares ${totalNodes} nodes; a fleet holds at most ${MAX_FLEET_NODES}`);
    return undefined;
  }
  const spines: FleetSpine[] = [];
  file.fabric.spines.forEach((group, g) => {
    const spineInterconnect = group.interconnect ?? file.fabric.interconnect;
    for (let c = 0; c < (group.count ?? 1); c++) {
      const id = `s${spines.length + 1}`;
      const spine: FleetSpine = { id, name: `spine-${id}`, ...withInterconnect(spineInterconnect), leaves: [] };
      group.leaves.forEach((leafGroup, l) => {
        const at: Path = ['fabric', 'spines', g, 'leaves', l];
        const template = templates.get(leafGroup.template);
        if (!template && c === 0) report([...at, 'template'], `"${leafGroup.template}" is not declared in nodeTemplates (declared: ${templateNames})`);
        const leafInterconnect = leafGroup.interconnect ?? spineInterconnect;
        for (let k = 0; k < (leafGroup.count ?? 1); k++) {
          const leafId = `l${spine.leaves.length + 1}`;
          const leaf: FleetLeaf = {
            id: leafId, name: `leaf-${id}-${leafId}`, spine: spine.name,
            nodes: leafGroup.nodes, template: leafGroup.template, ...withInterconnect(leafInterconnect),
          };
          spine.leaves.push(leaf);
        }
      });
      spines.push(spine);
    }
  });

  // Queues: references to declared classes and queues, no cycles; parents first.
  const queues = resolveQueues(file, classes, report);

  return {
    apiVersion: file.apiVersion,
    kind: FLEET_KIND,
    name: name ?? '',
    source,
    labels: file.metadata.labels ?? {},
    acceleratorClasses: [...classes].map(([n, spec]) => ({ name: n, spec })),
    nodeTemplates: [...templates.values()],
    fabric: { name: fabricName, ...withInterconnect(file.fabric.interconnect), spines },
    queues,
  };
}

function resolveQueues(file: FleetFile, classes: Map<string, AcceleratorClassSpec>, report: (path: Path, message: string) => void): FleetQueue[] {
  const declared = file.queues;
  if (declared === undefined) {
    // No queues declared: one `default` queue whose nominal quota is every GPU of each class.
    const totals = new Map<string, number>();
    const templates = new Map(Object.entries(file.nodeTemplates));
    for (const group of file.fabric.spines) {
      for (const leaf of group.leaves) {
        const t = templates.get(leaf.template);
        if (!t) continue;
        const gpus = (group.count ?? 1) * (leaf.count ?? 1) * leaf.nodes * t.gpus;
        totals.set(t.acceleratorClass, (totals.get(t.acceleratorClass) ?? 0) + gpus);
      }
    }
    const quotas = [...classes.keys()].filter((c) => totals.has(c)).map((c) => ({ acceleratorClassName: c, nominal: totals.get(c)! }));
    return [{ name: 'default', spec: { weight: 1, quotas } }];
  }
  const names = Object.keys(declared);
  for (const [queueName, spec] of Object.entries(declared)) {
    const at: Path = ['queues', queueName];
    if (!DNS_SUBDOMAIN.test(queueName) || queueName.length > 253) report(at, dnsMessage(queueName, 'a DNS subdomain'));
    const seen = new Set<string>();
    (spec.quotas ?? []).forEach((q, i) => {
      const qa: Path = [...at, 'quotas', i, 'acceleratorClassName'];
      if (q.acceleratorClassName !== '*' && !classes.has(q.acceleratorClassName)) {
        report(qa, `"${q.acceleratorClassName}" is not declared in acceleratorClasses (declared: ${[...classes.keys()].join(', ')}; or * for any)`);
      }
      if (seen.has(q.acceleratorClassName)) report(qa, `duplicate quota for "${q.acceleratorClassName}"`);
      seen.add(q.acceleratorClassName);
      if (q.lendingLimit !== undefined && q.lendingLimit > q.nominal) report([...at, 'quotas', i, 'lendingLimit'], `must not exceed nominal (${q.nominal})`);
    });
    if (spec.parent !== undefined) {
      if (spec.parent === queueName) report([...at, 'parent'], 'a queue cannot be its own parent');
      else if (!(spec.parent in declared)) report([...at, 'parent'], `"${spec.parent}" is not declared in queues (declared: ${names.join(', ')})`);
    }
  }
  // Parents before children; a cycle is reported once, at its first member.
  const out: FleetQueue[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (queueName: string, chain: string[]): void => {
    const s = state.get(queueName);
    if (s === 'done') return;
    if (s === 'visiting') {
      report(['queues', queueName, 'parent'], `the parent chain is a cycle: ${[...chain, queueName].join(' → ')}`);
      return;
    }
    state.set(queueName, 'visiting');
    const parent = declared[queueName]!.parent;
    if (parent !== undefined && parent !== queueName && parent in declared) visit(parent, [...chain, queueName]);
    state.set(queueName, 'done');
    out.push({ name: queueName, spec: declared[queueName]! });
  };
  for (const queueName of names) visit(queueName, []);
  return out;
}

// ---------------------------------------------------------------------------------------
// Helpers

function withInterconnect(i: FleetInterconnect | undefined): { interconnect?: FleetInterconnect } {
  return i === undefined ? {} : { interconnect: i };
}

function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

function dnsMessage(value: string, what: string): string {
  return `"${value}" must be ${what}: lower-case letters, digits and '-', starting and ending with a letter or digit`;
}

/** false when the quantity is zero (the schema already refused negatives and bad spellings). */
function positive(q: string | number): boolean {
  return parseQuantity(q) > 0n;
}

function quantityAtLeast(a: string | number, b: string | number): boolean {
  return parseQuantity(a) >= parseQuantity(b);
}

function describe(v: unknown): string {
  return v === undefined ? 'missing' : JSON.stringify(v);
}

/** `fabric.spines[0].leaves` → ['fabric', 'spines', 0, 'leaves']. */
export function splitField(field: string): Path {
  if (field === '<root>' || field === '') return [];
  const out: Path = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

/** ['fabric', 'spines', 0] → `fabric.spines[0]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** The line of the deepest node on `path` that exists in the document. */
function lineOf(doc: Document, path: Path, lineCounter: LineCounter): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
  }
  return undefined;
}
