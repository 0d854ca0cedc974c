import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatFieldSelector,
  formatLabelSelector,
  labelKeyError,
  labelSelectorFromObject,
  labelValueError,
  matchesExpressions,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
  type FieldRequirement,
  type LabelRequirement,
} from '../src/api/selector.ts';

const RUNS = { numRuns: 300 };

/** Asserts `fn` throws a SelectorError whose message matches `message`. */
function assertSelectorError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SelectorError, `expected a SelectorError, got ${String(err)}`);
    assert.equal(err.code, 'K8S4AI_INVALID_SELECTOR');
    assert.match(err.message, message);
    return true;
  });
}

const req = (key: string, operator: LabelRequirement['operator'], values: string[] = []): LabelRequirement => ({
  key,
  operator,
  values,
});

describe('parseLabelSelector', () => {
  const cases: [string, LabelRequirement[]][] = [
    ['', []],
    ['   ', []],
    ['a=b', [req('a', 'In', ['b'])]],
    ['a==b', [req('a', 'In', ['b'])]],
    ['a!=b', [req('a', 'NotIn', ['b'])]],
    ['a in (x,y)', [req('a', 'In', ['x', 'y'])]],
    ['a notin (y, x, y)', [req('a', 'NotIn', ['x', 'y'])]],
    ['a', [req('a', 'Exists')]],
    ['!a', [req('a', 'DoesNotExist')]],
    ['! a', [req('a', 'DoesNotExist')]],
    ['a=', [req('a', 'In', [''])]],
    ['a in ()', [req('a', 'In', [''])]], // apimachinery reads "()" as the empty value
    ['a in (,b,)', [req('a', 'In', ['', 'b'])]],
    ['in=notin', [req('in', 'In', ['notin'])]], // keywords only count as operators
    ['a in (in,notin)', [req('a', 'In', ['in', 'notin'])]],
    [
      '  tier in ( web ,api ) ,  app==x,!canary , example.com/gpu',
      [req('app', 'In', ['x']), req('canary', 'DoesNotExist'), req('example.com/gpu', 'Exists'), req('tier', 'In', ['api', 'web'])],
    ],
    ['b=1,a=2,b!=3', [req('a', 'In', ['2']), req('b', 'In', ['1']), req('b', 'NotIn', ['3'])]],
    ['app.kubernetes.io/name=web-1.x_y', [req('app.kubernetes.io/name', 'In', ['web-1.x_y'])]],
  ];
  for (const [text, expected] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => assert.deepEqual(parseLabelSelector(text), expected));
  }

  const rejections: [string, RegExp][] = [
    ['a in (b', /"a in \(b".*missing a closing "\)"/],
    ['=b', /"=b".*expected a label key or "!", found "="/],
    ['a=b c', /"a=b c".*after "a=b", found "c"/],
    [`${'k'.repeat(64)}=v`, /label key name "k{64}" is 64 characters; at most 63/],
    [`k=${'v'.repeat(64)}`, /label value "v{64}" is 64 characters/],
    ['a$=b', /label key name "a\$" must consist of/],
    ['a=b$', /label value "b\$" must be empty or consist of/],
    ['-a=b', /label key name "-a"/],
    ['a/b/c=d', /label key "a\/b\/c" has more than one "\/"/],
    ['Example.com/a=b', /label key prefix "Example\.com" must be a lowercase DNS subdomain/],
    ['/a=b', /label key "\/a" has an empty prefix/],
    ['a/=b', /label key "a\/" has an empty name/],
    ['a=b,', /expected a requirement after ",", found the end/],
    [',a=b', /expected a label key or "!", found ","/],
    ['a in b', /expected "\(" after "a in", found "b"/],
    ['a in (b c)', /expected "," or "\)" after "b"/],
    ['a>1', /operator ">" after "a" is not supported/],
    ['!a=b', /after "!a", found "="/],
    ['a=(b)', /expected a value after "a=", found "\("/],
    ['a b', /expected an operator .* after "a", found "b"/],
    ['!', /expected a label key after "!", found the end/],
  ];
  for (const [text, message] of rejections) {
    it(`rejects ${JSON.stringify(text)}`, () => assertSelectorError(() => parseLabelSelector(text), message));
  }
});

describe('matchesLabels', () => {
  const labels = { app: 'web', tier: 'frontend', empty: '' };
  const cases: [string, Record<string, string> | undefined, boolean][] = [
    ['', labels, true],
    ['', undefined, true],
    ['app=web', labels, true],
    ['app=api', labels, false],
    ['app!=api', labels, true],
    ['app!=web', labels, false],
    ['missing!=x', labels, true], // != matches objects without the key
    ['missing notin (x,y)', labels, true], // so does notin
    ['missing in (x,y)', labels, false],
    ['missing=x', labels, false],
    ['missing', labels, false],
    ['!missing', labels, true],
    ['!app', labels, false],
    ['app', labels, true],
    ['empty=', labels, true],
    ['empty', labels, true],
    ['missing=', labels, false], // the empty value is not absence
    ['tier in (frontend,backend),app=web', labels, true],
    ['tier in (frontend,backend),app=api', labels, false],
    ['tier notin (frontend)', labels, false],
    ['app!=x', undefined, true],
    ['app', undefined, false],
    ['constructor', {}, false], // no prototype keys leak in
  ];
  for (const [selector, set, expected] of cases) {
    it(`${JSON.stringify(selector)} on ${JSON.stringify(set)} is ${expected}`, () =>
      assert.equal(matchesLabels(parseLabelSelector(selector), set), expected));
  }
});

describe('formatLabelSelector', () => {
  it('writes the canonical form', () => {
    assert.equal(
      formatLabelSelector([
        req('b', 'NotIn', ['y', 'x']),
        req('a', 'In', ['v']),
        req('c', 'Exists'),
        req('d', 'DoesNotExist'),
        req('e', 'In', ['2', '1', '2']),
        req('f', 'NotIn', ['z']),
        req('g', 'In', ['']),
      ]),
      'a=v,b notin (x,y),c,!d,e in (1,2),f!=z,g=',
    );
    assert.equal(formatLabelSelector([]), '');
  });

  it('refuses requirements that could not be parsed back', () => {
    assertSelectorError(() => formatLabelSelector([req('a', 'In', [])]), /requirements\[0\]\.values: must be non-empty/);
    assertSelectorError(() => formatLabelSelector([req('a', 'Exists', ['x'])]), /requirements\[0\]\.values: must be empty/);
    assertSelectorError(() => formatLabelSelector([req('a', 'In', ['ok']), req('a b', 'Exists')]), /requirements\[1\]\.key/);
    assertSelectorError(() => formatLabelSelector([req('a', 'In', ['x,y'])]), /requirements\[0\]\.values\[0\]/);
  });
});

describe('labelSelectorFromObject', () => {
  it('combines matchLabels and matchExpressions', () => {
    assert.deepEqual(
      labelSelectorFromObject({
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['b', 'a'] },
          { key: 'canary', operator: 'DoesNotExist' },
          { key: 'zone', operator: 'Exists', values: [] },
          { key: 'arch', operator: 'NotIn', values: ['arm'] },
        ],
      }),
      [req('app', 'In', ['web']), req('arch', 'NotIn', ['arm']), req('canary', 'DoesNotExist'), req('tier', 'In', ['a', 'b']), req('zone', 'Exists')],
    );
    assert.deepEqual(labelSelectorFromObject({}), []);
  });

  it('names the offending path', () => {
    assertSelectorError(
      () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'In' }] }),
      /^matchExpressions\[1\]\.values: must be non-empty when operator is In$/,
    );
    assertSelectorError(
      () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }),
      /^matchExpressions\[0\]\.values: must be empty when operator is Exists$/,
    );
    assertSelectorError(
      () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] }),
      /^matchExpressions\[0\]\.operator: "Equals" is not a valid operator/,
    );
    assertSelectorError(
      () => labelSelectorFromObject({ matchExpressions: [{ key: 'a b', operator: 'Exists' }] }),
      /^matchExpressions\[0\]\.key: label key name "a b"/,
    );
    assertSelectorError(
      () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', 'not ok'] }] }),
      /^matchExpressions\[0\]\.values\[1\]: label value "not ok"/,
    );
    assertSelectorError(() => labelSelectorFromObject({ matchLabels: { 'a/b/c': 'x' } }), /^matchLabels\["a\/b\/c"\]: label key/);
    assertSelectorError(() => labelSelectorFromObject({ matchLabels: { a: 'x y' } }), /^matchLabels\["a"\]: label value "x y"/);
    assertSelectorError(
      () => labelSelectorFromObject({ matchExpressions: 'nope' } as unknown as Parameters<typeof labelSelectorFromObject>[0]),
      /^matchExpressions must be a list/,
    );
  });
});

describe('label key and value validation', () => {
  it('accepts and rejects like Kubernetes', () => {
    for (const key of ['a', 'A1', 'a.b-c_d', 'example.com/a', 'a-b.example.com/X_1', `${'p'.repeat(253)}/n`, 'k'.repeat(63)]) {
      assert.equal(labelKeyError(key), null, key);
    }
    for (const key of ['', 'a_', '_a', 'a b', 'k'.repeat(64), 'EX.com/a', 'a..b/c', `${'p'.repeat(254)}/n`, 'a/b/c', 'a/']) {
      assert.notEqual(labelKeyError(key), null, key);
    }
    for (const value of ['', 'a', 'a.b', 'v'.repeat(63)]) assert.equal(labelValueError(value), null, value);
    for (const value of ['-a', 'a/b', 'v'.repeat(64), ' ']) assert.notEqual(labelValueError(value), null, value);
  });
});

describe('field selectors', () => {
  it('parses operators, empty values and escapes', () => {
    assert.deepEqual(parseFieldSelector('metadata.name=web,spec.nodeName!=,status.phase==Running'), [
      { field: 'metadata.name', operator: '=', value: 'web' },
      { field: 'spec.nodeName', operator: '!=', value: '' },
      { field: 'status.phase', operator: '=', value: 'Running' },
    ]);
    assert.deepEqual(parseFieldSelector(String.raw`involvedObject.uid=a\,b\=c\\d`), [
      { field: 'involvedObject.uid', operator: '=', value: String.raw`a,b=c\d` },
    ]);
    assert.deepEqual(parseFieldSelector(''), []);
    assert.deepEqual(parseFieldSelector('a=b,,c=d,'), [
      { field: 'a', operator: '=', value: 'b' },
      { field: 'c', operator: '=', value: 'd' },
    ]);
    // Field names lose surrounding whitespace; values keep theirs, as in Kubernetes.
    assert.deepEqual(parseFieldSelector(' a = b'), [{ field: 'a', operator: '=', value: ' b' }]);
  });

  it('names the bad part of a rejected selector', () => {
    assertSelectorError(() => parseFieldSelector('a==b=c'), /the value of "a": "b=c" has an unescaped "="/);
    assertSelectorError(() => parseFieldSelector(String.raw`a=b\x`), /"\\x" in "b\\x" is not a valid escape/);
    assertSelectorError(() => parseFieldSelector('a=b\\'), /ends with a lone "\\"/);
    assertSelectorError(() => parseFieldSelector('metadata.name'), /"metadata\.name" has no operator/);
    assertSelectorError(() => parseFieldSelector('=b'), /"=b" has no field name/);
    assertSelectorError(() => parseFieldSelector('a..b=c'), /field "a\.\.b" must be a dotted path/);
    assertSelectorError(() => parseFieldSelector('a=b,c'), /"c" has no operator/);
  });

  it('matches with missing fields reading as the empty string', () => {
    const fields: Record<string, string> = { 'metadata.name': 'web', 'spec.nodeName': 'n1' };
    const lookup = (field: string) => fields[field];
    const matches = (selector: string) => matchesFields(parseFieldSelector(selector), lookup);
    assert.equal(matches('metadata.name=web'), true);
    assert.equal(matches('metadata.name!=web'), false);
    assert.equal(matches('metadata.name=web,spec.nodeName=n2'), false);
    assert.equal(matches('status.phase='), true);
    assert.equal(matches('status.phase!='), false);
    assert.equal(matches('status.phase!=Running'), true);
    assert.equal(matches(''), true);
  });

  it('formats values with escapes that parse back', () => {
    const reqs: FieldRequirement[] = [{ field: 'a.b', operator: '!=', value: String.raw`x,=\y` }];
    assert.equal(formatFieldSelector(reqs), String.raw`a.b!=x\,\=\\y`);
    assert.deepEqual(parseFieldSelector(formatFieldSelector(reqs)), reqs);
  });
});

describe('matchesExpressions', () => {
  const attrs = { 'gpu.memory': '80Gi', 'gpu.count': 8, nvlink: true, arch: 'x86_64', 'mem.bytes': '85899345920', label: 'big' };

  it('compares quantities exactly for Gt and Lt', () => {
    const check = (key: string, operator: 'Gt' | 'Lt', value: string) => matchesExpressions([{ key, operator, values: [value] }], attrs);
    assert.equal(check('gpu.memory', 'Gt', '79Gi'), true);
    assert.equal(check('gpu.memory', 'Gt', '80Gi'), false); // strict
    assert.equal(check('gpu.memory', 'Lt', '80Gi'), false);
    assert.equal(check('gpu.memory', 'Gt', '85899345919'), true);
    assert.equal(check('mem.bytes', 'Lt', '81Gi'), true);
    assert.equal(check('mem.bytes', 'Gt', '80G'), true); // 80Gi > 80G
    assert.equal(check('gpu.count', 'Gt', '7'), true);
    assert.equal(check('gpu.count', 'Lt', '8'), false);
    assert.equal(check('gpu.count', 'Lt', '8.5'), true);
    assert.equal(check('missing', 'Gt', '0'), false);
    assert.equal(check('missing', 'Lt', '0'), false);
    assert.equal(check('label', 'Gt', '0'), false); // not a number
    assert.equal(check('nvlink', 'Gt', '0'), false); // booleans are not numbers
  });

  it('matches In/NotIn as strings, booleans as "true"/"false"', () => {
    assert.equal(matchesExpressions([{ key: 'nvlink', operator: 'In', values: ['true'] }], attrs), true);
    assert.equal(matchesExpressions([{ key: 'nvlink', operator: 'NotIn', values: ['false'] }], attrs), true);
    assert.equal(matchesExpressions([{ key: 'gpu.count', operator: 'In', values: ['8'] }], attrs), true);
    assert.equal(matchesExpressions([{ key: 'arch', operator: 'In', values: ['arm64', 'x86_64'] }], attrs), true);
    assert.equal(matchesExpressions([{ key: 'missing', operator: 'NotIn', values: ['x'] }], attrs), true);
    assert.equal(matchesExpressions([{ key: 'missing', operator: 'In', values: ['x'] }], attrs), false);
    assert.equal(matchesExpressions([{ key: 'arch', operator: 'Exists' }], attrs), true);
    assert.equal(matchesExpressions([{ key: 'missing', operator: 'DoesNotExist' }], attrs), true);
    assert.equal(
      matchesExpressions(
        [
          { key: 'arch', operator: 'Exists' },
          { key: 'gpu.memory', operator: 'Gt', values: ['100Gi'] },
        ],
        attrs,
      ),
      false,
    );
    assert.equal(matchesExpressions([], attrs), true);
  });

  it('throws on malformed expressions, naming the index', () => {
    assertSelectorError(() => matchesExpressions([{ key: 'a', operator: 'Gt', values: ['1', '2'] }], attrs), /^\[0\]\.values: must have exactly one value/);
    assertSelectorError(() => matchesExpressions([{ key: 'a', operator: 'Lt', values: ['big'] }], attrs), /^\[0\]\.values\[0\]: "big" is not a number or quantity/);
    assertSelectorError(
      () => matchesExpressions([{ key: 'a', operator: 'Exists' }, { key: 'a', operator: 'In', values: [] }], attrs),
      /^\[1\]\.values: must be non-empty/,
    );
    assertSelectorError(
      () => matchesExpressions([{ key: 'a', operator: 'Ge' as 'Gt', values: ['1'] }], attrs),
      /^\[0\]\.operator: "Ge" is not a valid operator/,
    );
  });
});

// ---------------------------------------------------------------------------------------
// Properties

/** Few keys and values, so random requirements and label sets overlap often. */
const keyArb = fc.constantFrom('a', 'b', 'app', 'example.com/gpu', 'k8s4ai.io/tier', 'x_y.z-1');
const valueArb = fc.constantFrom('', 'v', 'w', '1', 'A.b-c_d', 'in', 'notin');

const requirementArb: fc.Arbitrary<LabelRequirement> = fc.oneof(
  fc.record({ key: keyArb, operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.array(valueArb, { minLength: 1, maxLength: 4 }) }),
  fc.record({ key: keyArb, operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const), values: fc.constant([] as string[]) }),
);
const requirementsArb = fc.array(requirementArb, { maxLength: 6 });
const labelsArb = fc.dictionary(keyArb, valueArb, { maxKeys: 6 });

/** The canonical form the parser promises: sorted by key (stable), values sorted and unique. */
function canonical(reqs: LabelRequirement[]): LabelRequirement[] {
  return reqs
    .map((r) => ({ key: r.key, operator: r.operator, values: [...new Set(r.values)].sort() }))
    .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

/** Kubernetes' label semantics, spelled out independently of the module. */
function referenceMatches(reqs: LabelRequirement[], labels: Record<string, string>): boolean {
  for (const { key, operator, values } of reqs) {
    const value = key in labels ? labels[key] : undefined;
    const ok =
      operator === 'Exists' ? value !== undefined
      : operator === 'DoesNotExist' ? value === undefined
      : operator === 'In' ? value !== undefined && values.some((v) => v === value)
      : value === undefined || values.every((v) => v !== value);
    if (!ok) return false;
  }
  return true;
}

/** Whitespace of every kind the selector syntax tolerates between tokens. */
function sprinkleWhitespace(text: string, seed: number): string {
  const spaces = ['', ' ', '  ', '\t'];
  return text.replace(/([=!(),]+|in |notin )/g, (token, _m, offset: number) => {
    const pad = spaces[(seed + offset) % spaces.length]!;
    return `${pad}${token}${pad}`;
  });
}

describe('selector properties', () => {
  it('parse(format(reqs)) is the canonical form of reqs, and format is a fixed point', () => {
    fc.assert(
      fc.property(requirementsArb, (reqs) => {
        const text = formatLabelSelector(reqs);
        const parsed = parseLabelSelector(text);
        assert.deepEqual(parsed, canonical(reqs));
        assert.equal(formatLabelSelector(parsed), text);
      }),
      RUNS,
    );
  });

  it('extra whitespace between tokens does not change the meaning', () => {
    fc.assert(
      fc.property(requirementsArb, fc.nat(), (reqs, seed) => {
        const text = formatLabelSelector(reqs);
        assert.deepEqual(parseLabelSelector(sprinkleWhitespace(text, seed)), parseLabelSelector(text));
      }),
      RUNS,
    );
  });

  it('matching agrees with a reference model', () => {
    fc.assert(
      fc.property(requirementsArb, labelsArb, (reqs, labels) => {
        const expected = referenceMatches(reqs, labels);
        assert.equal(matchesLabels(reqs, labels), expected);
        assert.equal(matchesLabels(parseLabelSelector(formatLabelSelector(reqs)), labels), expected);
      }),
      RUNS,
    );
  });

  it('any string either parses to a selector that round-trips or throws a SelectorError', () => {
    const selectorish = fc.string({ unit: fc.constantFrom(...'ab=!(),/ .-_'.split(''), 'in', 'notin'), maxLength: 12 });
    fc.assert(
      fc.property(selectorish, (text) => {
        let reqs: LabelRequirement[];
        try {
          reqs = parseLabelSelector(text);
        } catch (err) {
          assert.ok(err instanceof SelectorError, String(err));
          assert.ok(err.message.startsWith(`invalid label selector ${JSON.stringify(text)}: `), err.message);
          return;
        }
        assert.deepEqual(parseLabelSelector(formatLabelSelector(reqs)), reqs);
      }),
      { numRuns: 1000 },
    );
  });

  it('labelSelectorFromObject agrees with the string form', () => {
    fc.assert(
      fc.property(requirementsArb, (reqs) => {
        const fromObject = labelSelectorFromObject({ matchExpressions: reqs.map((r) => ({ ...r })) });
        assert.deepEqual(fromObject, parseLabelSelector(formatLabelSelector(reqs)));
      }),
      RUNS,
    );
  });

  it('field selectors round-trip through format and parse, whatever the value', () => {
    const fieldArb = fc.constantFrom('metadata.name', 'spec.nodeName', 'involvedObject.uid', 'type');
    const fieldValueArb = fc.string({ unit: fc.constantFrom(...'ab =!,\\.-'.split('')), maxLength: 8 });
    const fieldReqArb = fc
      .record({ field: fieldArb, operator: fc.constantFrom('=' as const, '!=' as const), value: fieldValueArb })
      .map((r): FieldRequirement => ({ ...r }));
    fc.assert(
      fc.property(fc.array(fieldReqArb, { maxLength: 4 }), (reqs) => {
        assert.deepEqual(parseFieldSelector(formatFieldSelector(reqs)), reqs);
      }),
      RUNS,
    );
  });

  it('Gt and Lt order quantities like numbers, whatever their spelling', () => {
    const spellings = (bytes: bigint) => [bytes.toString(), `${bytes / 1024n}Ki`, `${bytes}e0`];
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 40n }), fc.bigInt({ min: 0n, max: 2n ** 40n }), (x, y) => {
        const [a, b] = [x * 1024n, y * 1024n];
        for (const attr of spellings(a)) {
          for (const bound of spellings(b)) {
            assert.equal(matchesExpressions([{ key: 'm', operator: 'Gt', values: [bound] }], { m: attr }), a > b);
            assert.equal(matchesExpressions([{ key: 'm', operator: 'Lt', values: [bound] }], { m: attr }), a < b);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});
