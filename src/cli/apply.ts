// `k8s4ai apply -f`: create what is missing, replace what exists with the manifest
// (guarded by its resourceVersion; status is the system's and is kept).
import type { KubeObject } from '../api/meta.ts';
import { ClientError } from '../client/client.ts';
import { readManifests } from './manifests.ts';
import { kindByApiVersion } from './resources.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { CliError } from './errors.ts';

export async function apply(opts: GlobalOptions & { filename: string[]; namespace?: string; dryRun?: boolean }): Promise<void> {
  const manifests = readManifests(opts.filename);
  // Check every kind before writing anything.
  const resolved = manifests.map((m) => {
    const def = kindByApiVersion(m.object.apiVersion, m.object.kind);
    if (!def) throw new CliError(`${m.source}: no kind "${String(m.object.kind)}" in ${String(m.object.apiVersion)} (see \`k8s4ai crds\`)`);
    if (!m.object.metadata?.name) throw new CliError(`${m.source}: a ${m.object.kind} has no metadata.name`);
    return { ...m, def };
  });
  const client = clientFor(opts);
  try {
    for (const { object, def, source } of resolved) {
      const ns = def.namespaced ? (object.metadata.namespace ?? opts.namespace ?? client.namespace) : undefined;
      const name = object.metadata.name;
      const label = `${def.singular}${def.group ? `.${def.group}` : ''}/${name}`;
      const query: Record<string, string> = opts.dryRun ? { dryRun: 'All', fieldValidation: 'Strict' } : { fieldValidation: 'Strict' };
      try {
        let existing: KubeObject | undefined;
        try {
          existing = await client.get(def, ns, name);
        } catch (err) {
          if (!(err instanceof ClientError && err.statusCode === 404)) throw err;
        }
        if (!existing) {
          await client.create(def, ns, object, query);
          console.log(`${label} created${opts.dryRun ? ' (dry run)' : ''}`);
          continue;
        }
        // The manifest replaces the object's spec and metadata; status stays the system's.
        const desired = { ...object, metadata: { ...object.metadata, resourceVersion: existing.metadata.resourceVersion } };
        const updated = await client.request<KubeObject>('PUT', client.path(def, ns, name), { body: desired, query });
        const changed = updated.metadata.resourceVersion !== existing.metadata.resourceVersion;
        console.log(`${label} ${changed ? 'configured' : 'unchanged'}${opts.dryRun ? ' (dry run)' : ''}`);
      } catch (err) {
        if (err instanceof ClientError) throw new CliError(`${source}: ${label}: ${err.message}`);
        throw err;
      }
    }
  } finally {
    await client.close();
  }
}
