// `k8s4ai describe`: spec, status, conditions and recent Events of objects.
import { stringify } from 'yaml';
import type { KubeObject, Condition } from '../api/meta.ts';
import type { KindDefinition } from '../api/kind.ts';
import { Event } from '../api/kinds/core.ts';
import { ApiClient, ClientError } from '../client/client.ts';
import { humanAge } from '../apiserver/table.ts';
import { parseTargets } from './resources.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { formatTable } from './printers.ts';
import { CliError } from './errors.ts';

const indent = (text: string, by = 2) => text.split('\n').map((l) => (l ? ' '.repeat(by) + l : l)).join('\n');
const map = (m: Record<string, string> | undefined) => (m && Object.keys(m).length ? Object.entries(m).map(([k, v]) => `${k}=${v}`).join('\n              ') : '<none>');

export async function describe(args: string[], opts: GlobalOptions & { namespace?: string; selector?: string }): Promise<void> {
  const client = clientFor(opts);
  try {
    const blocks: string[] = [];
    for (const { def, names } of parseTargets(args)) {
      const ns = def.namespaced ? (opts.namespace ?? client.namespace) : undefined;
      const objects = names.length ? await Promise.all(names.map((n) => client.get(def, ns, n))) : (await client.listAll(def, ns, { labelSelector: opts.selector })).items;
      for (const o of objects) blocks.push(await describeObject(client, def, o));
    }
    console.log(blocks.join('\n\n'));
  } catch (err) {
    if (err instanceof ClientError) throw new CliError(`Error from server (${err.reason}): ${err.message}`);
    throw err;
  } finally {
    await client.close();
  }
}

export async function describeObject(client: ApiClient, def: KindDefinition, o: KubeObject): Promise<string> {
  const m = o.metadata;
  const lines = [
    `Name:         ${m.name}`,
    ...(def.namespaced ? [`Namespace:    ${m.namespace}`] : []),
    `Labels:       ${map(m.labels)}`,
    `Annotations:  ${map(m.annotations)}`,
    `API Version:  ${o.apiVersion}`,
    `Kind:         ${o.kind}`,
    `Metadata:`,
    `  Creation Timestamp:  ${String(m.creationTimestamp)}`,
    ...(m.deletionTimestamp ? [`  Deletion Timestamp:  ${m.deletionTimestamp}`] : []),
    ...(m.finalizers?.length ? [`  Finalizers:          ${m.finalizers.join(', ')}`] : []),
    ...(m.ownerReferences?.length ? [`  Owners:              ${m.ownerReferences.map((r) => `${r.kind}/${r.name}`).join(', ')}`] : []),
    `  Generation:          ${m.generation ?? ''}`,
    `  Resource Version:    ${m.resourceVersion ?? ''}`,
    `  UID:                 ${m.uid ?? ''}`,
  ];
  const { metadata: _m, apiVersion: _a, kind: _k, spec, status, ...rest } = o;
  if (spec !== undefined) lines.push('Spec:', indent(stringify(spec, { lineWidth: 0 }).trimEnd()));
  if (Object.keys(rest).length) lines.push(indent(stringify(rest, { lineWidth: 0 }).trimEnd(), 0));
  const { conditions, ...statusRest } = (status ?? {}) as { conditions?: Condition[] };
  if (status !== undefined && Object.keys(statusRest).length) lines.push('Status:', indent(stringify(statusRest, { lineWidth: 0 }).trimEnd()));
  if (conditions?.length) {
    lines.push('Conditions:');
    lines.push(indent(formatTable(['Type', 'Status', 'Reason', 'Age', 'Message'], conditions.map((c) => [c.type, c.status, c.reason ?? '', humanAge(c.lastTransitionTime), c.message ?? '']))));
  }
  lines.push(await eventsSection(client, o));
  return lines.join('\n');
}

async function eventsSection(client: ApiClient, o: KubeObject): Promise<string> {
  const list = await client.listAll(Event, o.metadata.namespace, { fieldSelector: `involvedObject.uid=${o.metadata.uid}` });
  if (!list.items.length) return 'Events:       <none>';
  const events = list.items.sort((a, b) => String(a.lastTimestamp).localeCompare(String(b.lastTimestamp)));
  const rows = events.map((e) => {
    const count = (e.count as number | undefined) ?? 1;
    const age = humanAge(e.lastTimestamp as string);
    return [String(e.type ?? ''), String(e.reason ?? ''), count > 1 ? `${age} (x${count})` : age, String((e.source as { component?: string })?.component ?? ''), String(e.message ?? '')];
  });
  return `Events:\n${indent(formatTable(['Type', 'Reason', 'Age', 'From', 'Message'], rows))}`;
}
