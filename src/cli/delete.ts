// `k8s4ai delete`: by kind and names, kind/name, -f manifests, or -l selector.
import { ClientError } from '../client/client.ts';
import { parseTargets, kindByApiVersion } from './resources.ts';
import { readManifests } from './manifests.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { CliError } from './errors.ts';
import type { KindDefinition } from '../api/kind.ts';

export async function deleteCommand(args: string[], opts: GlobalOptions & { filename?: string[]; namespace?: string; selector?: string; all?: boolean; ignoreNotFound?: boolean; cascade?: string }): Promise<void> {
  const client = clientFor(opts);
  const policy = opts.cascade === 'orphan' ? 'Orphan' : opts.cascade === 'foreground' ? 'Foreground' : 'Background';
  const work: { def: KindDefinition; ns?: string; name: string }[] = [];
  try {
    if (opts.filename?.length) {
      for (const m of readManifests(opts.filename)) {
        const def = kindByApiVersion(m.object.apiVersion, m.object.kind);
        if (!def) throw new CliError(`${m.source}: no kind "${String(m.object.kind)}" in ${String(m.object.apiVersion)}`);
        work.push({ def, ns: def.namespaced ? (m.object.metadata.namespace ?? opts.namespace ?? client.namespace) : undefined, name: m.object.metadata.name });
      }
    } else {
      for (const { def, names } of parseTargets(args)) {
        const ns = def.namespaced ? (opts.namespace ?? client.namespace) : undefined;
        if (names.length) names.forEach((name) => work.push({ def, ns, name }));
        else if (opts.selector || opts.all) {
          for (const o of (await client.listAll(def, ns, { labelSelector: opts.selector })).items) work.push({ def, ns, name: o.metadata.name });
        } else throw new CliError('resource(s) were provided, but no name was specified (give names, -l SELECTOR or --all)');
      }
    }
    for (const { def, ns, name } of work) {
      try {
        await client.delete(def, ns, name, policy);
        console.log(`${def.singular}${def.group ? `.${def.group}` : ''} "${name}" deleted`);
      } catch (err) {
        if (err instanceof ClientError && err.statusCode === 404 && opts.ignoreNotFound) continue;
        throw err;
      }
    }
  } catch (err) {
    if (err instanceof ClientError) throw new CliError(`Error from server (${err.reason}): ${err.message}`);
    throw err;
  } finally {
    await client.close();
  }
}
