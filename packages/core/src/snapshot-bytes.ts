/**
 * The canonical bytes of a snapshot in the shape a server writes (every entry version, length
 * and hashes; no extra fields; strings that need no escape), written in one pass: at 16,384 hash
 * bins the generic encoder's objects cost a publish tens of milliseconds (ADR 0015). Internal to
 * core: signMetadata and serializeMetadata use it, and a test holds it to the generic encoder.
 */
import type { Metadata, MetaFile, Snapshot } from './metadata.js';

/** Printable ASCII but `"` and `\`: the same characters in canonical JSON, wire JSON and as typed. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

const encoder = new TextEncoder();

/** The canonical bytes of `s`, or undefined when it is not in the plain shape (the generic encoder then). */
export function plainSnapshotBytes(s: Snapshot): Uint8Array | undefined {
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
  const out = new Uint8Array(head.length + md.signedBytes.length + 1);
  out.set(head, 0);
  out.set(md.signedBytes, head.length);
  out[out.length - 1] = 0x7d; // }
  return out;
}
