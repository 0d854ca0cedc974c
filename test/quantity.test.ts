import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addQuantity,
  compareQuantity,
  formatQuantity,
  isQuantity,
  NANO_PER_UNIT,
  parseQuantity,
  QUANTITY_PATTERN,
  QuantityError,
  quantityFromNumber,
  quantityToNumber,
  subQuantity,
  toBytes,
  toMilli,
} from '../src/api/quantity.ts';

const NANO = NANO_PER_UNIT;
const GI = 1024n ** 3n;
const RUNS = { numRuns: 300 };

/** Nano-units of a whole number of base units. */
const units = (n: bigint): bigint => n * NANO;

describe('parseQuantity: values Kubernetes gives', () => {
  const cases: [string, bigint][] = [
    ['100m', 100_000_000n],
    ['0.1', 100_000_000n],
    ['1e3', units(1000n)],
    ['1E3', units(1000n)],
    ['1k', units(1000n)],
    ['1Ki', units(1024n)],
    ['1.5Gi', units(1536n * 1024n * 1024n)],
    ['80Gi', units(85899345920n)],
    ['-2', units(-2n)],
    ['5n', 5n],
    ['1u', 1000n],
    ['1', NANO],
    ['0', 0n],
    ['-0', 0n],
    ['+1', NANO],
    ['.5', 500_000_000n],
    ['1.', NANO],
    ['+.5', 500_000_000n],
    ['1M', units(1_000_000n)],
    ['1G', units(1_000_000_000n)],
    ['2T', units(2_000_000_000_000n)],
    ['1P', units(10n ** 15n)],
    ['1E', units(10n ** 18n)], // "E" alone is exa, not an exponent
    ['1Ei', units(2n ** 60n)],
    ['1e-3', 1_000_000n],
    ['1e+3', units(1000n)],
    ['1e003', units(1000n)],
    ['12e-9', 12n],
    ['0.000000001', 1n],
  ];
  for (const [text, nano] of cases) {
    it(`"${text}" is ${nano} nano-units`, () => assert.equal(parseQuantity(text), nano));
  }

  it('rounds amounts finer than a nano-unit away from zero, as Kubernetes does', () => {
    assert.equal(parseQuantity('0.1n'), 1n);
    assert.equal(parseQuantity('1.5n'), 2n);
    assert.equal(parseQuantity('-1.5n'), -2n);
    assert.equal(parseQuantity('1e-999'), 1n);
    assert.equal(parseQuantity('0e-999'), 0n);
    assert.equal(parseQuantity('0.5Ki'), 512_000_000_000n);
    assert.equal(parseQuantity('0.000000000001Ki'), 2n); // 1.024e-9 rounds up to 2n
  });

  it('accepts YAML numbers through their decimal spelling', () => {
    assert.equal(parseQuantity(8), units(8n));
    assert.equal(parseQuantity(1.5), 1_500_000_000n);
    assert.equal(parseQuantity(0.1), 100_000_000n);
    assert.equal(parseQuantity(-2), units(-2n));
    assert.equal(parseQuantity(1e21), units(10n ** 21n));
    assert.equal(parseQuantity(5e-324), 1n);
  });
});

describe('parseQuantity: rejections explain themselves', () => {
  const rejections: [string, RegExp][] = [
    ['', /"" is not a quantity: it is empty/],
    ['1.2.3', /"1\.2\.3" is not a quantity: .*more than one decimal point/],
    ['12XB', /"12XB" is not a quantity: unknown suffix "XB"/],
    ['Gi', /"Gi" is not a quantity: the suffix "Gi" has no number/],
    ['1 Gi', /"1 Gi" is not a quantity: .*whitespace/],
    ['--1', /"--1" is not a quantity: .*more than one sign/],
    ['abc', /"abc" is not a quantity: .*must start with a number/],
    ['1K', /unknown suffix "K"/],
    ['1e', /exponent "e" has no digits/],
    ['1e1.5', /exponent in "e1\.5" must be a whole number/],
    ['1e1000', /exponent in "e1000" is out of range/],
    ['.', /decimal point needs a digit/],
    ['+', /sign but no number/],
    [' 1', /whitespace/],
    ['1Ee3', /unknown suffix "Ee3"/],
  ];
  for (const [text, message] of rejections) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseQuantity(text),
        (err: unknown) =>
          err instanceof QuantityError && err.code === 'K8S4AI_INVALID_QUANTITY' && message.test(err.message),
      );
      assert.equal(isQuantity(text), false);
    });
  }

  it('rejects non-finite numbers and non-strings', () => {
    assert.throws(() => parseQuantity(Number.NaN), /NaN is not a quantity: numbers must be finite/);
    assert.throws(() => parseQuantity(Infinity), QuantityError);
    assert.equal(isQuantity(Infinity), false);
    assert.equal(isQuantity(null), false);
    assert.equal(isQuantity({}), false);
    assert.equal(isQuantity(3), true);
    assert.equal(isQuantity('3Gi'), true);
  });
});

describe('formatQuantity', () => {
  const cases: [bigint, 'DecimalSI' | 'BinarySI', string][] = [
    [units(85899345920n), 'BinarySI', '80Gi'],
    [units(1536n * 1024n * 1024n), 'BinarySI', '1536Mi'],
    [parseQuantity('1.5Gi'), 'BinarySI', '1536Mi'],
    [500_000_000n, 'DecimalSI', '500m'],
    [units(1000n), 'DecimalSI', '1k'],
    [units(1500n), 'DecimalSI', '1500'],
    [units(1024n), 'DecimalSI', '1024'],
    [0n, 'DecimalSI', '0'],
    [0n, 'BinarySI', '0'],
    [5n, 'DecimalSI', '5n'],
    [1000n, 'DecimalSI', '1u'],
    [10_000n, 'DecimalSI', '10u'],
    [units(-2n), 'DecimalSI', '-2'],
    [units(-2048n), 'BinarySI', '-2Ki'],
    [units(512n), 'BinarySI', '512'], // below 1024 apimachinery writes DecimalSI
    [units(1000n), 'BinarySI', '1k'],
    [units(1500n), 'BinarySI', '1500'], // whole and >= 1024 but no binary factor
    [500_000_000n, 'BinarySI', '500m'], // not whole: no exact binary form
    [units(2048n) + 1n, 'BinarySI', '2048000000001n'],
    [units(2n ** 70n), 'BinarySI', '1024Ei'], // no suffix beyond Ei
    [units(10n ** 21n), 'DecimalSI', '1000E'], // no suffix beyond E
  ];
  for (const [nano, format, text] of cases) {
    it(`${format} ${nano} is "${text}"`, () => assert.equal(formatQuantity(nano, format), text));
  }

  it('defaults to DecimalSI', () => assert.equal(formatQuantity(units(GI)), '1073741824'));
});

describe('conversions', () => {
  it('quantityToNumber gives base units as a float', () => {
    assert.equal(quantityToNumber(parseQuantity('1.5Gi')), 1610612736);
    assert.equal(quantityToNumber(parseQuantity('100m')), 0.1);
    assert.equal(quantityToNumber(parseQuantity('-2.5')), -2.5);
    assert.equal(quantityToNumber(1n), 1e-9);
  });

  it('quantityFromNumber reads a number of base units', () => {
    assert.equal(quantityFromNumber(1.5), 1_500_000_000n);
    assert.equal(quantityFromNumber(0), 0n);
    assert.throws(() => quantityFromNumber(Number.NaN), QuantityError);
  });

  it('toMilli and toBytes round away from zero', () => {
    assert.equal(toMilli(parseQuantity('100m')), 100n);
    assert.equal(toMilli(parseQuantity('2')), 2000n);
    assert.equal(toMilli(1n), 1n);
    assert.equal(toMilli(-1n), -1n);
    assert.equal(toMilli(1_000_001n), 2n);
    assert.equal(toBytes(parseQuantity('80Gi')), 85899345920n);
    assert.equal(toBytes(parseQuantity('0.5')), 1n);
    assert.equal(toBytes(parseQuantity('-1.5')), -2n);
  });

  it('arithmetic is exact across spellings', () => {
    assert.equal(compareQuantity(parseQuantity('1.5Gi'), parseQuantity('1536Mi')), 0);
    assert.equal(formatQuantity(addQuantity(parseQuantity('1Gi'), parseQuantity('512Mi')), 'BinarySI'), '1536Mi');
    assert.equal(formatQuantity(subQuantity(parseQuantity('1'), parseQuantity('100m'))), '900m');
    assert.equal(compareQuantity(parseQuantity('999m'), parseQuantity('1')), -1);
    assert.equal(compareQuantity(parseQuantity('1k'), parseQuantity('1000')), 0);
    assert.equal(compareQuantity(parseQuantity('1Ki'), parseQuantity('1k')), 1);
  });
});

// ---------------------------------------------------------------------------------------
// Properties

/** Amounts of every shape: tiny fractions, plain integers, and whole binary multiples. */
const anyAmount: fc.Arbitrary<bigint> = fc.oneof(
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
  fc.bigInt({ min: -1_000_000n, max: 1_000_000n }),
  fc
    .tuple(fc.bigInt({ min: -5000n, max: 5000n }), fc.integer({ min: 0, max: 7 }))
    .map(([m, k]) => units(m * 1024n ** BigInt(k))),
  fc.tuple(fc.bigInt({ min: -5000n, max: 5000n }), fc.integer({ min: 0, max: 27 })).map(([m, k]) => m * 10n ** BigInt(k)),
);

const digits = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });

/** Strings built from the grammar, so the properties see many valid quantities. */
const quantityString: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('', '+', '-'),
    fc.oneof(
      digits(1, 6),
      fc.tuple(digits(1, 4), digits(0, 4)).map(([i, f]) => `${i}.${f}`),
      digits(1, 6).map((f) => `.${f}`),
    ),
    fc.oneof(
      fc.constantFrom('', 'n', 'u', 'm', 'k', 'M', 'G', 'T', 'P', 'E', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'),
      fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 3)).map((p) => p.join('')),
    ),
  )
  .map((p) => p.join(''));

describe('properties', () => {
  for (const format of ['DecimalSI', 'BinarySI'] as const) {
    it(`${format}: parse(format(q)) === q`, () => {
      fc.assert(
        fc.property(anyAmount, (q) => parseQuantity(formatQuantity(q, format)) === q),
        RUNS,
      );
    });

    it(`${format}: formatting is canonical (equal amounts, one spelling)`, () => {
      fc.assert(
        fc.property(quantityString, (text) => {
          const once = formatQuantity(parseQuantity(text), format);
          assert.equal(formatQuantity(parseQuantity(once), format), once);
          assert.ok(new RegExp(QUANTITY_PATTERN).test(once), once);
        }),
        RUNS,
      );
    });
  }

  it('the canonical mantissa is an integer with the largest suffix possible', () => {
    fc.assert(
      fc.property(anyAmount, (q) => {
        const text = formatQuantity(q, 'DecimalSI');
        const match = /^-?(\d+)([numkMGTPE]?)$/.exec(text);
        assert.ok(match, text);
        // A mantissa divisible by 1000 could have taken a larger suffix (unless at E).
        if (q !== 0n && match[2] !== 'E') assert.notEqual(BigInt(match[1]!) % 1000n, 0n, text);
      }),
      RUNS,
    );
  });

  it('add is commutative and associative, and sub inverts add', () => {
    fc.assert(
      fc.property(anyAmount, anyAmount, anyAmount, (a, b, c) => {
        assert.equal(addQuantity(a, b), addQuantity(b, a));
        assert.equal(addQuantity(addQuantity(a, b), c), addQuantity(a, addQuantity(b, c)));
        assert.equal(subQuantity(addQuantity(a, b), b), a);
      }),
      RUNS,
    );
  });

  it('compare agrees with the sign of sub', () => {
    fc.assert(
      fc.property(anyAmount, anyAmount, (a, b) => {
        const difference = subQuantity(a, b);
        const sign = difference > 0n ? 1 : difference < 0n ? -1 : 0;
        assert.equal(compareQuantity(a, b), sign);
        assert.equal(compareQuantity(b, a), sign === 0 ? 0 : -sign); // not -0: strict equal tells 0 from -0
      }),
      RUNS,
    );
  });

  it('a decimal suffix means the same as its exponent', () => {
    const powers: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
    fc.assert(
      fc.property(quantityString, fc.constantFrom(...Object.keys(powers)), (text, suffix) => {
        const mantissa = text.replace(/([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)$/, '');
        assert.equal(parseQuantity(mantissa + suffix), parseQuantity(`${mantissa}e${powers[suffix]}`));
      }),
      RUNS,
    );
  });

  it('QUANTITY_PATTERN accepts exactly what parseQuantity accepts', () => {
    const pattern = new RegExp(QUANTITY_PATTERN);
    const quantityish = fc.string({ unit: fc.constantFrom(...'0123456789+-.eEiKkMGTPnumXB '), maxLength: 8 });
    // Exponents around the three-significant-digit limit, with and without leading zeros.
    const longExponent = fc
      .tuple(digits(1, 2), fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.constantFrom('', '0', '00'), digits(1, 5))
      .map((p) => p.join(''));
    fc.assert(
      fc.property(fc.oneof(quantityish, quantityString, longExponent), (text) => {
        assert.equal(pattern.test(text), isQuantity(text), JSON.stringify(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('every rejection is a QuantityError naming the input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 10 }), (text) => {
        try {
          parseQuantity(text);
        } catch (err) {
          assert.ok(err instanceof QuantityError);
          assert.ok(err.message.startsWith(`${JSON.stringify(text)} is not a quantity: `));
        }
      }),
      RUNS,
    );
  });

  it('numbers convert both ways', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (n) => {
        assert.equal(quantityFromNumber(n), BigInt(n) * NANO);
        assert.equal(quantityToNumber(quantityFromNumber(n)), n);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.double({ min: -1e12, max: 1e12, noNaN: true }), (x) => {
        const back = quantityToNumber(quantityFromNumber(x));
        assert.ok(Math.abs(back - x) <= 1e-9 + Math.abs(x) * 1e-15, `${x} -> ${back}`);
      }),
      RUNS,
    );
  });

  it('toMilli and toBytes are the smallest whole amounts not below |q|', () => {
    fc.assert(
      fc.property(anyAmount, (q) => {
        for (const [convert, step] of [[toMilli, 1_000_000n], [toBytes, NANO]] as const) {
          const whole = convert(q);
          const magnitude = q < 0n ? -q : q;
          const wholeMagnitude = whole < 0n ? -whole : whole;
          assert.ok(wholeMagnitude * step >= magnitude);
          assert.ok((wholeMagnitude - 1n) * step < magnitude || magnitude === 0n);
          assert.ok(whole === 0n || (whole < 0n) === (q < 0n));
        }
      }),
      RUNS,
    );
  });
});
