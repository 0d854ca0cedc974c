// Command-line checks shared by the benchmarks: a bad flag prints why and the usage, exit 2.

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
  return { fail, positiveNumber, list };
}
