// Kubernetes resource quantities ("500m", "80Gi", "1e3"), with the semantics of
// k8s.io/apimachinery/pkg/api/resource.
//
// A parsed quantity is an exact bigint count of nano-units: "1" is 1_000_000_000n and
// "500m" is 500_000_000n. Nano is the finest scale Kubernetes keeps, so every valid
// quantity is representable, arithmetic is exact, and two spellings of one amount
// ("1.5Gi", "1536Mi") compare equal as plain bigints.
//
// Grammar (from apimachinery's quantity.go):
//   quantity ::= [sign] number [suffix]
//   number   ::= digits | digits "." [digits] | "." digits
//   suffix   ::= binarySI | decimalSI | ("e" | "E") [sign] digits
//   binarySI ::= Ki | Mi | Gi | Ti | Pi | Ei
//   decimalSI::= n | u | m | k | M | G | T | P | E
//
// One deliberate narrowing: an exponent may have at most three significant digits
// (|e| <= 999, leading zeros allowed). Kubernetes accepts any int32 exponent, but
// 1e2000000000 cannot be held exactly and no resource needs it; QUANTITY_PATTERN
// encodes the same limit, so schema validation and parsing always agree.

/** Nano-units in one base unit (one core, one byte, one GPU). */
export const NANO_PER_UNIT = 1_000_000_000n;

export type QuantityFormat = 'DecimalSI' | 'BinarySI';

export class QuantityError extends Error {
  readonly code = 'K8S4AI_INVALID_QUANTITY';
  constructor(
    /** The rejected input, as given. */
    readonly input: unknown,
    /** Why it was rejected, without the input (the message carries both). */
    readonly reason: string,
  ) {
    super(`${describeInput(input)} is not a quantity: ${reason}`);
    this.name = 'QuantityError';
  }
}

/** Power of ten of each decimal SI suffix. */
const DECIMAL_SUFFIXES: ReadonlyMap<string, number> = new Map([
  ['n', -9], ['u', -6], ['m', -3], ['', 0], ['k', 3], ['M', 6], ['G', 9], ['T', 12], ['P', 15], ['E', 18],
]);

/** Power of two of each binary SI suffix. */
const BINARY_SUFFIXES: ReadonlyMap<string, number> = new Map([
  ['Ki', 10], ['Mi', 20], ['Gi', 30], ['Ti', 40], ['Pi', 50], ['Ei', 60],
]);

/** Binary suffixes by power of 1024, for formatting. */
const BINARY_SUFFIX_BY_POWER = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** Largest exponent magnitude accepted after "e"/"E" (see the header comment). */
const MAX_EXPONENT_DIGITS = 3;

const SUFFIX_HINT = 'use n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e3';

/**
 * JSON-Schema (ECMA-262) regex that accepts exactly the strings parseQuantity accepts.
 * Written out from the grammar above; the property tests hold the two together.
 */
export const QUANTITY_PATTERN =
  '^[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?0*[0-9]{1,3})?$';

/** The pieces of a syntactically valid quantity string. */
interface ScannedQuantity {
  negative: boolean;
  /** All mantissa digits, integer part then fraction, without the point. */
  digits: string;
  /** How many of `digits` come after the decimal point. */
  fractionDigits: number;
  /** The multiplier the suffix stands for. */
  scale: { base: 10 | 2; exponent: number };
}

/**
 * Parses a quantity into nano-units. Numbers are accepted because YAML gives `cpu: 8` or
 * `gpu: 1.5`; they are read through their shortest decimal spelling, so 0.1 means
 * exactly one tenth. Amounts finer than a nano-unit round away from zero, as Kubernetes
 * does ("if you ask for some resource, you get some").
 */
export function parseQuantity(input: string | number): bigint {
  if (typeof input === 'number') return parseQuantityNumber(input);
  if (typeof input !== 'string') {
    throw new QuantityError(input, `expected a string or a number, got ${typeof input}`);
  }
  const scanned = scanQuantity(input);
  const magnitude = toNano(scanned);
  return scanned.negative ? -magnitude : magnitude;
}

/** True when `input` is a string or finite number that parseQuantity accepts. */
export function isQuantity(input: unknown): boolean {
  if (typeof input !== 'string' && typeof input !== 'number') return false;
  try {
    parseQuantity(input);
    return true;
  } catch (err) {
    if (err instanceof QuantityError) return false;
    throw err;
  }
}

/**
 * The canonical Kubernetes spelling of an amount: the largest suffix that keeps the
 * mantissa an integer. BinarySI is used only for whole amounts of at least 1024 (as
 * apimachinery does); anything else is written DecimalSI. The output always parses
 * back to exactly `nano`.
 */
export function formatQuantity(nano: bigint, format: QuantityFormat = 'DecimalSI'): string {
  if (nano === 0n) return '0';
  if (format === 'BinarySI') {
    const binary = formatBinarySI(nano);
    if (binary !== undefined) return binary;
  }
  return formatDecimalSI(nano);
}

export function addQuantity(a: bigint, b: bigint): bigint {
  return a + b;
}

export function subQuantity(a: bigint, b: bigint): bigint {
  return a - b;
}

export function compareQuantity(a: bigint, b: bigint): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The amount in base units (cores, bytes) as a float. Goes through the exact decimal
 * string so the result is the correctly rounded double (no double rounding).
 */
export function quantityToNumber(nano: bigint): number {
  const magnitude = nano < 0n ? -nano : nano;
  const whole = magnitude / NANO_PER_UNIT;
  const fraction = (magnitude % NANO_PER_UNIT).toString().padStart(9, '0');
  return Number(`${nano < 0n ? '-' : ''}${whole}.${fraction}`);
}

/** Nano-units of a number of base units (e.g. 1.5 -> 1.5 cores). Throws for NaN/Infinity. */
export function quantityFromNumber(n: number): bigint {
  return parseQuantityNumber(n);
}

/** Milli-units, rounded away from zero (Kubernetes' MilliValue), for milliCPU/milliGPU. */
export function toMilli(nano: bigint): bigint {
  return divideAwayFromZero(nano, 1_000_000n);
}

/** Whole base units (bytes), rounded away from zero (Kubernetes' Value). */
export function toBytes(nano: bigint): bigint {
  return divideAwayFromZero(nano, NANO_PER_UNIT);
}

// ---------------------------------------------------------------------------------------
// Parsing

function parseQuantityNumber(n: number): bigint {
  if (!Number.isFinite(n)) throw new QuantityError(n, 'numbers must be finite');
  // String() gives the shortest round-tripping decimal, possibly with an exponent
  // ("1e+21", "5e-324"), both of which the grammar accepts with |exponent| <= 999.
  const text = String(n);
  const scanned = scanQuantity(text);
  const magnitude = toNano(scanned);
  return scanned.negative ? -magnitude : magnitude;
}

/** Splits a quantity string into sign, mantissa and suffix, or explains why it is not one. */
function scanQuantity(input: string): ScannedQuantity {
  const fail = (reason: string): never => {
    throw new QuantityError(input, reason);
  };
  if (input === '') fail('it is empty');
  if (/\s/.test(input)) fail('it contains whitespace (write "1Gi", not "1 Gi")');

  let pos = 0;
  let negative = false;
  if (input[pos] === '+' || input[pos] === '-') {
    negative = input[pos] === '-';
    pos++;
    if (input[pos] === '+' || input[pos] === '-') fail('it has more than one sign');
  }

  const integerPart = readDigits(input, pos);
  pos += integerPart.length;
  let fractionPart = '';
  let hasPoint = false;
  if (input[pos] === '.') {
    hasPoint = true;
    pos++;
    fractionPart = readDigits(input, pos);
    pos += fractionPart.length;
  }

  if (integerPart === '' && fractionPart === '') {
    const rest = input.slice(pos);
    if (hasPoint) fail('a decimal point needs a digit on at least one side');
    if (rest === '') fail('it has a sign but no number');
    if (DECIMAL_SUFFIXES.has(rest) || BINARY_SUFFIXES.has(rest)) {
      fail(`the suffix "${rest}" has no number before it (e.g. "1${rest}")`);
    }
    fail('it must start with a number, like 1, 0.5, -2 or 1.5Gi');
  }
  if (input[pos] === '.') fail('it has more than one decimal point');

  const scale = interpretSuffix(input.slice(pos), fail);
  return { negative, digits: integerPart + fractionPart, fractionDigits: fractionPart.length, scale };
}

function readDigits(text: string, from: number): string {
  let end = from;
  while (end < text.length && text[end]! >= '0' && text[end]! <= '9') end++;
  return text.slice(from, end);
}

function interpretSuffix(suffix: string, fail: (reason: string) => never): ScannedQuantity['scale'] {
  const decimal = DECIMAL_SUFFIXES.get(suffix);
  if (decimal !== undefined) return { base: 10, exponent: decimal };
  const binary = BINARY_SUFFIXES.get(suffix);
  if (binary !== undefined) return { base: 2, exponent: binary };
  if (suffix[0] === 'e' || suffix[0] === 'E') return { base: 10, exponent: parseExponent(suffix, fail) };
  return fail(`unknown suffix "${suffix}" (${SUFFIX_HINT})`);
}

/** Reads "e3", "E-6", "e+003"; the suffix starts with e or E. */
function parseExponent(suffix: string, fail: (reason: string) => never): number {
  const text = suffix.slice(1);
  const match = /^([+-]?)([0-9]+)$/.exec(text);
  if (!match) {
    if (/^[+-]?[0-9]*\.[0-9]*$/.test(text) && /[0-9]/.test(text)) {
      return fail(`the exponent in "${suffix}" must be a whole number`);
    }
    if (/^[+-]?$/.test(text)) return fail(`the exponent "${suffix}" has no digits (e.g. "e3")`);
    return fail(`unknown suffix "${suffix}" (${SUFFIX_HINT})`);
  }
  const significant = match[2]!.replace(/^0+(?=.)/, '');
  if (significant.length > MAX_EXPONENT_DIGITS) {
    return fail(`the exponent in "${suffix}" is out of range (at most 999 either way)`);
  }
  const magnitude = Number(significant);
  return match[1] === '-' ? -magnitude : magnitude;
}

/** The unsigned nano-unit amount of a scanned quantity, rounded away from zero. */
function toNano(q: ScannedQuantity): bigint {
  const mantissa = q.digits === '' ? 0n : BigInt(q.digits);
  if (q.scale.base === 2) {
    // mantissa * 2^exponent base units, with the fraction's 10^-fractionDigits.
    const numerator = (mantissa << BigInt(q.scale.exponent)) * NANO_PER_UNIT;
    return divideAwayFromZero(numerator, 10n ** BigInt(q.fractionDigits));
  }
  // mantissa * 10^(exponent - fractionDigits) base units = 10^(... + 9) nano-units.
  const shift = q.scale.exponent - q.fractionDigits + 9;
  return shift >= 0 ? mantissa * 10n ** BigInt(shift) : divideAwayFromZero(mantissa, 10n ** BigInt(-shift));
}

/** Integer division that rounds any remainder away from zero (inf.RoundUp). */
function divideAwayFromZero(n: bigint, d: bigint): bigint {
  const quotient = n / d;
  if (n % d === 0n) return quotient;
  return n < 0n ? quotient - 1n : quotient + 1n;
}

// ---------------------------------------------------------------------------------------
// Formatting

/** "80Gi" for whole amounts of at least 1024 units; undefined where DecimalSI applies. */
function formatBinarySI(nano: bigint): string | undefined {
  if (nano % NANO_PER_UNIT !== 0n) return undefined; // fractions are shown exactly, in DecimalSI
  let units = nano / NANO_PER_UNIT;
  // Below 1024 a binary suffix never applies, and apimachinery switches to DecimalSI.
  if (units > -1024n && units < 1024n) return undefined;
  let power = 0;
  while (power < BINARY_SUFFIX_BY_POWER.length - 1 && units % 1024n === 0n) {
    units /= 1024n;
    power++;
  }
  return `${units}${BINARY_SUFFIX_BY_POWER[power]}`;
}

/** "500m", "1k", "1500": the largest power-of-1000 suffix with an integer mantissa. */
function formatDecimalSI(nano: bigint): string {
  const sign = nano < 0n ? '-' : '';
  let mantissa = nano < 0n ? -nano : nano;
  let exponent = -9; // nano-units
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exponent++;
  }
  // SI suffixes step by 10^3, so give back the powers of ten that do not make a step.
  const remainder = ((exponent % 3) + 3) % 3;
  mantissa *= 10n ** BigInt(remainder);
  exponent -= remainder;
  // Beyond exa there is no suffix; keep "E" with a larger mantissa rather than an exponent.
  if (exponent > 18) {
    mantissa *= 10n ** BigInt(exponent - 18);
    exponent = 18;
  }
  return `${sign}${mantissa}${decimalSuffixFor(exponent)}`;
}

function decimalSuffixFor(exponent: number): string {
  for (const [suffix, power] of DECIMAL_SUFFIXES) if (power === exponent) return suffix;
  throw new Error(`no decimal SI suffix for 10^${exponent}`); // unreachable: exponent is -9..18, a multiple of 3
}

function describeInput(input: unknown): string {
  if (typeof input === 'string') return JSON.stringify(input);
  if (typeof input === 'number' || typeof input === 'bigint') return String(input);
  return `(${typeof input})`;
}
