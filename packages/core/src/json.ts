/**
 * Strict JSON parsing and OLPC canonical JSON, as TUF signs it.
 *
 * The parser refuses what JSON.parse lets through and what a signature cannot cover
 * unambiguously: duplicate object keys, numbers that are not safe integers (fractions,
 * exponents, -0), lone surrogates, a byte-order mark, invalid UTF-8 and excessive nesting.
 * It accepts raw control characters inside strings, because canonical JSON writes them raw
 * (a PEM key's newlines): refusing them would make canonical documents unreadable.
 */
import { TufaError } from './errors.js';
import { EMPTY_PROTOTYPE, parseJsonText } from './json-parser.js';

export type JsonPrimitive = null | boolean | number | string;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface ParseJsonOptions {
  /** Deepest nesting of arrays and objects accepted (default 64). */
  maxDepth?: number;
  /** Named in error messages (a role, a file). */
  source?: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8 strictly: invalid sequences are refused, a BOM is kept (and then refused by the parser). */
export function utf8Decode(bytes: Uint8Array, source?: string): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new TufaError('INVALID_JSON', `${source ?? 'input'}: not valid UTF-8`, { role: source, cause });
  }
}

/** A new object for keys that come from untrusted input (see json-parser.ts's EMPTY_PROTOTYPE). */
export function jsonObject<T = JsonValue>(): Record<string, T> {
  return Object.create(EMPTY_PROTOTYPE) as Record<string, T>;
}

/** Whether `o` was made by jsonObject (or the parser): keys from input hold no prototype's names. */
export function isJsonObject(o: object): boolean {
  return Object.getPrototypeOf(o) === EMPTY_PROTOTYPE;
}

/** Plain data objects: literals, JSON.parse's, and the parser's (null or EMPTY_PROTOTYPE). */
function isPlainPrototype(proto: unknown): boolean {
  return proto === Object.prototype || proto === null || proto === EMPTY_PROTOTYPE;
}

/**
 * Parses bytes (UTF-8) or text as strict JSON into plain objects whose prototype chain holds no
 * property (see jsonObject).
 */
export function parseJson(input: Uint8Array | string, options: ParseJsonOptions = {}): JsonValue {
  const text = typeof input === 'string' ? input : utf8Decode(input, options.source);
  return parseJsonText(text, options.maxDepth ?? 64, options.source);
}

/**
 * Compares by Unicode code point, as securesystemslib (Python's str ordering) does.
 *
 * Chosen rule for keys outside the Basic Multilingual Plane: securesystemslib sorts by code
 * point, @tufjs/canonical-json by UTF-16 code unit (JavaScript's default sort). The two differ
 * only when a key with a supplementary character (U+10000 and up, stored as surrogates
 * D800–DFFF) is compared with one holding U+E000–U+FFFF. tufa follows securesystemslib, the
 * reference implementation that most TUF repositories are signed with.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x - y;
    // A surrogate stands for a code point above U+FFFF: greater than any BMP unit.
    return xs ? 1 : -1;
  }
  return a.length - b.length;
}

const SURROGATE = /[\uD800-\uDFFF]/;
const NEEDS_ESCAPE = /["\\]/;
const CONTROL = /[\u0000-\u001f]/;
const SHORT_ESCAPES: Record<string, string> = {
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\f': '\\f',
  '\r': '\\r',
};

/** Any character that canonicalString must look at: control characters, '"', '\\', surrogates. */
const SPECIAL = /[\u0000-\u001f"\\\uD800-\uDFFF]/;

function canonicalString(value: string, wire: boolean): string {
  // Fast path: most strings (hex digests, paths, names) need no escape and hold no surrogate.
  if (!SPECIAL.test(value)) return `"${value}"`;
  if (SURROGATE.test(value) && !value.isWellFormed()) {
    throw new TufaError('CANONICAL_JSON', 'canonical JSON: string with a lone surrogate');
  }
  let out = NEEDS_ESCAPE.test(value) ? value.replace(/[\\"]/g, '\\$&') : value;
  if (wire && CONTROL.test(out)) {
    out = out.replace(
      /[\u0000-\u001f]/g,
      (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  }
  return `"${out}"`;
}

/**
 * Keys in canonical order: by code point, which is JavaScript's default (UTF-16) order unless a
 * key holds a surrogate. Parsed canonical documents list their keys in order already: one linear
 * pass recognises that and skips the sort.
 */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  let ordered = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (SURROGATE.test(k)) return keys.sort(compareCodePoints);
    if (ordered && i > 0 && !(keys[i - 1]! < k)) ordered = false;
  }
  return ordered ? keys : keys.sort();
}

function encode(value: unknown, depth: number, wire: boolean): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) {
        throw new TufaError('CANONICAL_JSON', `canonical JSON: ${String(value)} is not a safe integer`, {
          found: String(value),
        });
      }
      return String(value);
    case 'string':
      return canonicalString(value, wire);
    case 'object': {
      if (depth > 128) throw new TufaError('CANONICAL_JSON', 'canonical JSON: nesting too deep');
      const fast = fastEncode(value, depth, wire);
      if (fast !== undefined) return fast;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += encode(value[i], depth + 1, wire);
        }
        return out + ']';
      }
      if (!isPlainPrototype(Object.getPrototypeOf(value))) {
        throw new TufaError('CANONICAL_JSON', 'canonical JSON: only plain objects can be encoded', {
          found: (value as object).constructor?.name ?? 'object',
        });
      }
      let out = '{';
      let first = true;
      for (const key of sortedKeys(value)) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined) {
          throw new TufaError('CANONICAL_JSON', `canonical JSON: key ${JSON.stringify(key)} is undefined`);
        }
        if (!first) out += ',';
        first = false;
        out += canonicalString(key, wire) + ':' + encode(item, depth + 1, wire);
      }
      return out + '}';
    }
    default:
      throw new TufaError('CANONICAL_JSON', `canonical JSON: cannot encode a value of type ${typeof value}`, {
        found: typeof value,
      });
  }
}

/**
 * True when JSON.stringify writes exactly what `encode` would: plain objects whose keys are
 * already in canonical order (as parsed canonical documents are), safe integers, no undefined,
 * no nesting deeper than encode allows. Strings are checked afterwards on the whole text
 * (see fastEncode). Anything else takes encode's careful path, which also raises its errors.
 */
function stringifiable(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isSafeInteger(value) && !Object.is(value, -0);
    case 'object': {
      if (depth > 128) return false;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!stringifiable(value[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainPrototype(Object.getPrototypeOf(value))) return false;
      const keys = Object.keys(value);
      for (let i = 0; i < keys.length; i++) {
        if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
        if (!stringifiable((value as Record<string, unknown>)[keys[i]!], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** A surrogate, or JSON.stringify's escape of a lone one; false positives only cost speed. */
const SURROGATE_OUT = /[\uD800-\uDFFF]|\\u[dD][89a-fA-F]/;
/** JSON.stringify's escapes of control characters, which canonical (not wire) JSON leaves raw. */
const CONTROL_ESCAPE_OUT = /\\[btnfr]|\\u00[01]/;

/**
 * The canonical text of an object or array through the native JSON.stringify when that gives
 * the same characters: JSON.stringify escapes '"', '\\' and control characters exactly as the
 * wire form does, and orders keys as they were added. Undefined when the careful encoder must
 * run instead (it tries again on each member, so one unordered object does not slow a document).
 */
function fastEncode(value: object, depth: number, wire: boolean): string | undefined {
  if (!stringifiable(value, depth)) return undefined;
  const text = JSON.stringify(value);
  if (SURROGATE_OUT.test(text)) return undefined;
  if (!wire && CONTROL_ESCAPE_OUT.test(text)) return undefined;
  return text;
}

/** The OLPC canonical JSON text of a value (securesystemslib's encode_canonical). */
export function canonicalJson(value: unknown): string {
  return encode(value, 0, false);
}

/** The UTF-8 bytes of the canonical JSON of a value: what TUF signs. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(encode(value, 0, false));
}

/**
 * The bytes tufa writes to files and the wire: canonical JSON, except that control characters
 * inside strings are escaped as JSON requires. Canonical JSON leaves them raw (a PEM key's
 * newlines), which JSON.parse and Python's json.loads refuse; escaped, every TUF client can read
 * the file. For documents without control characters the two forms are the same bytes.
 */
export function serializeJson(value: unknown): Uint8Array {
  return encoder.encode(encode(value, 0, true));
}

/**
 * True when the bytes are exactly tufa's serialisation (serializeJson) of what they parse to:
 * sorted keys, no whitespace, integers only, control characters escaped and nothing else.
 */
export function isCanonical(bytes: Uint8Array, parsed: JsonValue): boolean {
  const again = serializeJson(parsed);
  if (again.length !== bytes.length) return false;
  return Buffer.compare(Buffer.from(again.buffer, again.byteOffset, again.length), bytesView(bytes)) === 0;
}

function bytesView(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.length);
}
