/**
 * parseSignedEnvelope (metadata.ts): what it answers about the bytes is fixed by the parse, so a
 * caller that changes the parsed metadata afterwards cannot make a later served-form check, the
 * signed bytes or an encoding wrong (the fragility of the side tables it replaced, ADR 0011).
 */
import { createHash } from 'node:crypto';
import { buildRepo, bytesOf, codeOf, sign, testCrypto } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import {
  canonicalBytes,
  canonicalJson,
  isCanonical,
  type JsonObject,
  parseJson,
  utf8Encode,
} from './json.js';
import {
  metadataToJson,
  parseMetadata,
  parseSignedEnvelope,
  SignedEnvelope,
  serializeMetadata,
  sha256Of,
  type TargetFile,
  type Targets,
} from './metadata.js';
import { newTargets, targetFileFor } from './repository.js';
import { parseUploaded } from './update.js';
import { verifyMetadataSignatures } from './verify.js';

const repo = buildRepo();
const key = repo.keys.targets;
const roleKeys = { role: 'targets', keyids: [key.keyid], threshold: 1, keys: repo.root.signed.keys };

/** Signed targets with `n` entries (past 256, the parser lists the keys of the targets object). */
function targetsBytes(n: number): Uint8Array {
  const targets: Record<string, TargetFile> = {};
  for (let i = 0; i < n; i++)
    targets[`t/${String(i).padStart(5, '0')}`] = targetFileFor(testCrypto, utf8Encode(`${i}`));
  return bytesOf(sign(newTargets({ expires: '2030-01-01T00:00:00Z', targets }), key));
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const served = (bytes: Uint8Array) => isCanonical(bytes, parseJson(bytes));

describe('parseSignedEnvelope', () => {
  it('answers servedForm as a full re-encoding does, for every way of writing a document', () => {
    const doc = metadataToJson(repo.targets);
    const pem = metadataToJson(repo.root); // holds PEM-free ed25519 keys: add a control character
    (pem.signed as JsonObject).x_note = 'line one\nline two';
    const writings: [string, Uint8Array, 'targets' | 'root'][] = [
      ['served form', bytesOf(repo.targets), 'targets'],
      ['pretty-printed', utf8Encode(JSON.stringify(doc, null, 2)), 'targets'],
      ['canonical JSON with a raw newline', canonicalBytes(pem), 'root'],
      [
        'served form with an escaped newline',
        serializeMetadata(parseMetadata('root', canonicalBytes(pem))),
        'root',
      ],
      [
        'envelope keys unsorted',
        utf8Encode(`{"signed":${canonicalJson(doc.signed)},"signatures":[]}`),
        'targets',
      ],
      ['an unknown envelope field', canonicalBytes({ ...doc, x_env: 1 }), 'targets'],
      [
        'a needless escape in signatures',
        utf8Encode(canonicalJson(doc).replace('"keyid"', '"key\\u0069d"')),
        'targets',
      ],
    ];
    for (const [what, bytes, type] of writings) {
      expect(parseSignedEnvelope(type, bytes).servedForm, what).toBe(served(bytes));
    }
    expect(writings.map(([, b]) => served(b))).toEqual([true, false, false, true, false, true, false]);
  });

  it('gives the canonical signed bytes however the document is written, even when signed is not canonical', () => {
    const doc = metadataToJson(repo.targets);
    for (const bytes of [bytesOf(repo.targets), utf8Encode(JSON.stringify(doc, null, 3))]) {
      const envelope = parseSignedEnvelope('targets', bytes);
      expect(Buffer.from(envelope.metadata.signedBytes).equals(Buffer.from(repo.targets.signedBytes))).toBe(
        true,
      );
      expect(verifyMetadataSignatures(envelope.metadata, { ...roleKeys, crypto: testCrypto }).verified).toBe(
        true,
      );
    }
  });

  it('a caller that adds, replaces or removes targets afterwards changes neither answer, and encodes what it holds', () => {
    for (const n of [3, 300]) {
      const bytes = targetsBytes(n);
      const envelope = parseSignedEnvelope('targets', bytes);
      const before = Buffer.from(envelope.metadata.signedBytes);
      // The parsed record is the parser's own object, taken over: change it the way a careless
      // caller would (the types say read-only; nothing at run time stops this).
      const targets = envelope.metadata.signed.targets as Record<string, TargetFile>;
      const first = Object.keys(targets)[0]!;
      targets['zz/added'] = targetFileFor(testCrypto, utf8Encode('new'));
      delete targets[first];
      (targets[Object.keys(targets)[0]!] as { length: number }).length = 1;
      expect(envelope.servedForm).toBe(true);
      expect(Buffer.from(envelope.metadata.signedBytes).equals(before)).toBe(true);
      expect(verifyMetadataSignatures(envelope.metadata, { ...roleKeys, crypto: testCrypto }).verified).toBe(
        true,
      );
      // An encoding now is of what the caller holds: the added key in, the removed one out.
      const again = parseMetadata('targets', serializeMetadata(envelope.metadata));
      expect(Object.keys(again.signed.targets)).toContain('zz/added');
      expect(Object.keys(again.signed.targets)).not.toContain(first);
      expect(Object.keys(again.signed.targets)).toHaveLength(n);
      // A new parse of the same bytes is untouched by all of it.
      const fresh = parseSignedEnvelope('targets', bytes);
      expect(Object.keys(fresh.metadata.signed.targets)).toHaveLength(n);
      expect(Object.keys(fresh.metadata.signed.targets)).toContain(first);
      expect(Buffer.from(serializeMetadata(fresh.metadata)).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('parseUploaded answers from the parse: a changed document cannot pass or fail the check later', () => {
    const bytes = targetsBytes(300);
    const stored = parseUploaded('targets', bytes, 'targets');
    expect(stored).toBeInstanceOf(SignedEnvelope);
    (stored.metadata.signed.targets as Record<string, TargetFile>)['zz/added'] = targetFileFor(
      testCrypto,
      utf8Encode('x'),
    );
    expect((stored as SignedEnvelope<Targets>).servedForm).toBe(true);
    expect(stored.bytes).toBe(bytes);
    const pretty = utf8Encode(JSON.stringify(JSON.parse(Buffer.from(bytes).toString()), null, 1));
    expect(codeOf(() => parseUploaded('targets', pretty, 'targets'))).toBe('NON_CANONICAL');
  });

  it('keeps the strict refusals and their codes', () => {
    const text = Buffer.from(bytesOf(repo.targets)).toString();
    const cases: [string, string][] = [
      [text.replace('{"signatures"', '{"signed":{},"signatures"'), 'INVALID_JSON'], // duplicate key
      [text.replace('"version":1', '"version":1.0'), 'INVALID_JSON'],
      [`${'['.repeat(70)}${']'.repeat(70)}`, 'INVALID_JSON'],
      ['{"signed":[],"signatures":[]}', 'INVALID_METADATA'],
      ['{"signatures":[]}', 'INVALID_METADATA'],
      [text.replace('"_type":"targets"', '"_type":"root"'), 'WRONG_TYPE'],
    ];
    for (const [input, code] of cases) {
      expect(
        codeOf(() => parseSignedEnvelope('targets', utf8Encode(input))),
        input.slice(0, 40),
      ).toBe(code);
    }
    expect(codeOf(() => parseSignedEnvelope('targets', new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])))).toBe(
      'INVALID_JSON',
    );
  });

  it('knows the sha256 of its bytes: given by a store, or hashed once on first use', () => {
    const bytes = targetsBytes(3);
    const parsed = parseSignedEnvelope('targets', bytes);
    expect(parsed.sha256(testCrypto)).toBe(sha256(bytes));
    expect(sha256Of(testCrypto, parsed)).toBe(sha256(bytes));
    expect(sha256Of(testCrypto, parseSignedEnvelope('targets', bytes, { sha256: 'given' }))).toBe('given');
    // A stored role that is not an envelope is hashed each time it is asked.
    expect(sha256Of(testCrypto, { bytes })).toBe(sha256(bytes));
  });

  it('takes text as well as bytes, with the same answers', () => {
    const bytes = bytesOf(repo.targets);
    const fromText = parseSignedEnvelope('targets', Buffer.from(bytes).toString());
    expect(fromText.servedForm).toBe(true);
    expect(Buffer.from(fromText.bytes).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(fromText.metadata.signedBytes).equals(Buffer.from(repo.targets.signedBytes))).toBe(
      true,
    );
  });
});
