/**
 * The strict JSON tokenizer behind parseJson and parseSignedEnvelope (internal: not exported from
 * the package). What it refuses is documented in json.ts. For a signed document it also reports
 * what it saw of the source, as values of that one call (never a table kept beside the objects):
 * where `signed`'s canonical text is, whether the whole input is tufa's served form, and the key
 * lists of large objects. Only metadata.ts's parseSignedEnvelope uses those (ADR 0011).
 */
import { TufaError } from './errors.js';
import type { JsonObject, JsonPrimitive, JsonValue } from './json.js';

/**
 * The prototype of every object the parser (and metadata.ts's `dict`) makes: empty, frozen and
 * itself without a prototype, so a lookup of an absent key finds nothing and a key named
 * `__proto__` is an ordinary entry, as with a null prototype. V8 keeps such objects in fast mode,
 * where objects made by Object.create(null) start as hash tables, about twice as slow to build.
 */
export const EMPTY_PROTOTYPE: object = Object.freeze(Object.create(null));

/** Parses JSON text strictly (parseJson's rules); `careful`: only the careful paths (tests). */
export function parseJsonText(
  text: string,
  maxDepth: number,
  source: string | undefined,
  careful = false,
): JsonValue {
  return new Parser(text, maxDepth, source, false, undefined, careful).parseDocument();
}

/** What a scan of a signed document `{"signed": …, …}` saw of its source. */
export interface SignedDocumentScan {
  readonly document: JsonValue;
  /**
   * Where the text of the top-level `signed` member starts and ends, when that text is already
   * its OLPC canonical JSON (no whitespace, sorted keys, escapes only \" and \\, no surrogate).
   */
  readonly signedSpan: { readonly start: number; readonly end: number } | undefined;
  /**
   * True when the text is exactly tufa's serialisation of what it parses to (serializeJson: sorted
   * keys, no whitespace, control characters escaped as it escapes them, nothing else escaped);
   * undefined when the scan cannot tell (a key holds a character outside the BMP, where canonical
   * order is by code point, not UTF-16 unit).
   */
  readonly servedForm: boolean | undefined;
  /** The keys of an object of this document as parsed: recorded for large ones, else Object.keys. */
  readonly keysAsParsed: (obj: object) => readonly string[];
  /**
   * With a `targetsEntry` check: 'checked' when the members of `signed.targets` were read one by
   * one and not kept (the document holds an empty object there), every key greater than the one
   * before and every entry passing the check; 'unsure' when not (the caller parses again without
   * the check); undefined when there was no such object.
   */
  readonly targetsEntries: 'checked' | 'unsure' | undefined;
}

/** Scans a signed document: the parse of parseJsonText, and what it saw of the source. */
export function scanSignedDocument(
  text: string,
  maxDepth: number,
  source: string | undefined,
  targetsEntry?: (key: string, value: JsonValue) => boolean,
  /** Only the careful paths, none of the fast ones (tests: both must answer the same). */
  careful = false,
): SignedDocumentScan {
  const parser = new Parser(text, maxDepth, source, true, targetsEntry, careful);
  const document = parser.parseDocument();
  const lists = parser.keyLists;
  return {
    document,
    signedSpan: parser.memberCanonical ? { start: parser.memberStart, end: parser.memberEnd } : undefined,
    servedForm: parser.keyWithSurrogate ? undefined : parser.served,
    keysAsParsed: (obj) => lists.get(obj) ?? Object.keys(obj),
    targetsEntries: parser.targetsEntries,
  };
}

/** Objects with at least this many keys get their key list recorded (keysAsParsed). */
const LARGE_OBJECT = 256;

/** What parseString's careful path handles (escapes, surrogates, raw control characters), from lastIndex. */
const STRING_SPECIAL_AHEAD = /[\\\uD800-\uDFFF\u0000-\u001f]/g;

/** The control characters serializeJson writes with a short escape (\b \t \n \f \r). */
const SHORT_ESCAPED = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);

class Parser {
  private pos = 0;
  /** Whether the input is tufa's served form so far (scan only; see SignedDocumentScan). */
  served = true;
  /** A key held a surrogate: the served-form answer is left to a full comparison. */
  keyWithSurrogate = false;
  /** The top-level `signed` member: where its text is, and whether it is canonical JSON. */
  memberStart = 0;
  memberEnd = 0;
  memberCanonical = false;
  /** Key lists of the large objects made by this parse (scan only). */
  readonly keyLists = new Map<object, string[]>();
  /** True while parsing the tracked member; `canonical` turns false at the first departure. */
  private tracking = false;
  private canonical = true;
  /** Set by parseString when the string held a surrogate. */
  private sawSurrogate = false;
  /** See SignedDocumentScan.targetsEntries. */
  targetsEntries: 'checked' | 'unsure' | undefined;
  /**
   * Where the next character parseString's careful path handles is, at or after a position
   * already passed: a string closing before it is plain, with no test of its own (one search of
   * the text, forward only, instead of a regular expression per string).
   */
  private nextSpecial = -1;
  constructor(
    private readonly text: string,
    readonly maxDepth: number,
    private readonly source: string | undefined,
    /** Report what the source looks like (scanSignedDocument); parseJsonText does not need it. */
    private readonly scan: boolean,
    /** When given, the members of `signed.targets` are read, checked with it and not kept. */
    private readonly targetsEntry?: (key: string, value: JsonValue) => boolean,
    /** Only the careful paths (tests: the fast paths must answer exactly as they do). */
    private readonly careful = false,
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
    if (p !== this.pos) {
      this.served = false;
      if (this.tracking) this.canonical = false;
    }
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

  /** Only integers in their one canonical spelling are accepted: the source is always canonical. */
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
    // Up to 15 digits (below 2^53), the digits' value is exact and safe: no slice, no Number().
    const digits = p - start - (t.charCodeAt(start) === 0x2d ? 1 : 0);
    if (!this.careful && digits <= 15 && !(digits === 1 && first === 0x30 && p - start === 2)) {
      let value = 0;
      for (let i = p - digits; i < p; i++) value = value * 10 + (t.charCodeAt(i) - 0x30);
      this.pos = p;
      return p - start === digits ? value : -value;
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
    // Fast path: up to the next quote, nothing to unescape and no surrogate to check (and so
    // written as both canonical forms write it).
    const close = t.indexOf('"', this.pos + 1);
    if (close !== -1 && !this.careful && this.plainUpTo(this.pos + 1, close)) {
      const plain = t.slice(this.pos + 1, close);
      this.pos = close + 1;
      return plain;
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
        // Accepted raw (canonical JSON writes them so); tufa's served form escapes them.
        this.served = false;
        p++;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        this.sawSurrogate = true;
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
        if (e !== 0x22 && e !== 0x5c) {
          if (this.tracking) this.canonical = false;
          // The served form escapes control characters only, each the one way serializeJson does.
          if (e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74 && e !== 0x75) {
            this.served = false;
          }
        }
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
            if (
              unit >= 0x20 ||
              SHORT_ESCAPED.has(unit) ||
              t.slice(p + 1, p + 5) !== t.slice(p + 1, p + 5).toLowerCase()
            ) {
              this.served = false;
            }
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
              this.sawSurrogate = true;
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

  /** True when text[from, to) holds nothing parseString's careful path handles. */
  private plainUpTo(from: number, to: number): boolean {
    if (this.nextSpecial < from) {
      STRING_SPECIAL_AHEAD.lastIndex = from;
      const found = STRING_SPECIAL_AHEAD.exec(this.text);
      this.nextSpecial = found === null ? this.text.length : found.index;
    }
    return this.nextSpecial >= to;
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
    const out = Object.create(EMPTY_PROTOTYPE) as JsonObject;
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
      this.sawSurrogate = false;
      const key = this.parseString();
      if (this.sawSurrogate) this.keyWithSurrogate = true;
      if (!increasing || (previous !== undefined && !(previous < key))) {
        increasing = false;
        this.served = false;
        if (this.tracking) this.canonical = false;
        if (Object.hasOwn(out, key)) {
          this.pos = keyAt;
          this.fail(`duplicate key ${JSON.stringify(key)}`);
        }
      }
      previous = key;
      // A large object's keys are listed as they come: Object.keys of a 100,000-key object sorts
      // V8's hash table by insertion order, which costs more than reading the entries.
      if (keys !== undefined) keys.push(key);
      else if (this.scan && ++count === LARGE_OBJECT) keys = Object.keys(out).concat(key);
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':' after key");
      this.pos++;
      this.skipWhitespace();
      // Canonical JSON refuses nesting deeper than 128: past that, no span is taken as canonical.
      if (this.scan && depth === 1 && key === 'signed' && this.maxDepth <= 100) {
        const start = this.pos;
        this.tracking = true;
        this.canonical = true;
        out[key] = this.parseValue(depth);
        this.tracking = false;
        this.memberCanonical = this.canonical;
        this.memberStart = start;
        this.memberEnd = this.pos;
      } else if (
        // `signed.targets` (an object directly in the tracked `signed`, itself at depth 2).
        this.targetsEntry !== undefined &&
        this.tracking &&
        depth === 2 &&
        key === 'targets' &&
        this.text.charCodeAt(this.pos) === 0x7b
      ) {
        out[key] = this.checkMembers(depth + 1, this.targetsEntry);
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
        if (keys !== undefined) this.keyLists.set(out, keys);
        return out;
      }
      this.fail("expected ',' or '}' in object");
    }
  }

  /**
   * parseObject's reading of an object, its members checked with `entry` and not kept: an empty
   * object stands for it. Only a strictly increasing run of keys, each entry passing, is
   * 'checked'; anything else is 'unsure' (a repeated key, say, is not looked for here) and the
   * caller reads the document again with parseObject, which then gives every answer.
   */
  private checkMembers(depth: number, entry: (key: string, value: JsonValue) => boolean): JsonObject {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.pos++;
    let sure = true;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x7d) this.pos++;
    else {
      let previous: string | undefined;
      for (;;) {
        this.skipWhitespace();
        if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a string key in object');
        this.sawSurrogate = false;
        const key = this.parseString();
        if (this.sawSurrogate) this.keyWithSurrogate = true;
        if (previous !== undefined && !(previous < key)) {
          sure = false;
          this.served = false;
          this.canonical = false;
        }
        previous = key;
        this.skipWhitespace();
        if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':' after key");
        this.pos++;
        this.skipWhitespace();
        const value = this.parseValue(depth);
        if (sure && !entry(key, value)) sure = false;
        this.skipWhitespace();
        const c = this.text.charCodeAt(this.pos);
        if (c === 0x2c) {
          this.pos++;
          continue;
        }
        if (c === 0x7d) {
          this.pos++;
          break;
        }
        this.fail("expected ',' or '}' in object");
      }
    }
    this.targetsEntries = sure ? 'checked' : 'unsure';
    return Object.create(EMPTY_PROTOTYPE) as JsonObject;
  }
}
