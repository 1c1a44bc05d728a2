/**
 * A targets document in tufa's served form read without objects (internal; ADR 0017 section 6):
 * one pass over the bytes that finds `signed.targets`, checks every entry as strictly as the full
 * parse and metadata.ts's readers would, and records where each target path and entry is. Only
 * metadata.ts's parseSignedEnvelope uses it. Every answer is "sure" or `undefined`: anything this
 * pass does not know to be the usual served form (whitespace, an escape, a raw control character,
 * a character outside the BMP, a number of 16 digits or more, `-0`, a key out of order, an extra
 * field, an unknown hash algorithm, deep nesting) is left to the full parse, which then gives
 * every answer, refusals included.
 */
import { HASH_HEX_LENGTH } from './crypto.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const ZERO = 0x30;
const NINE = 0x39;
const MINUS = 0x2d;

/** Nesting this pass follows inside a custom value (the parser allows 64 in all; far below that). */
const MAX_DEPTH = 56;

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const SIGNED_KEY = ascii('signed');
const TARGETS_KEY = ascii('targets');
const CUSTOM_MEMBER = ascii('"custom":');
const HASHES_MEMBER = ascii('"hashes":{');
const LENGTH_MEMBER = ascii(',"length":');
/** The algorithms readers know, in canonical (byte) order, with their digests' lengths. */
const ALGORITHMS = (['sha256', 'sha384', 'sha512'] as const).map((name) => ({
  key: ascii(`"${name}":"`),
  hexLength: HASH_HEX_LENGTH[name],
}));

/** Lowercase hex digits: 0-9a-f. */
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;

/**
 * The entries of `signed.targets` as byte offsets into the document, sorted by path (the served
 * form's order: UTF-8 bytes, which is code-point order). Paths hold no escape, so a path's bytes
 * are its UTF-8 encoding.
 */
export class TargetPathIndex {
  constructor(
    private readonly bytes: Uint8Array,
    /** Per entry: path start, path end (its closing quote), entry start, entry end. */
    private readonly offsets: Uint32Array,
    readonly count: number,
  ) {}

  /** The bytes of the entry of `path` (a UTF-8 encoded path), or undefined when there is none. */
  entry(path: Uint8Array): Uint8Array | undefined {
    const b = this.bytes;
    const o = this.offsets;
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const start = o[4 * mid]!;
      const order = compareBytes(b, start, o[4 * mid + 1]!, path);
      if (order === 0) return b.subarray(o[4 * mid + 2]!, o[4 * mid + 3]!);
      if (order < 0) low = mid + 1;
      else high = mid - 1;
    }
    return undefined;
  }
}

/** b[start, end) against `key`: negative, zero or positive. */
function compareBytes(b: Uint8Array, start: number, end: number, key: Uint8Array): number {
  const n = Math.min(end - start, key.length);
  for (let i = 0; i < n; i++) {
    const d = b[start + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return end - start - key.length;
}

/** What the pass found: the byte spans of `signed` and of `signed.targets`, and the index. */
export interface ServedTargets {
  readonly signedStart: number;
  readonly signedEnd: number;
  readonly targetsStart: number;
  readonly targetsEnd: number;
  readonly index: TargetPathIndex;
}

/**
 * Finds and checks `signed.targets` of a document in served form. Undefined unless it is sure:
 * the entries are then exactly what the full parse would accept, each the usual entry
 * (`custom` optional, `hashes` of known algorithms, `length`). The rest of the document is only
 * walked to find the spans: the caller parses it in full.
 */
export function scanServedTargets(bytes: Uint8Array): ServedTargets | undefined {
  return new Scan(bytes).document();
}

class Scan {
  private p = 0;
  private offsets: Uint32Array;
  private count = 0;
  constructor(private readonly b: Uint8Array) {
    // About 130 bytes per usual entry: rarely grown.
    this.offsets = new Uint32Array(4 * Math.max(16, Math.ceil(b.length / 100)));
  }

  document(): ServedTargets | undefined {
    const b = this.b;
    let signed: { start: number; end: number } | undefined;
    let targets: { start: number; end: number } | undefined;
    if (b[0] !== OPEN_OBJECT) return undefined;
    this.p = 1;
    if (b[1] === CLOSE_OBJECT) return undefined;
    for (;;) {
      const key = this.skipString();
      if (key < 0 || b[this.p] !== COLON) return undefined;
      const isSigned = this.keyIs(key, SIGNED_KEY);
      this.p++;
      if (isSigned && b[this.p] === OPEN_OBJECT) {
        if (signed !== undefined) return undefined;
        const start = this.p;
        this.p++;
        if (b[this.p] === CLOSE_OBJECT) return undefined;
        for (;;) {
          const member = this.skipString();
          if (member < 0 || b[this.p] !== COLON) return undefined;
          const isTargets = this.keyIs(member, TARGETS_KEY);
          this.p++;
          if (isTargets) {
            if (targets !== undefined) return undefined;
            const at = this.p;
            if (!this.targets()) return undefined;
            targets = { start: at, end: this.p };
          } else if (!this.skipValue()) return undefined;
          const c = b[this.p++];
          if (c === CLOSE_OBJECT) break;
          if (c !== COMMA) return undefined;
        }
        signed = { start, end: this.p };
      } else if (!this.skipValue()) return undefined;
      const c = b[this.p++];
      if (c === CLOSE_OBJECT) break;
      if (c !== COMMA) return undefined;
    }
    if (this.p !== b.length || signed === undefined || targets === undefined) return undefined;
    return {
      signedStart: signed.start,
      signedEnd: signed.end,
      targetsStart: targets.start,
      targetsEnd: targets.end,
      index: new TargetPathIndex(b, this.offsets, this.count),
    };
  }

  /** Whether the string just skipped (its opening quote at `start`) is `key`, written plainly. */
  private keyIs(start: number, key: Uint8Array): boolean {
    if (this.p - start - 2 !== key.length) return false;
    for (let i = 0; i < key.length; i++) if (this.b[start + 1 + i] !== key[i]) return false;
    return true;
  }

  /**
   * Skips a string of the rest of the document (escapes stepped over as the parser reads them):
   * its opening quote's offset, or -1. Only boundaries matter here; the full parse checks it.
   */
  private skipString(): number {
    const b = this.b;
    const start = this.p;
    if (b[start] !== QUOTE) return -1;
    let p = start + 1;
    for (;;) {
      if (p >= b.length) return -1;
      const c = b[p]!;
      if (c === QUOTE) break;
      p += c === BACKSLASH ? 2 : 1;
    }
    this.p = p + 1;
    return start;
  }

  /** Skips a value of the rest of the document: strings as skipString, brackets counted. */
  private skipValue(): boolean {
    const b = this.b;
    const c = b[this.p];
    if (c === QUOTE) return this.skipString() >= 0;
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      let depth = 0;
      for (;;) {
        const d = b[this.p];
        if (d === undefined) return false;
        if (d === QUOTE) {
          if (this.skipString() < 0) return false;
          continue;
        }
        this.p++;
        if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
        else if ((d === CLOSE_OBJECT || d === CLOSE_ARRAY) && --depth === 0) return true;
      }
    }
    // A number or a literal: up to the next delimiter.
    const start = this.p;
    for (;;) {
      const d = b[this.p];
      if (d === undefined || d === COMMA || d === CLOSE_OBJECT || d === CLOSE_ARRAY || d === QUOTE) break;
      this.p++;
    }
    return this.p > start;
  }

  /** `signed.targets`: every path non-empty and greater than the one before, every entry usual. */
  private targets(): boolean {
    const b = this.b;
    if (b[this.p] !== OPEN_OBJECT) return false;
    this.p++;
    if (b[this.p] === CLOSE_OBJECT) {
      this.p++;
      return true;
    }
    let previousStart = -1;
    let previousEnd = -1;
    for (;;) {
      const start = this.p + 1;
      if (!this.plainString()) return false;
      const end = this.p - 1;
      if (end === start) return false; // an empty path: the full parse names it
      if (previousStart >= 0 && !this.greater(previousStart, previousEnd, start, end)) return false;
      previousStart = start;
      previousEnd = end;
      if (b[this.p] !== COLON) return false;
      this.p++;
      const entryStart = this.p;
      if (!this.entry()) return false;
      this.record(start, end, entryStart, this.p);
      const c = b[this.p++];
      if (c === CLOSE_OBJECT) return true;
      if (c !== COMMA) return false;
    }
  }

  private record(pathStart: number, pathEnd: number, entryStart: number, entryEnd: number): void {
    if (4 * this.count + 4 > this.offsets.length) {
      const grown = new Uint32Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    const o = this.offsets;
    const i = 4 * this.count++;
    o[i] = pathStart;
    o[i + 1] = pathEnd;
    o[i + 2] = entryStart;
    o[i + 3] = entryEnd;
  }

  /** `{"custom":…,"hashes":{…},"length":N}`, custom optional, in that order, nothing else. */
  private entry(): boolean {
    const b = this.b;
    if (b[this.p] !== OPEN_OBJECT) return false;
    this.p++;
    if (this.literal(CUSTOM_MEMBER)) {
      if (!this.value(5)) return false;
      if (b[this.p] !== COMMA) return false;
      this.p++;
    }
    if (!this.literal(HASHES_MEMBER)) return false;
    let previous = -1;
    for (;;) {
      let known = -1;
      for (let i = previous + 1; i < ALGORITHMS.length; i++) {
        if (this.literal(ALGORITHMS[i]!.key)) {
          known = i;
          break;
        }
      }
      if (known < 0) return false; // another algorithm, or these out of order: the full parse reads it
      previous = known;
      const end = this.p + ALGORITHMS[known]!.hexLength;
      if (end >= b.length) return false;
      for (let p = this.p; p < end; p++) if (HEX[b[p]!] === 0) return false;
      if (b[end] !== QUOTE) return false;
      this.p = end + 1;
      const c = b[this.p++];
      if (c === CLOSE_OBJECT) break;
      if (c !== COMMA) return false;
    }
    if (!this.literal(LENGTH_MEMBER)) return false;
    if (!this.integer(false)) return false;
    if (b[this.p] !== CLOSE_OBJECT) return false;
    this.p++;
    return true;
  }

  /** Steps over `bytes` when they come next. */
  private literal(bytes: Uint8Array): boolean {
    const b = this.b;
    const p = this.p;
    if (p + bytes.length > b.length) return false;
    for (let i = 0; i < bytes.length; i++) if (b[p + i] !== bytes[i]) return false;
    this.p = p + bytes.length;
    return true;
  }

  /** An integer in its one canonical spelling, up to 15 digits (exact and safe), `-0` refused. */
  private integer(signed: boolean): boolean {
    const b = this.b;
    let p = this.p;
    if (signed && b[p] === MINUS) p++;
    const first = b[p];
    if (first === undefined || first < ZERO || first > NINE) return false;
    const digitsStart = p;
    if (first === ZERO) {
      if (p !== this.p) return false; // -0
      p++;
    } else {
      while (p < b.length && b[p]! >= ZERO && b[p]! <= NINE) p++;
    }
    if (p - digitsStart > 15) return false;
    const next = b[p];
    // A fraction, an exponent or a leading zero: the full parse refuses it and names it.
    if (
      next === 0x2e ||
      next === 0x65 ||
      next === 0x45 ||
      (next !== undefined && next >= ZERO && next <= NINE)
    ) {
      return false;
    }
    this.p = p;
    return true;
  }

  /**
   * A string with no escape, no control character and only 1-3 byte UTF-8 sequences (no
   * surrogate, nothing outside the BMP), checked as TextDecoder's fatal mode checks it.
   */
  private plainString(): boolean {
    const b = this.b;
    let p = this.p;
    if (b[p] !== QUOTE) return false;
    p++;
    for (;;) {
      const c = b[p];
      if (c === undefined) return false;
      if (c === QUOTE) break;
      if (c < 0x80) {
        if (c < 0x20 || c === BACKSLASH) return false;
        p++;
      } else if (c >= 0xc2 && c <= 0xdf) {
        if (!continuation(b[p + 1])) return false;
        p += 2;
      } else if (c >= 0xe0 && c <= 0xef) {
        const c1 = b[p + 1];
        if (c1 === undefined || !continuation(b[p + 2])) return false;
        // E0 A0-BF (no overlong form), ED 80-9F (no surrogate), else 80-BF.
        const low = c === 0xe0 ? 0xa0 : 0x80;
        const high = c === 0xed ? 0x9f : 0xbf;
        if (c1 < low || c1 > high) return false;
        p += 3;
      } else {
        return false;
      }
    }
    this.p = p + 1;
    return true;
  }

  /** Whether b[c, cEnd) is strictly greater than b[a, aEnd), byte by byte (code-point order). */
  private greater(a: number, aEnd: number, c: number, cEnd: number): boolean {
    const b = this.b;
    const n = Math.min(aEnd - a, cEnd - c);
    for (let i = 0; i < n; i++) {
      const d = b[c + i]! - b[a + i]!;
      if (d !== 0) return d > 0;
    }
    return cEnd - c > aEnd - a;
  }

  /** A custom value at `depth` (the entry's object is 4): any JSON the full parse accepts, in served form. */
  private value(depth: number): boolean {
    const b = this.b;
    const c = b[this.p];
    if (c === QUOTE) return this.plainString();
    if (c === OPEN_OBJECT) {
      if (depth >= MAX_DEPTH) return false;
      this.p++;
      if (b[this.p] === CLOSE_OBJECT) {
        this.p++;
        return true;
      }
      let previousStart = -1;
      let previousEnd = -1;
      for (;;) {
        const start = this.p + 1;
        if (!this.plainString()) return false;
        const end = this.p - 1;
        if (previousStart >= 0 && !this.greater(previousStart, previousEnd, start, end)) return false;
        previousStart = start;
        previousEnd = end;
        if (b[this.p] !== COLON) return false;
        this.p++;
        if (!this.value(depth + 1)) return false;
        const next = b[this.p++];
        if (next === CLOSE_OBJECT) return true;
        if (next !== COMMA) return false;
      }
    }
    if (c === OPEN_ARRAY) {
      if (depth >= MAX_DEPTH) return false;
      this.p++;
      if (b[this.p] === CLOSE_ARRAY) {
        this.p++;
        return true;
      }
      for (;;) {
        if (!this.value(depth + 1)) return false;
        const next = b[this.p++];
        if (next === CLOSE_ARRAY) return true;
        if (next !== COMMA) return false;
      }
    }
    if (c === 0x74) return this.literal(TRUE);
    if (c === 0x66) return this.literal(FALSE);
    if (c === 0x6e) return this.literal(NULL);
    return this.integer(true);
  }
}

const TRUE = ascii('true');
const FALSE = ascii('false');
const NULL = ascii('null');

function continuation(c: number | undefined): boolean {
  return c !== undefined && c >= 0x80 && c <= 0xbf;
}
