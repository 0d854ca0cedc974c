// Command-line checks shared by the benchmarks: a bad flag prints why and the usage, exit 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function argHelpers(usage: string) {
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n\n${usage}`);
    process.exit(2);
  };
  const positiveNumber = (name: string, raw: string, integer = true): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not "${raw}"`);
    return n;
  };
  const list = <T extends string>(name: string, raw: string, allowed?: readonly T[]): T[] => {
    const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
    if (items.length === 0) fail(`--${name} is empty`);
    if (allowed) for (const i of items) if (!allowed.includes(i as T)) fail(`--${name}: unknown "${i}" (use ${allowed.join(', ')})`);
    return [...new Set(items)] as T[];
  };
  /** Strict flag parsing with -h/--help; undefined when help was printed. */
  const parse = <const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) => {
    const config = { args, strict: true as const, options: { ...options, help: { type: 'boolean' as const, short: 'h' } } };
    let values: ReturnType<typeof parseArgs<typeof config>>['values'];
    try {
      values = parseArgs(config).values;
    } catch (err) {
      return fail((err as Error).message);
    }
    if ((values as { help?: boolean }).help) {
      process.stdout.write(usage);
      return undefined;
    }
    return values;
  };
  return { fail, positiveNumber, list, parse };
}
