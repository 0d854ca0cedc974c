// The k8s4ai command line: one file per command, wired here.
import { Command, Option } from 'commander';
import { crdsYaml } from '../api/crd.ts';
import { K8S4AI_VERSION, VERSION_INFO } from '../lib/version.ts';
import { up } from './up.ts';
import { apply } from './apply.ts';
import { get } from './get.ts';
import { describe } from './describe.ts';
import { deleteCommand } from './delete.ts';
import { tokenCreate, kubeconfig } from './token.ts';
import { clientFor } from './context.ts';
import { CliError } from './errors.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function buildProgram(): Command {
  const program = new Command('k8s4ai')
    .description('An orchestration plane for AI and data workloads, with a Kubernetes-compatible API.')
    .version(K8S4AI_VERSION, '--version')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: <data-dir>/kubeconfig)')
    .option('--context <name>', 'kubeconfig context')
    .option('--data-dir <dir>', 'state directory (default: $K8S4AI_HOME or ~/.k8s4ai)')
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  const globals = () => program.opts<{ kubeconfig?: string; context?: string; dataDir?: string }>();

  program
    .command('up')
    .description('run the control plane here: API server, SQLite store, demo fleet, kubeconfig')
    .option('-p, --port <port>', 'port to listen on', '7070')
    .option('--address <addr>', 'address to listen on (TLS with a CA kept in the data dir)', '127.0.0.1')
    .option('--insecure-http', 'serve plain HTTP (loopback addresses only; kubectl then sends no token)')
    .option('--store <url>', 'sqlite:///path.db, etcd://host:port or memory:// (default: SQLite in the data dir)')
    .option('--fleet <file>', 'fleet file to register, "demo" or "none"', 'demo')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--log-file <file>', 'where logs go ("-" for stderr; default <data-dir>/k8s4ai.log)')
    .option('--no-agent', 'run no agent here (Tasks then wait for a `k8s4ai agent`)')
    .option('--node-name <name>', 'the Node this machine registers as (default: its hostname)')
    .option('--node-grace <seconds>', 'seconds without a heartbeat before a node is lost (default 40)')
    .action((o) => up({ ...o, dataDir: globals().dataDir }));

  program
    .command('apply')
    .description('create or update objects from files, folders or stdin')
    .requiredOption('-f, --filename <path>', 'file, folder or - (repeatable)', collect)
    .option('-n, --namespace <ns>', 'namespace for objects that name none')
    .option('--dry-run', 'validate on the server without saving')
    .action((o) => apply({ ...globals(), ...o }));

  program
    .command('get')
    .description('list objects (table), or print them with -o yaml|json|wide|name')
    .argument('<kind-or-kind/name...>')
    .option('-o, --output <format>', 'yaml, json, wide or name')
    .option('-n, --namespace <ns>', 'namespace')
    .option('-A, --all-namespaces', 'every namespace')
    .option('-l, --selector <selector>', 'label selector')
    .option('--field-selector <selector>', 'field selector')
    .option('-w, --watch', 'keep printing changes')
    .action((args: string[], o) => get(args, { ...globals(), ...o }));

  program
    .command('describe')
    .description('show an object in full: spec, status, conditions, events')
    .argument('<kind-or-kind/name...>')
    .option('-n, --namespace <ns>', 'namespace')
    .option('-l, --selector <selector>', 'label selector')
    .action((args: string[], o) => describe(args, { ...globals(), ...o }));

  program
    .command('delete')
    .description('delete objects by name, by -f manifests, or by -l selector')
    .argument('[kind-or-kind/name...]')
    .option('-f, --filename <path>', 'file, folder or - (repeatable)', collect)
    .option('-n, --namespace <ns>', 'namespace')
    .option('-l, --selector <selector>', 'label selector')
    .option('--all', 'every object of the kind')
    .option('--ignore-not-found', 'succeed when the object is absent')
    .addOption(new Option('--cascade <mode>', 'dependents: background, foreground or orphan').choices(['background', 'foreground', 'orphan']).default('background'))
    .action((args: string[], o) => deleteCommand(args, { ...globals(), ...o }));

  program
    .command('logs')
    .description("print a Task's output (its process's stdout and stderr); -f follows it")
    .argument('<task>', 'task name, or task/NAME')
    .option('-n, --namespace <ns>', 'namespace')
    .option('-f, --follow', 'keep streaming output until the process ends (Ctrl-C stops)')
    .option('-p, --previous', "the previous attempt's output")
    .option('--tail <lines>', 'only the last lines (-1: all)', '-1')
    .action(async (task: string, o) => {
      const { logs } = await import('./logs.ts');
      await logs(task, { ...globals(), ...o });
    });

  program
    .command('crds')
    .description('print the CustomResourceDefinitions of every k8s4ai kind (apiextensions.k8s.io/v1)')
    .action(() => {
      process.stdout.write(crdsYaml());
    });

  program
    .command('kubeconfig')
    .description('print the kubeconfig (or one for --token, e.g. a tenant token)')
    .option('--token <token>', 'token to put in it')
    .option('-n, --namespace <ns>', 'default namespace of the context')
    .action((o) => kubeconfig({ ...o, dataDir: globals().dataDir }));

  const token = program.command('token').description('manage API tokens');
  token
    .command('create')
    .description('create a token (printed once; stored hashed)')
    .argument('<user>', 'who the token is for')
    .option('-n, --namespace <ns>', 'namespace the token may use (repeatable)', collect)
    .option('--admin', 'a cluster-wide admin token')
    .action((user: string, o) => tokenCreate(user, { ...o, dataDir: globals().dataDir }));

  program
    .command('agent')
    .description('run the agent of this machine: registers its Node, runs the Tasks bound to it, keeps its heartbeat')
    .option('--node-name <name>', 'the Node to register (default: the hostname)')
    .option('--no-node', 'register no Node of its own (serve simulated nodes only)')
    .option('--topology-domain <name>', 'the leaf or rack TopologyDomain this machine sits in')
    .option('--serve-simulated', 'also serve the simulated fleet nodes (as `up` does; run `up --no-agent` then)')
    .option('--state-dir <dir>', 'process records and logs (default <data-dir>/agent)')
    .option('--address <addr>', 'address of the log endpoint the API server proxies to', '127.0.0.1')
    .option('--port <port>', 'port of the log endpoint (0: any free one)', '0')
    .option('--heartbeat <seconds>', 'seconds between heartbeats', '10')
    .option('--proxy-token-file <file>', 'the secret the API server presents (default <data-dir>/agent-proxy-token)')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--log-file <file>', 'where logs go ("-" for stderr; default <data-dir>/agent.log)')
    .action(async (o) => {
      const { agentCommand } = await import('./agent.ts');
      await agentCommand({ ...globals(), ...o });
    });

  const chaos = program.command('chaos').description('failures on purpose, to watch gangs recover');
  chaos
    .command('kill-node')
    .description('the node\'s agent plays dead: no heartbeats, its processes killed; the node turns NotReady and its gangs move')
    .argument('<node>')
    .action(async (node: string) => (await import('./chaos.ts')).chaosKillNode(node, globals()));
  chaos
    .command('revive-node')
    .description('the agent serves a killed node again')
    .argument('<node>')
    .action(async (node: string) => (await import('./chaos.ts')).chaosReviveNode(node, globals()));
  chaos
    .command('preempt')
    .description('a preemption notice: the gang checkpoints now, stops cleanly and is queued again')
    .argument('<gang>')
    .option('-n, --namespace <ns>', 'namespace')
    .option('--message <text>', 'why (shown in the gang\'s condition)')
    .action(async (gang: string, o) => (await import('./chaos.ts')).chaosPreempt(gang, { ...globals(), ...o }));

  program
    .command('sim')
    .description('replay a workload against a fleet through the scheduler, on a virtual clock')
    .option('--fleet <file>', 'fleet file, "demo" or "small" (default: demo)')
    .option('--nodes <csv>', 'an openb node list instead of a fleet (e.g. openb_node_list_gpu_node.csv)')
    .option('--pods <csv>', 'an openb pod list to replay (arrival: creation_time; run time: deletion_time - scheduled_time)')
    .option('--workload <yaml>', 'manifests with sim.k8s4ai.io/arrival and /duration annotations (repeatable; default examples/sim/workload.yaml)', collect)
    .option('--policy <names>', 'scheduling profile(s), comma-separated, e.g. k8s4ai,spread (default: k8s4ai)')
    .option('--json <file>', 'write the report: allocation and fragmentation over time, every gang\'s wait and span')
    .option('--max-wait <duration>', 'a pending gang gives up after this long (default: its scheduleTimeout, else never)')
    .option('--fail-unplaced', 'a gang that does not fit when it arrives fails for good (no waiting)')
    .option('--samples <n>', 'points on the allocation/fragmentation timeline (0: none)', '200')
    .option('--limit <n>', 'replay only the first n gangs')
    .option('--no-progress', 'no progress bar')
    .action(async (o) => {
      const { sim } = await import('./sim.ts');
      await sim(o);
    });

  program
    .command('engine')
    .description('run a SIMULATED LLM server (OpenAI API, prefix KV cache, vLLM-like timing; no model) for routers, tests and demos')
    .option('--port <port>', 'port to listen on (default: $PORT, else 8000; 0: any free one)')
    .option('--address <addr>', 'address to listen on', '127.0.0.1')
    .option('--model <name>', 'model name to serve (repeatable; default k8s4ai/sim-8b)', collect)
    .option('--block-tokens <n>', 'tokens per prefix-cache block (as the router\'s)', '16')
    .option('--cache-blocks <n>', 'prefix-cache capacity in blocks (LRU beyond it)', '8192')
    .option('--prefill-us-per-token <us>', 'prefill microseconds per uncached prompt token', '100')
    .option('--decode-ms-per-token <ms>', 'decode milliseconds per output token', '30')
    .option('--overhead-ms <ms>', 'fixed milliseconds per request before its prefill', '5')
    .option('--max-batch <n>', 'requests decoding at once (more wait for a slot)', '64')
    .action(async (o) => {
      const { engineCommand } = await import('./engine.ts');
      await engineCommand(o);
    });

  program
    .command('router')
    .description('run a prefix-cache-aware, tenant-isolated OpenAI-compatible router (standalone with --backend, or for a ContentRouter)')
    .option('--content-router <ns/name>', 'take configuration and backends from this ContentRouter and write its status')
    .option('--backend <url>', 'a backend engine, e.g. http://127.0.0.1:8000 (repeatable; standalone)', collect)
    .option('--policy <name>', 'routing policy: k8s4ai, round-robin, least-loaded, sglang, llm-d (default k8s4ai)')
    .option('--load-bound <x>', 'k8s4ai policy: a backend\'s recent work may reach this multiple of the mean before affinity yields (default 1.25)')
    .option('--min-match-ratio <r>', 'k8s4ai policy: below this prefix match, route by load alone (default 0.1)')
    .option('--block-tokens <n>', 'tokens per hashed prefix block (default 64)')
    .option('--tenant <name=sha256:hex>', 'a tenant and the SHA-256 of one of its API keys (repeatable; none: no key needed)', collect)
    .option('--tenants-file <file>', 'YAML list of tenants as in a ContentRouter spec (name, apiKeyHashes, cacheSalt, maxInFlight)')
    .option('--salt-secret <secret>', 'derives the cache salt of tenants that set none (default $K8S4AI_ROUTER_SALT_SECRET; same on every replica)')
    .option('--port <port>', 'port to listen on (default 8080; with --content-router its spec.listen)')
    .option('--address <addr>', 'address to listen on (default 127.0.0.1)')
    .option('--max-body <quantity>', 'largest request body, e.g. 8Mi (default 8Mi)')
    .option('--retries <n>', 'retries on another backend before the first byte (default 1)')
    .option('--max-in-flight-per-backend <n>', 'above this every backend is busy: 429 (default 256)')
    .option('--index-capacity <blocks>', 'prefix blocks remembered per backend (default 100000)')
    .option('--index-source <source>', 'History (routing history) or KVEvents (the engines\' /v1/kv/events)')
    .option('--connect-timeout <duration>', 'backend connect timeout (default 2s)')
    .option('--first-token-timeout <duration>', 'wait for the first response byte (default 60s)')
    .option('--idle-timeout <duration>', 'longest silence within a response (default 30s)')
    .option('--drain-timeout <duration>', 'on SIGTERM, wait this long for requests in flight (default 30s)')
    .option(
      '--workers <n>',
      'processes serving the port (node:cluster), or "auto" for one per CPU (default 1). Each has its own prefix index ' +
        '(with History it learns only its own traffic, so affinity weakens as N grows; KVEvents gives every one the engines\' view), ' +
        'load view and /metrics (a scrape sees the worker that answered it)',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--log-file <file>', 'where logs go ("-" for stderr, the default)')
    .action(async (o) => {
      const { routerCommand } = await import('./router.ts');
      await routerCommand({ ...globals(), ...o });
    });

  program
    .command('bench')
    .description('run a benchmark (api, …): prints a table, writes bench/results/<name>.json')
    .argument('[name]', 'benchmark name')
    .argument('[args...]', 'its options (see --help of each)')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (name: string | undefined, args: string[]) => {
      const { main: bench } = await import('../../bench/run.ts');
      await bench(name ? [name, ...args] : []);
    });

  program
    .command('version')
    .description('print the client and server versions')
    .action(async () => {
      console.log(`Client Version: ${VERSION_INFO.gitVersion}`);
      const client = clientFor(globals());
      try {
        const v = await client.request<{ gitVersion: string }>('GET', '/version');
        console.log(`Server Version: ${v.gitVersion}`);
      } catch (err) {
        console.log(`Server Version: unreachable (${(err as Error).message})`);
      } finally {
        await client.close();
      }
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const message = err instanceof CliError ? err.message : `error: ${(err as Error).message}`;
    process.stderr.write(`${message.split('\n')[0]}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  }
}
