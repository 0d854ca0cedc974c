// `k8s4ai get`: tables from the server's Table form (the same columns kubectl shows),
// -o yaml|json|wide, -A, -l, -w.
import type { KindDefinition } from '../api/kind.ts';
import { ApiClient, ClientError } from '../client/client.ts';
import { parseTargets } from './resources.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { formatTable, formatObject, cellText } from './printers.ts';
import { CliError } from './errors.ts';

const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

interface Table {
  columnDefinitions: { name: string; priority: number }[];
  rows: { cells: unknown[]; object: { metadata: { namespace?: string } } }[];
  metadata: { resourceVersion?: string };
}

export interface GetOptions extends GlobalOptions {
  output?: string;
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  fieldSelector?: string;
  watch?: boolean;
}

export async function get(args: string[], opts: GetOptions): Promise<void> {
  const output = opts.output;
  if (output && !['yaml', 'json', 'wide', 'name'].includes(output)) throw new CliError(`unknown output format "${output}": use yaml, json, wide or name`);
  const targets = parseTargets(args);
  const client = clientFor(opts);
  try {
    for (const { def, names } of targets) {
      const ns = def.namespaced ? (opts.allNamespaces ? undefined : (opts.namespace ?? client.namespace)) : undefined;
      if (output === 'yaml' || output === 'json' || output === 'name') {
        const objects = names.length
          ? await Promise.all(names.map((n) => client.get(def, ns, n)))
          : (await client.listAll(def, ns, { labelSelector: opts.selector, fieldSelector: opts.fieldSelector })).items;
        if (output === 'name') console.log(objects.map((o) => `${def.singular}${def.group ? `.${def.group}` : ''}/${o.metadata.name}`).join('\n'));
        else if (names.length === 1) console.log(formatObject(objects[0], output));
        else console.log(formatObject({ apiVersion: 'v1', kind: 'List', metadata: {}, items: objects }, output));
        continue;
      }
      await printTable(client, def, ns, names, opts);
    }
  } catch (err) {
    if (err instanceof ClientError) throw new CliError(`Error from server (${err.reason}): ${err.message}`);
    throw err;
  } finally {
    if (!opts.watch) await client.close();
  }
}

async function printTable(client: ApiClient, def: KindDefinition, ns: string | undefined, names: string[], opts: GetOptions): Promise<void> {
  const wide = opts.output === 'wide';
  const withNs = def.namespaced && opts.allNamespaces;
  const fetchTable = (name?: string) =>
    client.request<Table>('GET', client.path(def, ns, name), {
      accept: TABLE_ACCEPT,
      query: name ? {} : { labelSelector: opts.selector, fieldSelector: opts.fieldSelector, limit: 500 },
    });
  const tables = names.length ? await Promise.all(names.map((n) => fetchTable(n))) : [await fetchTable()];
  const columns = tables[0]!.columnDefinitions;
  const shown = columns.map((c, i) => ({ c, i })).filter(({ c }) => wide || c.priority === 0);
  const headers = [...(withNs ? ['NAMESPACE'] : []), ...shown.map(({ c }) => c.name.toUpperCase())];
  const rowsOf = (t: Table) => t.rows.map((r) => [...(withNs ? [r.object.metadata.namespace ?? ''] : []), ...shown.map(({ i }) => cellText(r.cells[i]))]);
  const rows = tables.flatMap(rowsOf);
  if (rows.length === 0 && !opts.watch) {
    console.error(def.namespaced && ns ? `No resources found in ${ns} namespace.` : 'No resources found');
    return;
  }
  const text = formatTable(headers, rows);
  console.log(text);
  if (!opts.watch) return;
  // Watch: the server renders each change as a one-row Table; print it aligned to the header.
  const w = await client.watch(
    def,
    ns,
    { resourceVersion: tables[0]!.metadata.resourceVersion, labelSelector: opts.selector, fieldSelector: names.length === 1 ? `metadata.name=${names[0]}` : opts.fieldSelector },
    (e) => {
      if (e.type === 'BOOKMARK') return;
      if (e.type === 'ERROR') throw new CliError(`watch ended: ${(e.object as { message?: string }).message ?? 'error'}`);
      for (const row of rowsOf(e.object as unknown as Table)) console.log(formatTable(headers, [row]).split('\n')[1]);
    },
    TABLE_ACCEPT,
  );
  await w.done;
}
