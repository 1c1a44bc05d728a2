import { buildRepo, bytesOf, sign, testCrypto } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, isTufaError, TufaError } from './errors.js';
import { canonicalBytes, type JsonObject, parseJson, utf8Encode } from './json.js';
import {
  compareInstants,
  formatExpires,
  instantCeilingMs,
  MAX_SIGNATURES,
  type MetadataType,
  metadataFromJson,
  metadataToJson,
  parseExpires,
  parseMetadata,
  parseRfc3339,
  serializeMetadata,
} from './metadata.js';
import { verifyMetadataSignatures } from './verify.js';

const repo = buildRepo();
const docs: Record<MetadataType, JsonObject> = {
  root: metadataToJson(repo.root),
  timestamp: metadataToJson(repo.timestamp),
  snapshot: metadataToJson(repo.snapshot),
  targets: metadataToJson(repo.targets),
};

/** A deep copy of a fixture document, changed by `edit`, as bytes. */
function edited(type: MetadataType, edit: (doc: any) => void): Uint8Array {
  const doc = JSON.parse(JSON.stringify(docs[type]));
  edit(doc);
  return canonicalBytes(doc);
}

function refusal(type: MetadataType, bytes: Uint8Array): TufaError {
  try {
    parseMetadata(type, bytes);
  } catch (err) {
    if (err instanceof TufaError) return err;
    throw err;
  }
  throw new Error('parsed without a refusal');
}

describe('parseMetadata accepts and round-trips', () => {
  it.each(['root', 'timestamp', 'snapshot', 'targets'] as const)(
    '%s: serialize(parse(bytes)) is bytes',
    (type) => {
      const bytes = canonicalBytes(docs[type]);
      expect(Buffer.from(serializeMetadata(parseMetadata(type, bytes))).equals(Buffer.from(bytes))).toBe(
        true,
      );
    },
  );

  it('signedBytes are the canonical bytes of signed however the document was written', () => {
    const canonical = canonicalBytes(docs.targets.signed);
    const spaced = Buffer.from(JSON.stringify(docs.targets, null, 2));
    expect(Buffer.from(parseMetadata('targets', spaced).signedBytes).equals(Buffer.from(canonical))).toBe(
      true,
    );
    const bytes = canonicalBytes(docs.targets);
    expect(Buffer.from(parseMetadata('targets', bytes).signedBytes).equals(Buffer.from(canonical))).toBe(
      true,
    );
  });

  it('metadataFromJson reads a parsed document as it is now, keys added or removed since', () => {
    const doc = JSON.parse(JSON.stringify(docs.targets));
    const entry = Object.values(doc.signed.targets)[0];
    const many: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++) many[`t${String(i).padStart(3, '0')}`] = entry;
    doc.signed.targets = many;
    const parsed = parseJson(canonicalBytes(doc)) as any;
    parsed.signed.targets.zzz = JSON.parse(JSON.stringify(entry));
    delete parsed.signed.targets.t000;
    const md = metadataFromJson('targets', parsed);
    expect(Object.keys(md.signed.targets)).toContain('zzz');
    expect(Object.keys(md.signed.targets)).not.toContain('t000');
    expect(Object.keys(md.signed.targets)).toHaveLength(300);
  });

  it('metadataFromJson leaves the caller’s document as it was', () => {
    const doc = JSON.parse(JSON.stringify(docs.targets));
    const before = JSON.stringify(doc);
    const md = metadataFromJson('targets', doc);
    expect(JSON.stringify(doc)).toBe(before);
    expect(Object.keys(md.signed.targets)).toEqual(Object.keys(doc.signed.targets));
  });

  it('target names like __proto__ and constructor are ordinary entries; absent names find nothing', () => {
    const doc = JSON.parse(JSON.stringify(docs.targets));
    const entry = Object.values(doc.signed.targets)[0];
    doc.signed.targets = JSON.parse(
      `{"__proto__":${JSON.stringify(entry)},"constructor":${JSON.stringify(entry)}}`,
    );
    for (const md of [parseMetadata('targets', canonicalBytes(doc)), metadataFromJson('targets', doc)]) {
      const targets = md.signed.targets as Record<string, unknown>;
      expect(Object.keys(targets).sort()).toEqual(['__proto__', 'constructor']);
      expect(targets.toString).toBeUndefined();
      expect(targets.hasOwnProperty).toBeUndefined();
      const name: string = 'constructor';
      const hashes = md.signed.targets[name]!.hashes as Record<string, unknown>;
      expect(hashes.valueOf).toBeUndefined();
      expect('toString' in targets).toBe(false);
    }
  });

  it('keeps unknown fields at every level, and signatures over them still verify', () => {
    const targets = repo.targets.signed;
    const signedDoc = JSON.parse(JSON.stringify(docs.targets.signed));
    signedDoc.x_top = { nested: [1, 'two'] };
    signedDoc.targets['app/v1'].x_file = true;
    signedDoc.targets['app/v1'].custom = { mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    signedDoc.delegations.x_del = 'd';
    signedDoc.delegations.roles[0].x_role = 1;
    const keyid = Object.keys(signedDoc.delegations.keys)[0]!;
    signedDoc.delegations.keys[keyid].x_key = 'k';
    signedDoc.delegations.keys[keyid].keyval.x_keyval = 'kv';
    const reparsed = parseMetadata(
      'targets',
      canonicalBytes({ signed: signedDoc, signatures: [], x_env: 1 }),
    );
    const resigned = sign(reparsed.signed, repo.keys.targets);
    const bytes = bytesOf(resigned);
    const parsed = parseMetadata('targets', bytes);
    expect(parsed.signed.extra).toEqual({ x_top: { nested: [1, 'two'] } });
    expect(parsed.signed.targets['app/v1']!.extra).toEqual({ x_file: true });
    expect(parsed.signed.delegations!.extra).toEqual({ x_del: 'd' });
    expect(parsed.signed.delegations!.roles[0]!.extra).toEqual({ x_role: 1 });
    expect(parsed.signed.delegations!.keys[keyid]!.extra).toEqual({ x_key: 'k' });
    expect(Buffer.from(serializeMetadata(parsed)).equals(Buffer.from(bytes))).toBe(true);
    const result = verifyMetadataSignatures(parsed, {
      crypto: testCrypto,
      role: 'targets',
      keyids: [repo.keys.targets.keyid],
      threshold: 1,
      keys: repo.root.signed.keys,
    });
    expect(result.verified).toBe(true);
    expect(targets.extra).toEqual({});
  });

  it('reads documents that are not canonical (pretty-printed, as python-tuf writes)', () => {
    const pretty = new TextEncoder().encode(JSON.stringify(docs.root, null, 2));
    const parsed = parseMetadata('root', pretty);
    expect(parsed.signedBytes).toEqual(repo.root.signedBytes);
  });

  it('accepts spec_version 1.0 and 1.0.31, and the optional fields absent', () => {
    expect(() =>
      parseMetadata(
        'root',
        edited('root', (d) => (d.signed.spec_version = '1.0')),
      ),
    ).not.toThrow();
    const noConsistent = parseMetadata(
      'root',
      edited('root', (d) => delete d.signed.consistent_snapshot),
    );
    expect(noConsistent.signed.consistentSnapshot).toBeUndefined();
    expect(metadataToJson(noConsistent).signed).not.toHaveProperty('consistent_snapshot');
    const bare = parseMetadata(
      'snapshot',
      edited('snapshot', (d) => {
        for (const m of Object.values<any>(d.signed.meta)) {
          delete m.length;
          delete m.hashes;
        }
      }),
    );
    expect(bare.signed.meta['targets.json']).toEqual({ version: 1, extra: {} });
  });
});

describe('parseMetadata refuses, naming the field', () => {
  const cases: [string, MetadataType, (d: any) => void, ErrorCode, RegExp][] = [
    ['wrong _type', 'root', (d) => (d.signed._type = 'targets'), 'WRONG_TYPE', /_type must be "root"/],
    ['missing _type', 'timestamp', (d) => delete d.signed._type, 'WRONG_TYPE', /_type/],
    [
      'spec_version 2',
      'root',
      (d) => (d.signed.spec_version = '2.0.0'),
      'UNSUPPORTED_SPEC_VERSION',
      /2\.0\.0/,
    ],
    ['spec_version text', 'root', (d) => (d.signed.spec_version = 'one'), 'UNSUPPORTED_SPEC_VERSION', /one/],
    [
      'spec_version number',
      'root',
      (d) => (d.signed.spec_version = 1),
      'INVALID_METADATA',
      /spec_version must be a string/,
    ],
    [
      'version 0',
      'targets',
      (d) => (d.signed.version = 0),
      'INVALID_METADATA',
      /signed\.version must be a positive integer/,
    ],
    ['version string', 'targets', (d) => (d.signed.version = '2'), 'INVALID_METADATA', /signed\.version/],
    ['version negative', 'snapshot', (d) => (d.signed.version = -3), 'INVALID_METADATA', /signed\.version/],
    [
      'expires offset without minutes',
      'root',
      (d) => (d.signed.expires = '2030-01-01T00:00:00+01'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'expires without an offset',
      'root',
      (d) => (d.signed.expires = '2030-01-01T00:00:00'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'expires with an empty fraction',
      'root',
      (d) => (d.signed.expires = '2030-01-01T00:00:00.Z'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'expires with a space for T',
      'root',
      (d) => (d.signed.expires = '2030-01-01 00:00:00Z'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'expires offset hour 24',
      'root',
      (d) => (d.signed.expires = '2030-01-01T00:00:00+24:00'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'expires leap second',
      'root',
      (d) => (d.signed.expires = '2016-12-31T23:59:60Z'),
      'INVALID_METADATA',
      /expires/,
    ],
    ['expires date only', 'root', (d) => (d.signed.expires = '2030-01-01'), 'INVALID_METADATA', /expires/],
    [
      'expires impossible date',
      'root',
      (d) => (d.signed.expires = '2030-02-30T00:00:00Z'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'expires 25th hour',
      'root',
      (d) => (d.signed.expires = '2030-01-01T24:00:00Z'),
      'INVALID_METADATA',
      /expires/,
    ],
    [
      'missing expires',
      'timestamp',
      (d) => delete d.signed.expires,
      'INVALID_METADATA',
      /expires must be a string/,
    ],
    [
      'threshold 0',
      'root',
      (d) => (d.signed.roles.root.threshold = 0),
      'INVALID_METADATA',
      /roles\.root\.threshold/,
    ],
    [
      'keyids repeated in a role',
      'root',
      (d) => d.signed.roles.targets.keyids.push(d.signed.roles.targets.keyids[0]),
      'INVALID_METADATA',
      /roles\.targets\.keyids lists/,
    ],
    [
      'a top-level role missing',
      'root',
      (d) => delete d.signed.roles.snapshot,
      'INVALID_METADATA',
      /roles\.snapshot is missing/,
    ],
    [
      'an unknown role in root',
      'root',
      (d) => (d.signed.roles.mirror = d.signed.roles.root),
      'INVALID_METADATA',
      /not a top-level role/,
    ],
    [
      'key without public',
      'root',
      (d) => delete Object.values<any>(d.signed.keys)[0].keyval.public,
      'INVALID_METADATA',
      /keyval\.public/,
    ],
    [
      'consistent_snapshot string',
      'root',
      (d) => (d.signed.consistent_snapshot = 'yes'),
      'INVALID_METADATA',
      /consistent_snapshot must be a boolean/,
    ],
    [
      'timestamp meta extra entry',
      'timestamp',
      (d) => (d.signed.meta['targets.json'] = { version: 1 }),
      'INVALID_METADATA',
      /exactly one entry/,
    ],
    [
      'timestamp meta missing',
      'timestamp',
      (d) => (d.signed.meta = {}),
      'INVALID_METADATA',
      /snapshot\.json/,
    ],
    [
      'meta version missing',
      'timestamp',
      (d) => delete d.signed.meta['snapshot.json'].version,
      'INVALID_METADATA',
      /snapshot\.json\.version/,
    ],
    [
      'meta length negative',
      'timestamp',
      (d) => (d.signed.meta['snapshot.json'].length = -1),
      'INVALID_METADATA',
      /length must be a non-negative integer/,
    ],
    [
      'meta hash uppercase',
      'timestamp',
      (d) =>
        (d.signed.meta['snapshot.json'].hashes.sha256 =
          d.signed.meta['snapshot.json'].hashes.sha256.toUpperCase()),
      'INVALID_METADATA',
      /hashes\.sha256 must be 64 lowercase hex/,
    ],
    [
      'meta hash short',
      'timestamp',
      (d) => (d.signed.meta['snapshot.json'].hashes.sha256 = 'abcd'),
      'INVALID_METADATA',
      /sha256/,
    ],
    [
      'meta hashes empty',
      'timestamp',
      (d) => (d.signed.meta['snapshot.json'].hashes = {}),
      'INVALID_METADATA',
      /at least one hash/,
    ],
    [
      'snapshot without targets.json',
      'snapshot',
      (d) => delete d.signed.meta['targets.json'],
      'INVALID_METADATA',
      /targets\.json/,
    ],
    [
      'snapshot meta name',
      'snapshot',
      (d) => (d.signed.meta.targets = { version: 1 }),
      'INVALID_METADATA',
      /ROLE\.json/,
    ],
    [
      'target length missing',
      'targets',
      (d) => delete d.signed.targets['app/v1'].length,
      'INVALID_METADATA',
      /app\/v1\.length/,
    ],
    [
      'target hashes missing',
      'targets',
      (d) => delete d.signed.targets['app/v1'].hashes,
      'INVALID_METADATA',
      /app\/v1\.hashes/,
    ],
    [
      'target sha512 wrong length',
      'targets',
      (d) => (d.signed.targets['app/v1'].hashes.sha512 = 'ab'),
      'INVALID_METADATA',
      /sha512 must be 128/,
    ],
    [
      'empty target path',
      'targets',
      (d) => (d.signed.targets[''] = d.signed.targets['app/v1']),
      'INVALID_METADATA',
      /empty target path/,
    ],
    [
      'delegation with both paths and prefixes',
      'targets',
      (d) => (d.signed.delegations.roles[0].path_hash_prefixes = ['ab']),
      'INVALID_METADATA',
      /exactly one of paths/,
    ],
    [
      'delegation with neither',
      'targets',
      (d) => delete d.signed.delegations.roles[0].paths,
      'INVALID_METADATA',
      /exactly one of paths/,
    ],
    [
      'delegation to a top-level name',
      'targets',
      (d) => (d.signed.delegations.roles[0].name = 'root'),
      'INVALID_METADATA',
      /top-level role name/,
    ],
    [
      'delegation named twice',
      'targets',
      (d) => d.signed.delegations.roles.push(d.signed.delegations.roles[0]),
      'INVALID_METADATA',
      /more than once/,
    ],
    [
      'delegation without terminating',
      'targets',
      (d) => delete d.signed.delegations.roles[0].terminating,
      'INVALID_METADATA',
      /terminating must be a boolean/,
    ],
    [
      'delegation threshold 0',
      'targets',
      (d) => (d.signed.delegations.roles[0].threshold = 0),
      'INVALID_METADATA',
      /threshold/,
    ],
    [
      'hash prefix not hex',
      'targets',
      (d) => {
        delete d.signed.delegations.roles[0].paths;
        d.signed.delegations.roles[0].path_hash_prefixes = ['zz'];
      },
      'INVALID_METADATA',
      /path_hash_prefixes\[0\]/,
    ],
    [
      'delegations roles not an array',
      'targets',
      (d) => (d.signed.delegations.roles = {}),
      'INVALID_METADATA',
      /roles must be an array/,
    ],
    [
      'signatures not an array',
      'root',
      (d) => (d.signatures = {}),
      'INVALID_METADATA',
      /signatures must be an array/,
    ],
    [
      'signature without sig',
      'root',
      (d) => delete d.signatures[0].sig,
      'INVALID_METADATA',
      /signatures\[0\]\.sig/,
    ],
    ['signed not an object', 'root', (d) => (d.signed = []), 'INVALID_METADATA', /signed must be an object/],
  ];

  it.each(cases)('%s', (_name, type, edit, code, message) => {
    const err = refusal(type, edited(type, edit));
    expect(err.code).toBe(code);
    expect(err.role).toBe(type);
    expect(err.message).toMatch(message);
  });

  it('refuses a document that is not an object, and bad JSON', () => {
    expect(refusal('root', new TextEncoder().encode('[]')).code).toBe('INVALID_METADATA');
    expect(refusal('root', new TextEncoder().encode('{"signed":')).code).toBe('INVALID_JSON');
  });

  it('names a delegated role in messages when asked to', () => {
    try {
      parseMetadata(
        'targets',
        edited('targets', (d) => (d.signed.version = 0)),
        { role: 'releases' },
      );
      expect.unreachable();
    } catch (err) {
      expect((err as TufaError).role).toBe('releases');
      expect((err as TufaError).message).toMatch(/^releases: /);
    }
  });
});

describe('a refusal quotes at most the start of a long value', () => {
  it('the first 77 characters of its JSON, whatever its length (a 30 MiB string is not encoded whole)', () => {
    const found = (value: string) => {
      try {
        parseMetadata('targets', utf8Encode(`{"signatures":[],"signed":${JSON.stringify(value)}}`));
        return 'accepted';
      } catch (err) {
        return isTufaError(err, 'INVALID_METADATA') ? err.found : String(err);
      }
    };
    expect(found('a'.repeat(30 * 1024 * 1024))).toBe(`"${'a'.repeat(76)}...`);
    // Escapes and a surrogate pair cut at the 100th unit read as the whole string's do.
    const tricky = `${'\\"'.repeat(30)}${'x'.repeat(39)}😀${'y'.repeat(200)}`;
    expect(found(tricky)).toBe(`${JSON.stringify(tricky).slice(0, 77)}...`);
    expect(found('short')).toBe('"short"');
    expect(found('b'.repeat(79))).toBe(JSON.stringify('b'.repeat(79)).slice(0, 77) + '...');
  });
});

describe('expires', () => {
  it('parses and formats the spec format', () => {
    expect(parseExpires('2030-01-02T03:04:05Z')).toBe(Date.UTC(2030, 0, 2, 3, 4, 5));
    expect(formatExpires(Date.UTC(2030, 0, 2, 3, 4, 5, 999))).toBe('2030-01-02T03:04:05Z');
    expect(parseExpires('2030-1-02T03:04:05Z')).toBeUndefined();
    expect(parseExpires('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseExpires('2023-02-29T00:00:00Z')).toBeUndefined();
  });
});

describe('expires as other repositories write it (RFC 3339)', () => {
  const instant = (v: string) => {
    const i = parseRfc3339(v);
    if (i === undefined) throw new Error(`not RFC 3339: ${v}`);
    return i;
  };

  it("reads Sigstore's early root expiries: an offset with a fraction, and nanoseconds", () => {
    // 13:28:12.99008 at -06:00 is 19:28:12.99008 UTC.
    expect(instant('2021-12-18T13:28:12.99008-06:00')).toEqual({
      epochSeconds: Date.UTC(2021, 11, 18, 19, 28, 12) / 1000,
      fraction: '99008',
    });
    expect(instantCeilingMs(instant('2021-12-18T13:28:12.99008-06:00'))).toBe(
      Date.UTC(2021, 11, 18, 19, 28, 12, 991),
    );
    expect(instant('2022-05-11T19:09:02.663975009Z')).toEqual({
      epochSeconds: Date.UTC(2022, 4, 11, 19, 9, 2) / 1000,
      fraction: '663975009',
    });
    const root = parseMetadata(
      'root',
      edited('root', (d) => (d.signed.expires = '2021-12-18T13:28:12.99008-06:00')),
    );
    expect(root.signed.expires).toBe('2021-12-18T13:28:12.99008-06:00');
  });

  it('compares instants exactly, past the millisecond', () => {
    const a = instant('2030-01-01T00:00:00.000000001Z');
    const b = instant('2030-01-01T00:00:00.000000002Z');
    expect(compareInstants(a, b)).toBe(-1);
    expect(compareInstants(b, a)).toBe(1);
    expect(compareInstants(instant('2030-01-01T01:00:00.50+01:00'), instant('2030-01-01T00:00:00.5z'))).toBe(
      0,
    );
    expect(
      compareInstants(instant('2029-12-31T23:59:59.9999999999-00:00'), instant('2030-01-01T00:00:00Z')),
    ).toBe(-1);
    // A clock gives whole milliseconds: a nanosecond past one is not before the next.
    const t = Date.UTC(2030, 0, 1);
    expect(instantCeilingMs(a)).toBe(t + 1);
    expect(instantCeilingMs(instant('2030-01-01T00:00:00.001Z'))).toBe(t + 1);
    expect(instantCeilingMs(instant('2030-01-01T00:00:00.0010000Z'))).toBe(t + 1);
    expect(instantCeilingMs(instant('2030-01-01T00:00:00Z'))).toBe(t);
  });

  it('reads offsets across the day, month and year', () => {
    expect(instant('2030-01-01T00:30:00+01:00').epochSeconds).toBe(Date.UTC(2029, 11, 31, 23, 30) / 1000);
    expect(instant('2024-02-28T23:00:00-01:30').epochSeconds).toBe(Date.UTC(2024, 1, 29, 0, 30) / 1000);
    // Years 0-99 are years 0-99, not 1900-1999 (Date.UTC's two-digit rule).
    const year99 = new Date(0);
    year99.setUTCFullYear(99, 5, 1);
    expect(instant('0099-06-01T00:00:00Z').epochSeconds).toBe(year99.getTime() / 1000);
  });

  it('refuses what is not RFC 3339, and impossible dates', () => {
    for (const v of [
      '2030-01-01',
      '2030-01-01T00:00Z',
      '2030-01-01T00:00:00',
      '2030-01-01T00:00:00.Z',
      '2030-01-01T00:00:00+0100',
      '2030-01-01T00:00:00+01:60',
      '2030-02-29T00:00:00Z',
      '2030-13-01T00:00:00Z',
      '2030-01-01T24:00:00Z',
      '2030-01-01T00:60:00Z',
      '+2030-01-01T00:00:00Z',
      ' 2030-01-01T00:00:00Z',
      '2030-01-01T00:00:00Z\n',
      '２030-01-01T00:00:00Z',
    ]) {
      expect(parseRfc3339(v), v).toBeUndefined();
    }
  });

  it('a fraction of a second past now is not expired; tufa still writes whole seconds only', () => {
    const root = parseMetadata(
      'root',
      edited('root', (d) => (d.signed.expires = '2030-01-01T00:00:00.0000001Z')),
    );
    expect(root.signed.expiresAt).toBe(Date.UTC(2030, 0, 1) + 1);
    expect(formatExpires(root.signed.expiresAt)).toBe('2030-01-01T00:00:00Z');
    expect(parseExpires('2030-01-01T00:00:00.5Z')).toBeUndefined();
    expect(parseExpires('2030-01-01T00:00:00+00:00')).toBeUndefined();
  });
});

describe('delegations.succinct_roles (TAP 15)', () => {
  const succinct = (edit: (d: any) => void = () => {}) =>
    edited('targets', (d) => {
      d.signed.delegations = {
        keys: {},
        succinct_roles: { bit_length: 8, keyids: [], name_prefix: 'bins', threshold: 1, x_extra: [1] },
      };
      edit(d.signed.delegations);
    });

  it('reads succinct roles, keeps their unknown fields, and writes them back byte for byte', () => {
    const bytes = succinct();
    const md = parseMetadata('targets', bytes);
    expect(md.signed.delegations).toMatchObject({
      roles: [],
      succinctRoles: { bitLength: 8, namePrefix: 'bins', threshold: 1, keyids: [], extra: { x_extra: [1] } },
    });
    expect(Buffer.from(serializeMetadata(md)).equals(Buffer.from(bytes))).toBe(true);
  });

  it.each([
    ['both roles and succinct_roles', (d: any) => (d.roles = []), /exactly one of roles and succinct_roles/],
    ['neither', (d: any) => delete d.succinct_roles, /exactly one of roles and succinct_roles/],
    ['bit_length 0', (d: any) => (d.succinct_roles.bit_length = 0), /bit_length/],
    ['bit_length 33', (d: any) => (d.succinct_roles.bit_length = 33), /bit_length must be 1 to 32/],
    ['bit_length as a string', (d: any) => (d.succinct_roles.bit_length = '8'), /bit_length/],
    ['no name_prefix', (d: any) => delete d.succinct_roles.name_prefix, /name_prefix must be a string/],
    ['no threshold', (d: any) => delete d.succinct_roles.threshold, /threshold/],
    ['a key id twice', (d: any) => (d.succinct_roles.keyids = ['a', 'a']), /keyids lists "a" more than once/],
  ])('refuses %s: INVALID_METADATA', (_, edit, message) => {
    const err = refusal('targets', succinct(edit));
    expect(err.code).toBe('INVALID_METADATA');
    expect(err.message).toMatch(message);
  });

  it('reads bit lengths 1 and 32', () => {
    for (const bits of [1, 32]) {
      const md = parseMetadata(
        'targets',
        succinct((d) => (d.succinct_roles.bit_length = bits)),
      );
      expect(md.signed.delegations?.succinctRoles?.bitLength).toBe(bits);
    }
  });
});

describe('signatures', () => {
  it('refuses a key id that appears twice, even with the same signature', () => {
    const doc = JSON.parse(JSON.stringify(docs.timestamp));
    doc.signatures.push({ ...doc.signatures[0] });
    const err = refusal('timestamp', canonicalBytes(doc));
    expect([err.code, err.role, err.found]).toEqual([
      'DUPLICATE_SIGNATURE',
      'timestamp',
      doc.signatures[0].keyid,
    ]);
    expect(err.details).toEqual({ field: 'signatures[1].keyid' });
  });

  it('refuses a repeated key id with a different signature, and reads distinct ones', () => {
    const doc = JSON.parse(JSON.stringify(docs.targets));
    doc.signatures.push({ keyid: doc.signatures[0].keyid, sig: '00'.repeat(64) });
    expect(refusal('targets', canonicalBytes(doc)).code).toBe('DUPLICATE_SIGNATURE');
    doc.signatures[1].keyid = 'ab'.repeat(32);
    expect(parseMetadata('targets', canonicalBytes(doc)).signatures).toHaveLength(2);
  });

  it('refuses more than MAX_SIGNATURES signatures before reading any, and reads that many', () => {
    const doc = JSON.parse(JSON.stringify(docs.targets));
    doc.signatures = Array.from({ length: MAX_SIGNATURES }, (_, i) => ({
      keyid: i.toString(16).padStart(64, '0'),
      sig: '00'.repeat(64),
    }));
    expect(parseMetadata('targets', canonicalBytes(doc)).signatures).toHaveLength(MAX_SIGNATURES);
    doc.signatures.push({ keyid: 'ff'.repeat(32), sig: '00'.repeat(64) });
    const err = refusal('targets', canonicalBytes(doc));
    expect([err.code, err.role, err.found]).toEqual(['TOO_MANY_SIGNATURES', 'targets', MAX_SIGNATURES + 1]);
  });
});

describe('documents from the wire', () => {
  it('keeps canonical signed bytes even when the envelope is pretty-printed and keys unordered', () => {
    const doc = parseJson(canonicalBytes(docs.snapshot)) as JsonObject;
    const text = JSON.stringify({ signatures: doc.signatures, signed: doc.signed }, null, 4);
    const parsed = parseMetadata('snapshot', new TextEncoder().encode(text));
    expect(parsed.signedBytes).toEqual(repo.snapshot.signedBytes);
  });
});
