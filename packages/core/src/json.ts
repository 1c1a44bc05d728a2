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
import { LARGE_OBJECT_KEYS } from './parsed-keys.js';

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

/**
 * The prototype of every object the parser (and metadata.ts's `dict`) makes: empty, frozen and
 * itself without a prototype, so a lookup of an absent key finds nothing and a key named
 * `__proto__` is an ordinary entry, as with a null prototype. V8 keeps such objects in fast mode,
 * where objects made by Object.create(null) start as hash tables, about twice as slow to build.
 */
const EMPTY_PROTOTYPE: object = Object.freeze(Object.create(null));

/** A new object for keys that come from untrusted input (see EMPTY_PROTOTYPE). */
export function jsonObject<T = JsonValue>(): Record<string, T> {
  return Object.create(EMPTY_PROTOTYPE) as Record<string, T>;
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
  return new Parser(text, options.maxDepth ?? 64, options.source).parseDocument();
}

/**
 * As parseJson, for a signed document `{"signed": …, …}`: also returns the source text of the
 * `signed` member when that text is already the canonical JSON (canonicalJson) of what it parses
 * to, so that the bytes the signatures cover need not be encoded again. Undefined when it is not
 * (whitespace, unsorted keys, escapes other than \" and \\, surrogates) or when the document is
 * not an object with that member: then canonicalJson of the parsed value is the answer.
 */
export function parseSignedDocument(
  input: Uint8Array | string,
  options: ParseJsonOptions = {},
): {
  doc: JsonValue;
  signedText: string | undefined;
  signedBytes: Uint8Array | undefined;
  /** True when `signed`'s strings hold raw control characters (only known when signedText is). */
  signedRawControl: boolean;
} {
  const text = typeof input === 'string' ? input : utf8Decode(input, options.source);
  const parser = new Parser(text, options.maxDepth ?? 64, options.source);
  // Canonical JSON refuses nesting deeper than 128: past that, no span is taken as canonical.
  if (parser.maxDepth <= 100) parser.trackMember = 'signed';
  const doc = parser.parseDocument();
  const signedText = parser.memberText;
  // ASCII input (one byte per character): the canonical bytes are a slice of the input, no copy.
  const signedBytes =
    signedText !== undefined && typeof input !== 'string' && text.length === input.length
      ? input.subarray(parser.memberStart, parser.memberStart + signedText.length)
      : undefined;
  return { doc, signedText, signedBytes, signedRawControl: parser.memberControl };
}

/** Objects with at least this many keys get their key list recorded (parsed-keys.ts). */
const LARGE_OBJECT = 256;

/** What parseString's careful path handles: escapes, surrogates and raw control characters. */
const STRING_SPECIAL = /[\\\uD800-\uDFFF\u0000-\u001f]/;

class Parser {
  private pos = 0;
  /** A top-level member whose source text is checked for canonical form (parseSignedDocument). */
  trackMember: string | undefined;
  /** That member's source text, when it is canonical JSON, and where it starts. */
  memberText: string | undefined;
  memberStart = 0;
  /** Whether that member's strings hold raw control characters (escaped in the wire form). */
  memberControl = false;
  /** True while parsing the tracked member; `canonical` turns false at the first departure. */
  private tracking = false;
  private canonical = true;
  constructor(
    private readonly text: string,
    readonly maxDepth: number,
    private readonly source: string | undefined,
  ) {}

  parseDocument(): JsonValue {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail('unexpected data after the JSON value');
    return value;
  }

  private fail(what: string): never {
    throw new TufaError('INVALID_JSON', `${this.source ?? 'input'}: ${what} at offset ${this.pos}`, {
      role: this.source,
      details: { offset: this.pos },
    });
  }

  private skipWhitespace(): void {
    const t = this.text;
    let p = this.pos;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    if (this.tracking && p !== this.pos) this.canonical = false;
    this.pos = p;
  }

  private parseValue(depth: number): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth + 1);
      case 0x5b: // [
        return this.parseArray(depth + 1);
      case 0x22: // "
        return this.parseString();
      case 0x74: // t
        return this.parseLiteral('true', true);
      case 0x66: // f
        return this.parseLiteral('false', false);
      case 0x6e: // n
        return this.parseLiteral('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        if (Number.isNaN(c)) this.fail('unexpected end of input');
        return this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    }
  }

  private parseLiteral<T extends JsonPrimitive>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`invalid literal, expected ${word}`);
    this.pos += word.length;
    return value;
  }

  private parseNumber(): number {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === 0x2d) p++;
    const first = t.charCodeAt(p);
    if (first === 0x30) {
      p++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (p < t.length && t.charCodeAt(p) >= 0x30 && t.charCodeAt(p) <= 0x39) p++;
    } else {
      this.pos = p;
      this.fail('invalid number');
    }
    const next = t.charCodeAt(p);
    if (next === 0x2e || next === 0x65 || next === 0x45) {
      this.pos = start;
      this.fail('numbers must be integers (no fraction or exponent)');
    }
    if (next >= 0x30 && next <= 0x39) {
      this.pos = start;
      this.fail('numbers must not have leading zeros');
    }
    const literal = t.slice(start, p);
    if (literal === '-0') {
      this.pos = start;
      this.fail('-0 is not a valid integer here');
    }
    const value = Number(literal);
    if (!Number.isSafeInteger(value)) {
      this.pos = start;
      this.fail(`integer ${literal} is outside the safe range`);
    }
    this.pos = p;
    return value;
  }

  private parseString(): string {
    const t = this.text;
    // Fast path: up to the next quote, nothing to unescape and no surrogate to check.
    const close = t.indexOf('"', this.pos + 1);
    if (close !== -1) {
      const plain = t.slice(this.pos + 1, close);
      if (!STRING_SPECIAL.test(plain)) {
        this.pos = close + 1;
        return plain;
      }
    }
    let p = this.pos + 1;
    let out = '';
    let chunkStart = p;
    for (;;) {
      if (p >= t.length) {
        this.pos = p;
        this.fail('unterminated string');
      }
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        out += t.slice(chunkStart, p);
        this.pos = p + 1;
        break;
      }
      if (c < 0x20) {
        // Accepted raw (canonical JSON writes them so); tufa's wire form escapes them.
        if (this.tracking) this.memberControl = true;
        p++;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        // Canonical key order differs from UTF-16 order only with surrogates: no shortcut then.
        if (this.tracking) this.canonical = false;
        // Raw surrogates can only come from a string input; from bytes they are always paired.
        const next = t.charCodeAt(p + 1);
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          p += 2;
          continue;
        }
        this.pos = p;
        this.fail('lone surrogate in string');
      }
      if (c === 0x5c) {
        out += t.slice(chunkStart, p);
        p++;
        const e = t.charCodeAt(p);
        // Canonical JSON escapes only '"' and '\\' (control characters stay raw).
        if (this.tracking && e !== 0x22 && e !== 0x5c) this.canonical = false;
        switch (e) {
          case 0x22:
            out += '"';
            break;
          case 0x5c:
            out += '\\';
            break;
          case 0x2f:
            out += '/';
            break;
          case 0x62:
            out += '\b';
            break;
          case 0x66:
            out += '\f';
            break;
          case 0x6e:
            out += '\n';
            break;
          case 0x72:
            out += '\r';
            break;
          case 0x74:
            out += '\t';
            break;
          case 0x75: {
            const unit = this.hex4(p + 1);
            p += 4;
            if (unit >= 0xd800 && unit <= 0xdbff) {
              if (t.charCodeAt(p + 1) !== 0x5c || t.charCodeAt(p + 2) !== 0x75) {
                this.pos = p;
                this.fail('lone surrogate escape in string');
              }
              const low = this.hex4(p + 3);
              if (low < 0xdc00 || low > 0xdfff) {
                this.pos = p;
                this.fail('lone surrogate escape in string');
              }
              out += String.fromCharCode(unit, low);
              p += 6;
            } else if (unit >= 0xdc00 && unit <= 0xdfff) {
              this.pos = p;
              this.fail('lone surrogate escape in string');
            } else {
              out += String.fromCharCode(unit);
            }
            break;
          }
          default:
            this.pos = p;
            this.fail('invalid escape in string');
        }
        p++;
        chunkStart = p;
        continue;
      }
      p++;
    }
    return out;
  }

  private hex4(at: number): number {
    const digits = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) {
      this.pos = at;
      this.fail('invalid \\u escape');
    }
    return Number.parseInt(digits, 16);
  }

  private parseArray(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      out.push(this.parseValue(depth));
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return out;
      }
      this.fail("expected ',' or ']' in array");
    }
  }

  private parseObject(depth: number): JsonObject {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.pos++;
    const out: JsonObject = jsonObject();
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    let previous: string | undefined;
    let count = 0;
    let keys: string[] | undefined;
    // While the keys come in increasing order (as in canonical JSON), a new key is greater than
    // every key before it, so it cannot repeat one: the lookup is needed only once they do not.
    let increasing = true;
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a string key in object');
      const keyAt = this.pos;
      const key = this.parseString();
      if (!increasing || (previous !== undefined && !(previous < key))) {
        increasing = false;
        if (this.tracking) this.canonical = false;
        if (Object.hasOwn(out, key)) {
          this.pos = keyAt;
          this.fail(`duplicate key ${JSON.stringify(key)}`);
        }
      }
      previous = key;
      // A large object's keys are listed as they come: readers need not ask V8 for them (Object.keys
      // of a 100,000-key object sorts its hash table by insertion).
      if (keys !== undefined) keys.push(key);
      else if (++count === LARGE_OBJECT) keys = Object.keys(out).concat(key);
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':' after key");
      this.pos++;
      this.skipWhitespace();
      if (depth === 1 && key === this.trackMember) {
        const start = this.pos;
        this.tracking = true;
        this.canonical = true;
        out[key] = this.parseValue(depth);
        this.tracking = false;
        this.memberText = this.canonical ? this.text.slice(start, this.pos) : undefined;
        this.memberStart = start;
      } else {
        out[key] = this.parseValue(depth);
      }
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        if (keys !== undefined) LARGE_OBJECT_KEYS.set(out, keys);
        return out;
      }
      this.fail("expected ',' or '}' in object");
    }
  }
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
