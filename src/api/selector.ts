// Label and field selectors with the syntax and semantics of
// k8s.io/apimachinery/pkg/labels and k8s.io/apimachinery/pkg/fields, plus the
// node-affinity style expression matching the scheduler uses for capabilities.

import { compareQuantity, parseQuantity, quantityFromNumber, QuantityError } from './quantity.ts';

export class SelectorError extends Error {
  readonly code = 'K8S4AI_INVALID_SELECTOR';
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

// =======================================================================================
// Label keys and values

const LABEL_NAME_MAX = 63;
const DNS_SUBDOMAIN_MAX = 253;
const LABEL_NAME_RE = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const NAME_CHARSET = "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";

/**
 * Why `key` is not a valid label key (Kubernetes' IsQualifiedName), or null if it is.
 * A key is an optional DNS-subdomain prefix and "/", then a name of at most 63 characters.
 */
export function labelKeyError(key: string): string | null {
  const parts = key.split('/');
  if (parts.length > 2) return `label key "${key}" has more than one "/"`;
  const name = parts[parts.length - 1]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') return `label key "${key}" has an empty prefix before "/"`;
    if (prefix.length > DNS_SUBDOMAIN_MAX || !DNS_SUBDOMAIN_RE.test(prefix)) {
      return `label key prefix "${prefix}" must be a lowercase DNS subdomain (a-z, 0-9, '-' and '.', at most ${DNS_SUBDOMAIN_MAX} characters)`;
    }
  }
  if (name === '') return key === '' ? 'label key is empty' : `label key "${key}" has an empty name`;
  if (name.length > LABEL_NAME_MAX) {
    return `label key name "${name}" is ${name.length} characters; at most ${LABEL_NAME_MAX} are allowed`;
  }
  if (!LABEL_NAME_RE.test(name)) return `label key name "${name}" must consist of ${NAME_CHARSET}`;
  return null;
}

/** Why `value` is not a valid label value, or null if it is. The empty value is valid. */
export function labelValueError(value: string): string | null {
  if (value === '') return null;
  if (value.length > LABEL_NAME_MAX) {
    return `label value "${value}" is ${value.length} characters; at most ${LABEL_NAME_MAX} are allowed`;
  }
  if (!LABEL_NAME_RE.test(value)) return `label value "${value}" must be empty or consist of ${NAME_CHARSET}`;
  return null;
}

// =======================================================================================
// Label selectors

export type LabelOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** One requirement; `=`/`==` become In with one value and `!=` becomes NotIn with one. */
export type LabelRequirement = { key: string; operator: LabelOperator; values: string[] };

const LABEL_OPERATORS: readonly LabelOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/**
 * Parses a label selector string ("app=web,tier in (a,b),!canary"). The empty string
 * selects everything. As in Kubernetes, the result is sorted by key (stably) and each
 * value list is sorted and de-duplicated, so equal selectors parse to equal lists.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  return canonicalRequirements(new LabelSelectorParser(selector).parse());
}

/** True when `labels` satisfies every requirement (an empty list matches everything). */
export function matchesLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  return reqs.every((req) => matchesRequirement(req, labels ?? {}));
}

/**
 * The canonical string form: requirements sorted by key, "k=v" / "k!=v" for single
 * values, "k in (a,b)" / "k notin (a,b)" otherwise. It parses back to the same (canonical)
 * requirements. Throws SelectorError for a requirement that could not have been parsed.
 */
export function formatLabelSelector(reqs: LabelRequirement[]): string {
  return canonicalRequirements(reqs.map((req, i) => checkRequirement(req, `requirements[${i}]`)))
    .map(formatRequirement)
    .join(',');
}

export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/**
 * Requirements of a metav1.LabelSelector ({matchLabels, matchExpressions}). Validates it
 * as the API server does; errors name the offending path, e.g. `matchExpressions[1].values`.
 */
export function labelSelectorFromObject(sel: LabelSelectorObject): LabelRequirement[] {
  if (!isPlainObject(sel)) throw new SelectorError('label selector must be an object');
  const reqs: LabelRequirement[] = [];
  if (sel.matchLabels !== undefined) {
    if (!isPlainObject(sel.matchLabels)) throw new SelectorError('matchLabels must be an object of strings');
    for (const [key, value] of Object.entries(sel.matchLabels)) {
      const path = `matchLabels[${JSON.stringify(key)}]`;
      if (typeof value !== 'string') throw new SelectorError(`${path}: value must be a string`);
      const problem = labelKeyError(key) ?? labelValueError(value);
      if (problem) throw new SelectorError(`${path}: ${problem}`);
      reqs.push({ key, operator: 'In', values: [value] });
    }
  }
  if (sel.matchExpressions !== undefined) {
    if (!Array.isArray(sel.matchExpressions)) throw new SelectorError('matchExpressions must be a list');
    sel.matchExpressions.forEach((expr, i) => reqs.push(requirementFromExpression(expr, `matchExpressions[${i}]`)));
  }
  return canonicalRequirements(reqs);
}

function requirementFromExpression(expr: unknown, path: string): LabelRequirement {
  if (!isPlainObject(expr)) throw new SelectorError(`${path} must be an object`);
  const { key, operator, values } = expr as Record<string, unknown>;
  if (typeof key !== 'string') throw new SelectorError(`${path}.key must be a string`);
  if (typeof operator !== 'string' || !(LABEL_OPERATORS as readonly string[]).includes(operator)) {
    throw new SelectorError(
      `${path}.operator: ${JSON.stringify(operator)} is not a valid operator (In, NotIn, Exists or DoesNotExist)`,
    );
  }
  const list = readValueList(values, `${path}.values`);
  return checkRequirement({ key, operator: operator as LabelOperator, values: list }, path);
}

/** Validates key, operator/value-count agreement and values; returns the requirement. */
function checkRequirement(req: LabelRequirement, path: string): LabelRequirement {
  const keyProblem = labelKeyError(req.key);
  if (keyProblem) throw new SelectorError(`${path}.key: ${keyProblem}`);
  if (!(LABEL_OPERATORS as readonly string[]).includes(req.operator)) {
    throw new SelectorError(`${path}.operator: ${JSON.stringify(req.operator)} is not a valid operator`);
  }
  checkValueCount(req.operator, req.values, `${path}.values`);
  req.values.forEach((value, j) => {
    const valueProblem = labelValueError(value);
    if (valueProblem) throw new SelectorError(`${path}.values[${j}]: ${valueProblem}`);
  });
  return req;
}

/** In/NotIn need values; Exists/DoesNotExist take none (apimachinery's validation). */
function checkValueCount(operator: string, values: readonly string[], path: string): void {
  if ((operator === 'In' || operator === 'NotIn') && values.length === 0) {
    throw new SelectorError(`${path}: must be non-empty when operator is ${operator}`);
  }
  if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) {
    throw new SelectorError(`${path}: must be empty when operator is ${operator}`);
  }
}

function readValueList(values: unknown, path: string): string[] {
  if (values === undefined || values === null) return [];
  if (!Array.isArray(values)) throw new SelectorError(`${path} must be a list of strings`);
  values.forEach((value, j) => {
    if (typeof value !== 'string') throw new SelectorError(`${path}[${j}] must be a string`);
  });
  return [...(values as string[])];
}

function matchesRequirement(req: LabelRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, req.key);
  switch (req.operator) {
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'In':
      return has && req.values.includes(labels[req.key]!);
    case 'NotIn':
      // Kubernetes: an object without the key is "not in" any set.
      return !has || !req.values.includes(labels[req.key]!);
  }
}

/** Sorted by key (stable), each value list sorted and de-duplicated; inputs untouched. */
function canonicalRequirements(reqs: LabelRequirement[]): LabelRequirement[] {
  return reqs
    .map((req) => ({ key: req.key, operator: req.operator, values: [...new Set(req.values)].sort(compareStrings) }))
    .sort((a, b) => compareStrings(a.key, b.key));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatRequirement(req: LabelRequirement): string {
  switch (req.operator) {
    case 'Exists':
      return req.key;
    case 'DoesNotExist':
      return `!${req.key}`;
    case 'In':
      return req.values.length === 1 ? `${req.key}=${req.values[0]}` : `${req.key} in (${req.values.join(',')})`;
    case 'NotIn':
      return req.values.length === 1 ? `${req.key}!=${req.values[0]}` : `${req.key} notin (${req.values.join(',')})`;
  }
}

// ---------------------------------------------------------------------------------------
// The label selector string parser: a tokenizer like apimachinery's lexer, then a
// recursive-descent parser over the tokens.

type TokenKind = 'identifier' | '!' | '=' | '==' | '!=' | '(' | ')' | ',' | '<' | '>' | 'end';

interface Token {
  kind: TokenKind;
  text: string;
}

/** Longest first, so "!=" and "==" win over "!" and "=". */
const SYMBOLS: readonly TokenKind[] = ['!=', '==', '!', '=', '(', ')', ',', '<', '>'];
const SYMBOL_START = new Set('!=(),<>');

/** Splits a label selector into tokens; whitespace only separates. */
function tokenizeLabelSelector(selector: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < selector.length) {
    const ch = selector[pos]!;
    if (/\s/.test(ch)) {
      pos++;
      continue;
    }
    if (SYMBOL_START.has(ch)) {
      const symbol = SYMBOLS.find((s) => selector.startsWith(s, pos))!;
      tokens.push({ kind: symbol, text: symbol });
      pos += symbol.length;
      continue;
    }
    // An identifier runs to the next whitespace or symbol; keys and values are
    // validated afterwards so the error can say what is wrong with the whole word.
    let end = pos;
    while (end < selector.length && !SYMBOL_START.has(selector[end]!) && !/\s/.test(selector[end]!)) end++;
    tokens.push({ kind: 'identifier', text: selector.slice(pos, end) });
    pos = end;
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

class LabelSelectorParser {
  private readonly tokens: Token[];
  private pos = 0;

  constructor(private readonly selector: string) {
    this.tokens = tokenizeLabelSelector(selector);
  }

  parse(): LabelRequirement[] {
    const reqs: LabelRequirement[] = [];
    if (this.peek().kind === 'end') return reqs;
    for (;;) {
      reqs.push(this.parseRequirement());
      const separator = this.next();
      if (separator.kind === 'end') return reqs;
      if (separator.kind !== ',') {
        this.fail(`expected "," or the end after "${formatRequirement(reqs[reqs.length - 1]!)}", found ${describe(separator)}`);
      }
      const following = this.peek();
      if (following.kind !== 'identifier' && following.kind !== '!') {
        this.fail(`expected a requirement after ",", found ${describe(following)}`);
      }
    }
  }

  private parseRequirement(): LabelRequirement {
    const first = this.next();
    if (first.kind === '!') {
      return { key: this.parseKey(`a label key after "!"`), operator: 'DoesNotExist', values: [] };
    }
    if (first.kind !== 'identifier') this.fail(`expected a label key or "!", found ${describe(first)}`);
    const key = this.checkKey(first.text);
    const op = this.peek();
    switch (op.kind) {
      case ',':
      case 'end':
        return { key, operator: 'Exists', values: [] };
      case '=':
      case '==':
        this.next();
        return { key, operator: 'In', values: [this.parseExactValue(key, op.text)] };
      case '!=':
        this.next();
        return { key, operator: 'NotIn', values: [this.parseExactValue(key, op.text)] };
      case '<':
      case '>':
        return this.fail(`operator "${op.text}" after "${key}" is not supported (use =, ==, !=, in or notin)`);
      case 'identifier':
        if (op.text === 'in' || op.text === 'notin') {
          this.next();
          return { key, operator: op.text === 'in' ? 'In' : 'NotIn', values: this.parseValueSet(key, op.text) };
        }
        break;
    }
    return this.fail(`expected an operator (=, ==, !=, in, notin), "," or the end after "${key}", found ${describe(op)}`);
  }

  private parseKey(what: string): string {
    const token = this.next();
    if (token.kind !== 'identifier') this.fail(`expected ${what}, found ${describe(token)}`);
    return this.checkKey(token.text);
  }

  /** The value after "=", "==" or "!="; nothing there means the empty value, as in Kubernetes. */
  private parseExactValue(key: string, op: string): string {
    const token = this.peek();
    if (token.kind === ',' || token.kind === 'end') return '';
    this.next();
    if (token.kind !== 'identifier') this.fail(`expected a value after "${key}${op}", found ${describe(token)}`);
    return this.checkValue(token.text);
  }

  /**
   * "(a,b,c)". An empty slot is the empty value, so "()" and "(a,)" contain "" exactly as
   * apimachinery's parser reads them.
   */
  private parseValueSet(key: string, op: string): string[] {
    const open = this.next();
    if (open.kind !== '(') this.fail(`expected "(" after "${key} ${op}", found ${describe(open)}`);
    const values: string[] = [];
    let slot: string | undefined;
    for (;;) {
      const token = this.next();
      if (token.kind === 'identifier') {
        if (slot !== undefined) this.fail(`expected "," or ")" after "${slot}" in the values of "${key}", found ${describe(token)}`);
        slot = this.checkValue(token.text);
      } else if (token.kind === ',' || token.kind === ')') {
        values.push(slot ?? '');
        slot = undefined;
        if (token.kind === ')') return values;
      } else if (token.kind === 'end') {
        this.fail(`the values of "${key} ${op}" are missing a closing ")"`);
      } else {
        this.fail(`expected a value, "," or ")" in the values of "${key}", found ${describe(token)}`);
      }
    }
  }

  private checkKey(key: string): string {
    const problem = labelKeyError(key);
    if (problem) this.fail(problem);
    return key;
  }

  private checkValue(value: string): string {
    const problem = labelValueError(value);
    if (problem) this.fail(problem);
    return value;
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    const token = this.tokens[this.pos]!;
    if (token.kind !== 'end') this.pos++;
    return token;
  }

  private fail(reason: string): never {
    throw new SelectorError(`invalid label selector ${JSON.stringify(this.selector)}: ${reason}`);
  }
}

function describe(token: Token): string {
  return token.kind === 'end' ? 'the end of the selector' : `"${token.text}"`;
}

// =======================================================================================
// Field selectors

export type FieldRequirement = { field: string; operator: '=' | '!='; value: string };

/** A dotted path: "metadata.name", "spec.nodeName", "involvedObject.uid". */
const FIELD_PATH_RE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

/**
 * Parses "metadata.name=web,status.phase!=Failed". As in Kubernetes: terms split on
 * unescaped commas, empty terms are skipped, the first "!=", "==" or "=" splits a term,
 * and values are taken verbatim except for the escapes \, \= and \\ (an unescaped "," or
 * "=" in a value is an error). Field names may be surrounded by whitespace, which is
 * dropped since a field name cannot contain it; values keep theirs, as Kubernetes does.
 */
export function parseFieldSelector(selector: string): FieldRequirement[] {
  const fail = (reason: string): never => {
    throw new SelectorError(`invalid field selector ${JSON.stringify(selector)}: ${reason}`);
  };
  const reqs: FieldRequirement[] = [];
  for (const term of splitOnUnescapedCommas(selector)) {
    if (term === '') continue;
    const split = splitFieldTerm(term);
    if (!split) return fail(`"${term}" has no operator (=, == or !=)`);
    const field = split.lhs.trim();
    if (field === '') fail(`"${term}" has no field name before "${split.op}"`);
    if (!FIELD_PATH_RE.test(field)) {
      fail(`field "${field}" must be a dotted path of letters, digits, '_' and '-', like metadata.name`);
    }
    const value = unescapeFieldValue(split.rhs, (reason) => fail(`the value of "${field}": ${reason}`));
    reqs.push({ field, operator: split.op === '!=' ? '!=' : '=', value });
  }
  return reqs;
}

/** The string form, escaping "\", "," and "=" in values; parseFieldSelector reads it back. */
export function formatFieldSelector(reqs: FieldRequirement[]): string {
  return reqs.map((req) => `${req.field}${req.operator}${escapeFieldValue(req.value)}`).join(',');
}

/** True when every requirement holds; a missing field reads as "", as in Kubernetes. */
export function matchesFields(reqs: FieldRequirement[], lookup: (field: string) => string | undefined): boolean {
  return reqs.every((req) => {
    const actual = lookup(req.field) ?? '';
    return req.operator === '=' ? actual === req.value : actual !== req.value;
  });
}

/** apimachinery's splitTerms: a backslash protects the next character from splitting. */
function splitOnUnescapedCommas(selector: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let escaped = false;
  for (let i = 0; i < selector.length; i++) {
    const ch = selector[i];
    if (escaped) escaped = false;
    else if (ch === '\\') escaped = true;
    else if (ch === ',') {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

/** apimachinery's splitTerm: the first position where "!=", "==" or "=" begins. */
function splitFieldTerm(term: string): { lhs: string; op: '!=' | '==' | '='; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '=='] as const) {
      if (term.startsWith(op, i)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + 2) };
    }
    if (term[i] === '=') return { lhs: term.slice(0, i), op: '=', rhs: term.slice(i + 1) };
  }
  return undefined;
}

function unescapeFieldValue(raw: string, fail: (reason: string) => never): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '\\') {
      const escaped = raw[i + 1];
      if (escaped === undefined) fail(`"${raw}" ends with a lone "\\"`);
      if (escaped !== '\\' && escaped !== ',' && escaped !== '=') {
        fail(`"\\${escaped}" in "${raw}" is not a valid escape (only "\\\\", "\\," and "\\=" are)`);
      }
      out += escaped;
      i++;
    } else if (ch === '=' || ch === ',') {
      fail(`"${raw}" has an unescaped "${ch}" (write "\\${ch}")`);
    } else {
      out += ch;
    }
  }
  return out;
}

function escapeFieldValue(value: string): string {
  return value.replace(/[\\,=]/g, (ch) => `\\${ch}`);
}

// =======================================================================================
// Capability expressions (node-affinity style)

export type ExpressionOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';

export interface MatchExpression {
  key: string;
  operator: ExpressionOperator;
  values?: string[];
}

const EXPRESSION_OPERATORS: readonly ExpressionOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'];

/**
 * True when `attrs` satisfies every expression (an empty list matches; whether an empty
 * node-selector *term* matches nothing is for the caller to decide, as in Kubernetes).
 *
 * In/NotIn compare strings (booleans as "true"/"false", numbers by their decimal form);
 * NotIn and DoesNotExist match a missing attribute. Gt/Lt are strict and compare exact
 * quantities, so "80Gi", "85899345920" and 85899345920 are all the same amount; a missing
 * or non-numeric attribute never satisfies them. A malformed expression (unknown
 * operator, wrong number of values, non-numeric Gt/Lt value) throws SelectorError naming
 * its index, since silently not matching would hide a spec error.
 */
export function matchesExpressions(exprs: MatchExpression[], attrs: Record<string, string | number | boolean>): boolean {
  // Check every expression before matching any, so a malformed one fails on every node
  // rather than only on those where the expressions before it happen to match.
  const checked = exprs.map((expr, i) => checkExpression(expr, `[${i}]`));
  return checked.every((expr) => matchesCheckedExpression(expr, attrs));
}

/** A validated expression; `bound` is the parsed value of a Gt/Lt. */
interface CheckedExpression {
  key: string;
  operator: ExpressionOperator;
  values: string[];
  bound: bigint;
}

function checkExpression(expr: MatchExpression, path: string): CheckedExpression {
  if (!EXPRESSION_OPERATORS.includes(expr.operator)) {
    throw new SelectorError(
      `${path}.operator: ${JSON.stringify(expr.operator)} is not a valid operator (${EXPRESSION_OPERATORS.join(', ')})`,
    );
  }
  const values = readValueList(expr.values, `${path}.values`);
  if (expr.operator === 'Gt' || expr.operator === 'Lt') {
    return { key: expr.key, operator: expr.operator, values, bound: boundOf(expr.operator, values, `${path}.values`) };
  }
  checkValueCount(expr.operator, values, `${path}.values`);
  return { key: expr.key, operator: expr.operator, values, bound: 0n };
}

function matchesCheckedExpression(expr: CheckedExpression, attrs: Record<string, string | number | boolean>): boolean {
  const has = Object.hasOwn(attrs, expr.key);
  const actual = has ? attrs[expr.key] : undefined;
  switch (expr.operator) {
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'In':
      return actual !== undefined && expr.values.includes(String(actual));
    case 'NotIn':
      return actual === undefined || !expr.values.includes(String(actual));
    case 'Gt':
    case 'Lt': {
      const amount = attributeAmount(actual);
      if (amount === undefined) return false;
      return compareQuantity(amount, expr.bound) === (expr.operator === 'Gt' ? 1 : -1);
    }
  }
}

/** The single numeric value a Gt/Lt expression compares against. */
function boundOf(operator: string, values: string[], path: string): bigint {
  if (values.length !== 1) {
    throw new SelectorError(`${path}: must have exactly one value when operator is ${operator}`);
  }
  try {
    return parseQuantity(values[0]!);
  } catch (err) {
    if (err instanceof QuantityError) {
      throw new SelectorError(`${path}[0]: ${JSON.stringify(values[0])} is not a number or quantity (${err.reason})`);
    }
    throw err;
  }
}

/** An attribute as an exact amount, or undefined when it is missing or not numeric. */
function attributeAmount(actual: string | number | boolean | undefined): bigint | undefined {
  try {
    if (typeof actual === 'number') return quantityFromNumber(actual);
    if (typeof actual === 'string') return parseQuantity(actual);
  } catch (err) {
    if (!(err instanceof QuantityError)) throw err;
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
