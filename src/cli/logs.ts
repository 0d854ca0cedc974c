// `k8s4ai logs TASK`: a Task's output (stdout and stderr of its process), as `kubectl logs`
// prints a pod's. The API server fetches it from the agent of the Task's node; -f keeps
// streaming until the process ends or Ctrl-C.
import { once } from 'node:events';
import { Task } from '../api/kinds/task.ts';
import { ClientError } from '../client/client.ts';
import { resolveKind } from './resources.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { CliError } from './errors.ts';

export interface LogsOptions extends GlobalOptions {
  namespace?: string;
  follow?: boolean;
  previous?: boolean;
  /** Lines from the end to show; "-1" (the default) shows everything. */
  tail?: string;
}

/** Writes the log of `target` (a Task name, or task/NAME) to `out` as it arrives. */
export async function logs(target: string, opts: LogsOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const name = taskName(target);
  const tailLines = parseTail(opts.tail);
  const client = clientFor(opts);
  const ac = new AbortController();
  const stop = () => ac.abort();
  // Ctrl-C, or a reader that went away (`| head`), ends the stream; neither is an error.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  out.on('error', stop);
  try {
    const ns = opts.namespace ?? client.namespace;
    const body = await client.stream(client.path(Task, ns, name, 'log'), {
      query: { follow: opts.follow ? 'true' : undefined, previous: opts.previous ? 'true' : undefined, tailLines },
      accept: 'text/plain',
      signal: ac.signal,
    });
    for await (const chunk of body) {
      if (!out.write(chunk as Buffer)) await once(out, 'drain', { signal: ac.signal });
    }
  } catch (err) {
    if (ac.signal.aborted) return;
    if (err instanceof ClientError) throw new CliError(`Error from server (${err.reason}): ${err.message}`);
    throw new CliError(`error: the log stream of task "${name}" broke off: ${(err as Error).message}`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    out.off('error', stop);
    await client.close();
  }
}

function taskName(target: string): string {
  const slash = target.indexOf('/');
  if (slash < 0) return target;
  const def = resolveKind(target.slice(0, slash));
  if (def.kind !== Task.kind || def.group !== Task.group) throw new CliError(`logs are kept for tasks only, not ${def.plural} (try \`k8s4ai get tasks\`)`);
  const name = target.slice(slash + 1);
  if (!name || name.includes('/')) throw new CliError(`"${target}" is not task/NAME`);
  return name;
}

function parseTail(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < -1) throw new CliError(`--tail must be a number of lines, or -1 for all, not "${raw}"`);
  return n === -1 ? undefined : n;
}
