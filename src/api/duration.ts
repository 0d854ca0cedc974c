// Go-style durations ("90s", "1h30m", "250ms"), as Kubernetes APIs write them.

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
const DURATION_RE = /^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;

export class DurationError extends Error {
  readonly code = 'K8S4AI_INVALID_DURATION';
}

/** Seconds in a Go duration string; throws DurationError naming the input otherwise. */
export function parseDuration(input: string): number {
  if (typeof input !== 'string' || !DURATION_RE.test(input)) {
    throw new DurationError(`"${String(input)}" is not a duration: write a number and a unit (ns, us, ms, s, m, h), e.g. 90s, 15m, 1h30m`);
  }
  let seconds = 0;
  for (const m of input.matchAll(PART_RE)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return seconds;
}

export const isDuration = (input: unknown): boolean => typeof input === 'string' && DURATION_RE.test(input);

/** The shortest Go-style form of a number of seconds: 5400 -> "1h30m", 0.25 -> "250ms". */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  let rest = Math.round(seconds);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
