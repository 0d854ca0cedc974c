// Resolving what a user types (`gang`, `gangschedulinggroups`, `GangSchedulingGroup`,
// `nodes.k8s4ai.io`, `ns`) to a kind, as kubectl does with discovery.
import type { KindDefinition } from '../api/kind.ts';
import { ALL_KINDS } from '../api/kinds/index.ts';
import { CliError } from './errors.ts';

export function resolveKind(input: string): KindDefinition {
  const lower = input.toLowerCase();
  const [name, ...groupParts] = lower.split('.');
  const group = groupParts.join('.');
  const candidates = ALL_KINDS.filter((k) => !group || k.group === group || (group === 'k8s4ai' && k.group === 'k8s4ai.io'));
  const found = candidates.find(
    (k) => k.plural === name || k.singular === name || k.kind.toLowerCase() === name || k.shortNames.includes(name!),
  );
  if (!found) {
    const known = ALL_KINDS.map((k) => k.plural).join(', ');
    throw new CliError(`the server doesn't have a resource type "${input}" (known: ${known})`);
  }
  return found;
}

export function kindByApiVersion(apiVersion: unknown, kind: unknown): KindDefinition | undefined {
  return ALL_KINDS.find((k) => (k.group ? `${k.group}/${k.version}` : k.version) === apiVersion && k.kind === kind);
}

/** `kind/name` or `kind name…` arguments into (kind, names). */
export function parseTargets(args: string[]): { def: KindDefinition; names: string[] }[] {
  if (args.length === 0) throw new CliError('you must specify the type of resource, e.g. `k8s4ai get nodes`');
  if (args[0]!.includes('/')) {
    return args.map((a) => {
      const [kind, name] = a.split('/');
      if (!kind || !name) throw new CliError(`"${a}" is not kind/name`);
      return { def: resolveKind(kind), names: [name] };
    });
  }
  return args[0]!.split(',').map((kind) => ({ def: resolveKind(kind), names: args.slice(1) }));
}
