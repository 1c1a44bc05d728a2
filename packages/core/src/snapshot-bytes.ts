/**
 * The canonical bytes of a snapshot in the shape a server writes (every entry version, length
 * and hashes; no extra fields; strings that need no escape), written in one pass: at 16,384 hash
 * bins the generic encoder's objects cost a publish tens of milliseconds (ADR 0015). Internal to
 * core: signMetadata and serializeMetadata use it, and a test holds it to the generic encoder.
 */
import { jsonObject } from './json.js';
import type { Metadata, MetaFile, Snapshot } from './metadata.js';

/** Printable ASCII but `"` and `\`: the same characters in canonical JSON, wire JSON and as typed. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

const encoder = new TextEncoder();

/** The canonical bytes of `s`, or undefined when it is not in the plain shape (the generic encoder then). */
export function plainSnapshotBytes(s: Snapshot): Uint8Array | undefined {
  const indexed = indexes.get(s);
  if (indexed) return indexed.bytes;
  if (Object.keys(s.extra).length > 0 || !PLAIN.test(s.expires) || !PLAIN.test(s.specVersion))
    return undefined;
  const names = Object.keys(s.meta);
  for (let i = 1; i < names.length; i++) {
    if (!(names[i - 1]! < names[i]!)) {
      names.sort();
      break;
    }
  }
  const parts: string[] = [`{"_type":"snapshot","expires":"${s.expires}","meta":{`];
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const entry = plainEntry(s.meta[name]!);
    if (entry === undefined || !PLAIN.test(name)) return undefined;
    parts.push(`${i === 0 ? '' : ','}"${name}":${entry}`);
  }
  parts.push(`},"spec_version":"${s.specVersion}","version":${s.version}}`);
  return encoder.encode(parts.join(''));
}

/** Lowercase hex: the sha256 a server writes, checked faster than PLAIN. */
const HEX = /^[0-9a-f]*$/;

function plainEntry(m: MetaFile): string | undefined {
  if (!Number.isSafeInteger(m.version)) return undefined;
  for (const _ in m.extra) return undefined;
  const hashes = m.hashes;
  // The server's own shape, the one that repeats 16,384 times: no sort, no list.
  if (hashes !== undefined && Number.isSafeInteger(m.length)) {
    let only: string | undefined;
    for (const a in hashes) {
      if (only !== undefined || a !== 'sha256') {
        only = undefined;
        break;
      }
      only = hashes[a];
    }
    if (only !== undefined && HEX.test(only)) {
      return `{"hashes":{"sha256":"${only}"},"length":${m.length},"version":${m.version}}`;
    }
  }
  const fields: string[] = [];
  if (m.hashes !== undefined) {
    const algorithms = Object.keys(m.hashes).sort();
    const hashes: string[] = [];
    for (const a of algorithms) {
      const value = m.hashes[a]!;
      if (!PLAIN.test(a) || !PLAIN.test(value)) return undefined;
      hashes.push(`"${a}":"${value}"`);
    }
    fields.push(`"hashes":{${hashes.join(',')}}`);
  }
  if (m.length !== undefined) {
    if (!Number.isSafeInteger(m.length)) return undefined;
    fields.push(`"length":${m.length}`);
  }
  fields.push(`"version":${m.version}`);
  return `{${fields.join(',')}}`;
}

/** Documents made by signMetadata whose signed bytes are plain: their wire bytes are spliced. */
const plainSigned = new WeakSet<Metadata>();

export function rememberPlain(md: Metadata): void {
  plainSigned.add(md);
}

/**
 * The wire bytes of a document signMetadata made from plain signed bytes: the envelope around
 * those bytes, not a second encoding of the whole (or undefined: the generic encoder).
 */
export function plainEnvelopeBytes(md: Metadata): Uint8Array | undefined {
  if (!plainSigned.has(md) || Object.keys(md.extra).length > 0) return undefined;
  const signatures: string[] = [];
  for (const s of md.signatures) {
    if (Object.keys(s.extra).length > 0 || !PLAIN.test(s.keyid) || !PLAIN.test(s.sig)) return undefined;
    signatures.push(`{"keyid":"${s.keyid}","sig":"${s.sig}"}`);
  }
  const head = encoder.encode(`{"signatures":[${signatures.join(',')}],"signed":`);
  const signed = md.signedBytes;
  const room = signed.byteOffset;
  const buffer = signed.buffer;
  if (
    buffer instanceof ArrayBuffer &&
    withRoom.delete(buffer) &&
    room >= head.length &&
    buffer.byteLength === room + signed.length + 1
  ) {
    // Spliced bytes made with room for their envelope (SnapshotIndex.with): written around them, once.
    const out = new Uint8Array(buffer, room - head.length, head.length + signed.length + 1);
    out.set(head, 0);
    out[out.length - 1] = 0x7d; // }
    return out;
  }
  const out = new Uint8Array(head.length + signed.length + 1);
  out.set(head, 0);
  out.set(signed, head.length);
  out[out.length - 1] = 0x7d; // }
  return out;
}

/**
 * Room left before a spliced snapshot's bytes for its envelope's head: one or two signatures
 * (an ed25519 one takes 239 bytes). A larger head is written into a copy.
 */
const ENVELOPE_ROOM = 1024;

/** Buffers made with that room, until an envelope is written into it (only one may be). */
const withRoom = new WeakSet<ArrayBuffer>();

// ---------------------------------------------------------------------------------------------
// A snapshot as its bytes plus an index: a publish into one of 16,384 hash bins changes one or two
// entries, so the next snapshot's bytes are the stored ones with those entries spliced in.

const QUOTE = 0x22;
const COMMA = 0x2c;
const CLOSE = 0x7d;

/** Byte strings of the plain shape, as the scan expects them. */
const HEAD = encoder.encode('{"_type":"snapshot","expires":"');
const META = encoder.encode('","meta":{');
const HASHES = encoder.encode('":{"hashes":{"sha256":"');
const LENGTH = encoder.encode('"},"length":');
const VERSION = encoder.encode(',"version":');
const SPEC = encoder.encode(',"spec_version":"');
const SNAPSHOT_VERSION = encoder.encode('","version":');
const SHA256_HEX = 64;
const JSON_SUFFIX = encoder.encode('.json');

/** The entry of a snapshot the index holds: what the server writes for every role. */
export interface IndexedEntry {
  readonly version: number;
  readonly length: number;
  readonly sha256: string;
}

/**
 * The canonical bytes of a snapshot in the shape a server writes — every entry exactly
 * `{"hashes":{"sha256":HEX64},"length":N,"version":N}`, plain names, no extra field — and where
 * each entry lies in them: entry `i` is `"NAME":{…}` from `starts[i]` to `starts[i + 1] - 1`
 * (one comma between entries; `starts[size]` is one past the `}` that closes `meta`). Made by
 * one scan of the bytes, which refuses anything else, or from another index and a few changes
 * (`with`), whose bytes are the generic encoder's for the changed snapshot, byte for byte.
 */
export class SnapshotIndex {
  private constructor(
    /** The signed bytes: not to be changed (the index reads its entries from them). */
    readonly bytes: Uint8Array,
    private readonly starts: Uint32Array,
  ) {}

  /** The index of these canonical signed bytes, or undefined when they are not in the shape above. */
  static scan(bytes: Uint8Array): SnapshotIndex | undefined {
    const n = bytes.length;
    let at = expect(bytes, 0, HEAD);
    at = plainString(bytes, at);
    at = expect(bytes, at, META);
    if (at < 0) return undefined;
    const starts: number[] = [];
    let previous = -1;
    if (bytes[at] !== CLOSE) {
      for (;;) {
        if (bytes[at] !== QUOTE) return undefined;
        const start = at;
        at = plainString(bytes, at + 1);
        if (at < 0 || (previous >= 0 && compareNames(bytes, previous, start) >= 0)) return undefined;
        at = expect(bytes, at, HASHES);
        if (at < 0 || at + SHA256_HEX > n) return undefined;
        for (let end = at + SHA256_HEX; at < end; at++) {
          const c = bytes[at]!;
          if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return undefined;
        }
        at = integer(bytes, expect(bytes, at, LENGTH));
        at = integer(bytes, expect(bytes, at, VERSION));
        if (at < 0 || bytes[at] !== CLOSE) return undefined;
        starts.push(start);
        previous = start;
        at++;
        if (bytes[at] === COMMA) at++;
        else break;
      }
      if (bytes[at] !== CLOSE) return undefined;
    }
    at++;
    starts.push(at);
    at = plainString(bytes, expect(bytes, at, SPEC));
    at = integer(bytes, expect(bytes, at, SNAPSHOT_VERSION));
    if (at < 0 || bytes[at] !== CLOSE || at + 1 !== n) return undefined;
    return new SnapshotIndex(bytes, Uint32Array.from(starts));
  }

  /** The number of entries (`targets.json` included). */
  get size(): number {
    return this.starts.length - 1;
  }

  /** The position of entry `key`, or -(the position it would take) - 1. */
  find(key: string): number {
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKey(this.bytes, this.starts[mid]! + 1, key);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  /**
   * Whether every entry is named ROLE.json and has a positive version, as the strict parser
   * requires (the scan does not: the snapshots it indexes were parsed, or made by a server).
   */
  entriesAsParsed(): boolean {
    const b = this.bytes;
    for (let i = 0; i < this.size; i++) {
      const start = this.starts[i]!;
      const quote = b.indexOf(QUOTE, start + 1);
      if (
        quote - start - 1 <= JSON_SUFFIX.length ||
        expect(b, quote - JSON_SUFFIX.length, JSON_SUFFIX) !== quote
      )
        return false;
      // The version's digits end at the entry's `}`: a single 0 after its `:` is version 0.
      const close = this.starts[i + 1]! - 2;
      if (b[close - 1] === 0x30 && b[close - 2] === 0x3a) return false;
    }
    return true;
  }

  /** Entry `i`'s bytes, `"NAME":{…}`. */
  entryBytes(i: number): Uint8Array {
    return this.bytes.subarray(this.starts[i]!, this.starts[i + 1]! - 1);
  }

  /** Where the entries lie: from the first's `"` to the `}` that closes `meta` (empty when none). */
  get entriesSpan(): { readonly start: number; readonly end: number } {
    const end = this.starts[this.size]! - 1;
    return { start: this.size === 0 ? end : this.starts[0]!, end };
  }

  /** The key (`ROLE.json`) of entry `i`. */
  key(i: number): string {
    const start = this.starts[i]! + 1;
    return ascii(this.bytes, start, this.bytes.indexOf(QUOTE, start));
  }

  /** Entry `i`'s version, length and sha256 (read from the bytes, which the scan checked). */
  entry(i: number): IndexedEntry {
    const b = this.bytes;
    const hex = b.indexOf(QUOTE, this.starts[i]! + 1) + HASHES.length;
    let at = hex + SHA256_HEX + LENGTH.length;
    let length = 0;
    for (; b[at] !== COMMA; at++) length = length * 10 + (b[at]! - 0x30);
    let version = 0;
    for (at += VERSION.length; b[at] !== CLOSE; at++) version = version * 10 + (b[at]! - 0x30);
    return { version, length, sha256: ascii(b, hex, hex + SHA256_HEX) };
  }

  /** Entry `i`'s version alone: the digits before the `}` that ends it. */
  version(i: number): number {
    const b = this.bytes;
    const close = this.starts[i + 1]! - 2;
    let at = close;
    while (b[at - 1] !== 0x3a) at--; // :
    let version = 0;
    for (; at < close; at++) version = version * 10 + (b[at]! - 0x30);
    return version;
  }

  /** Every entry as a MetaFile, in a new record (made by jsonObject): the generic path's meta. */
  meta(): Record<string, MetaFile> {
    const out: Record<string, MetaFile> = jsonObject();
    for (let i = 0; i < this.size; i++) {
      const { version, length, sha256 } = this.entry(i);
      out[this.key(i)] = { version, length, hashes: { sha256 }, extra: {} };
    }
    return out;
  }

  /**
   * The index of the snapshot with these `expires`, `specVersion` and `version` and these entries
   * set (or removed, undefined): the unchanged entries' bytes copied as they are. Undefined when
   * a field or a new entry is not in the shape the index holds (the generic encoder then).
   */
  with(
    head: { readonly expires: string; readonly specVersion: string; readonly version: number },
    changes: ReadonlyMap<string, MetaFile | undefined>,
  ): SnapshotIndex | undefined {
    if (!PLAIN.test(head.expires) || !PLAIN.test(head.specVersion) || !Number.isSafeInteger(head.version))
      return undefined;
    const keys = [...changes.keys()].sort();
    if (!keys.every((key) => PLAIN.test(key))) return undefined;
    // In output order: an entry's new bytes, or a run [from, to) of this index's entries.
    const pieces: (Uint8Array | readonly [number, number])[] = [];
    let next = 0;
    for (const key of keys) {
      const change = changes.get(key);
      let encoded: Uint8Array | undefined;
      if (change !== undefined) {
        const text = serverEntry(change);
        if (text === undefined) return undefined;
        encoded = encoder.encode(`"${key}":${text}`);
      }
      const found = this.find(key);
      const at = found >= 0 ? found : -found - 1;
      if (at > next) pieces.push([next, at]);
      if (encoded !== undefined) pieces.push(encoded);
      next = found >= 0 ? at + 1 : at;
    }
    if (next < this.size) pieces.push([next, this.size]);
    const first = encoder.encode(`{"_type":"snapshot","expires":"${head.expires}","meta":{`);
    const last = encoder.encode(`},"spec_version":"${head.specVersion}","version":${head.version}}`);
    let total = first.length + last.length + Math.max(0, pieces.length - 1);
    let count = 0;
    for (const piece of pieces) {
      if (piece instanceof Uint8Array) {
        total += piece.length;
        count++;
      } else {
        total += this.starts[piece[1]]! - 1 - this.starts[piece[0]]!;
        count += piece[1] - piece[0];
      }
    }
    // Room before the bytes for the envelope's head and after them for its `}` (plainEnvelopeBytes).
    const room = new Uint8Array(ENVELOPE_ROOM + total + 1);
    withRoom.add(room.buffer);
    const out = room.subarray(ENVELOPE_ROOM, ENVELOPE_ROOM + total);
    const starts = new Uint32Array(count + 1);
    out.set(first, 0);
    let at = first.length;
    let k = 0;
    for (let p = 0; p < pieces.length; p++) {
      if (p > 0) out[at++] = COMMA;
      const piece = pieces[p]!;
      if (piece instanceof Uint8Array) {
        starts[k++] = at;
        out.set(piece, at);
        at += piece.length;
      } else {
        const [from, to] = piece;
        const base = this.starts[from]!;
        const end = this.starts[to]! - 1;
        for (let i = from; i < to; i++) starts[k++] = at + this.starts[i]! - base;
        out.set(this.bytes.subarray(base, end), at);
        at += end - base;
      }
    }
    starts[count] = at + 1;
    out.set(last, at);
    return new SnapshotIndex(out, starts);
  }
}

/** The one entry shape the index holds, encoded; undefined for any other. */
function serverEntry(m: MetaFile): string | undefined {
  if (!Number.isSafeInteger(m.version) || m.version < 0 || m.hashes === undefined) return undefined;
  if (!Number.isSafeInteger(m.length) || m.length! < 0) return undefined;
  for (const _ in m.extra) return undefined;
  const algorithms = Object.keys(m.hashes);
  const sha256 = m.hashes.sha256;
  if (algorithms.length !== 1 || sha256 === undefined || sha256.length !== SHA256_HEX || !HEX.test(sha256))
    return undefined;
  return `{"hashes":{"sha256":"${sha256}"},"length":${m.length},"version":${m.version}}`;
}

/** After `want` at `at`: the next offset, or -1. */
function expect(bytes: Uint8Array, at: number, want: Uint8Array): number {
  if (at < 0 || at + want.length > bytes.length) return -1;
  for (let i = 0; i < want.length; i++) if (bytes[at + i] !== want[i]) return -1;
  return at + want.length;
}

/** After a string of PLAIN characters and its closing quote, from `at` (inside it): the offset of that quote, or -1. */
function plainString(bytes: Uint8Array, at: number): number {
  if (at < 0) return -1;
  for (; at < bytes.length; at++) {
    const c = bytes[at]!;
    if (c === QUOTE) return at;
    if (c < 0x20 || c > 0x7e || c === 0x5c) return -1;
  }
  return -1;
}

/** After a canonical non-negative safe integer from `at`: the next offset, or -1. */
function integer(bytes: Uint8Array, at: number): number {
  if (at < 0) return -1;
  let end = at;
  let value = 0;
  for (; end < bytes.length && bytes[end]! >= 0x30 && bytes[end]! <= 0x39; end++) {
    value = value * 10 + (bytes[end]! - 0x30);
  }
  if (end === at || (bytes[at] === 0x30 && end > at + 1) || !Number.isSafeInteger(value)) return -1;
  return end;
}

/** Compares the names (quoted, from these offsets) byte by byte: canonical JSON's order for ASCII. */
function compareNames(bytes: Uint8Array, a: number, b: number): number {
  for (let i = 1; ; i++) {
    const x = bytes[a + i]!;
    const y = bytes[b + i]!;
    if (x !== y) return x === QUOTE ? -1 : y === QUOTE ? 1 : x - y;
    if (x === QUOTE) return 0;
  }
}

/** Compares the name at `at` (up to its quote) with `key`, by UTF-16 code unit (ASCII names). */
function compareKey(bytes: Uint8Array, at: number, key: string): number {
  for (let i = 0; ; i++) {
    const x = bytes[at + i]!;
    if (i === key.length) return x === QUOTE ? 0 : 1;
    if (x === QUOTE) return -1;
    const y = key.charCodeAt(i);
    if (x !== y) return x - y;
  }
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}

/** The index of a snapshot object: made with it (indexedSnapshot), or scanned once (null: not indexable). */
const indexes = new WeakMap<Snapshot, SnapshotIndex | null>();

/**
 * The snapshot whose canonical signed bytes `index` holds, with these fields (the index's own):
 * its `meta` made from the bytes on first read only (an own getter: a copy of the object reads it).
 */
export function indexedSnapshot(
  index: SnapshotIndex,
  fields: { specVersion: string; version: number; expires: string; expiresAt: number },
): Snapshot {
  let meta: Record<string, MetaFile> | undefined;
  const snapshot: Snapshot = {
    type: 'snapshot',
    specVersion: fields.specVersion,
    version: fields.version,
    expires: fields.expires,
    expiresAt: fields.expiresAt,
    extra: {},
    get meta() {
      meta ??= index.meta();
      return meta;
    },
  };
  indexes.set(snapshot, index);
  return snapshot;
}

/**
 * The index of a stored snapshot: the one it was made with, else its signed bytes scanned once
 * (when they are the served form, or signMetadata made them); undefined when they are not in
 * the shape a server writes (the generic path then).
 */
export function snapshotIndexOf(stored: {
  readonly metadata: Metadata<Snapshot>;
  readonly servedForm?: boolean;
}): SnapshotIndex | undefined {
  const signed = stored.metadata.signed;
  let index = indexes.get(signed);
  if (index === undefined) {
    // A parsed envelope says whether its bytes are the served form (SignedEnvelope.servedForm);
    // signMetadata's own canonical bytes are (a snapshot this process signed the general way).
    const served = stored.servedForm === true || plainSigned.has(stored.metadata);
    index = (served ? SnapshotIndex.scan(stored.metadata.signedBytes) : undefined) ?? null;
    indexes.set(signed, index);
  }
  return index ?? undefined;
}
