import { createHash } from 'node:crypto';
import { codeOf, testCrypto } from '@tufa/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { notaryCanonical, notaryKeyId, parseNotaryDocument } from './format.js';
import { type NotaryTrust, readNotaryCollection } from './reader.js';
import {
  buildCollection,
  certificateKey,
  DAY,
  ecdsaKey,
  expiresAt,
  GUN,
  rsaKey,
  type SimKeys,
  type SimOptions,
  simKeys,
} from './sim.test-util.js';

let keys: SimKeys;
beforeAll(() => {
  keys = simKeys();
});

const read = (options: SimOptions = {}, extra: { now?: number; trust?: NotaryTrust; gun?: string } = {}) =>
  readNotaryCollection({
    gun: extra.gun ?? GUN,
    fetch: buildCollection(keys, options).fetch,
    crypto: testCrypto,
    now: extra.now ?? Date.now(),
    ...(extra.trust === undefined ? {} : { trust: extra.trust }),
  });

/** The refusal's code and role. */
async function refusal(
  promise: Promise<unknown>,
): Promise<{ code: string; role: string | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code: string; role?: string; message: string };
    return { code: e.code, role: e.role, message: e.message };
  }
  return { code: 'ok', role: undefined, message: '' };
}

describe('the Notary reader accepts a collection Notary would', () => {
  it('reads every role, breadth first, and each tag from the first role that lists it', async () => {
    const c = await read();
    expect(c.roles.map((r) => r.name)).toEqual(['targets', 'targets/releases', 'targets/releases/nightly']);
    expect([...c.tags.keys()]).toEqual(['v1', 'v2', 'releases/r1', 'releases/nightly/n1']);
    expect(c.tags.get('v1')!.target).toMatchObject({
      length: 3,
      hashes: { sha256: createHash('sha256').update('one').digest('hex') },
      custom: { note: 'kept' },
    });
    expect(c.trustedOnFirstUse).toBe(true);
    expect(c.rootKeyIds).toEqual([keys.root[0]!.id]);
  });

  it('keeps a later listing of the same path as shadowed: Notary serves the first', async () => {
    const again = { length: 2, hashes: { sha256: Buffer.alloc(32, 1).toString('base64') } };
    const c = await read({
      edit: {
        'targets/releases': (s) => {
          s.targets['releases/nightly/n1'] = again;
        },
      },
    });
    expect(c.tags.get('releases/nightly/n1')).toMatchObject({
      role: 'targets/releases',
      target: { length: 2 },
    });
    expect(c.shadowed.map((t) => [t.path, t.role])).toEqual([
      ['releases/nightly/n1', 'targets/releases/nightly'],
    ]);
  });
});

describe('the Notary reader verifies each key type Notary signs with', () => {
  it('ecdsa (raw r‖s), and rsa (RSASSA-PSS) for a delegation', async () => {
    const rsa = rsaKey();
    const c = await read({
      edit: {
        targets: (s) => {
          s.delegations.keys = {
            [rsa.id]: { keytype: 'rsa', keyval: { private: null, public: rsa.key.public } },
          };
          s.delegations.roles[0].keyids = [rsa.id];
        },
      },
      signers: { 'targets/releases': [rsa] },
    });
    expect(c.tags.get('releases/r1')?.role).toBe('targets/releases');
    expect(
      await refusal(
        read({
          edit: {
            targets: (s) => {
              s.delegations.keys = {
                [rsa.id]: { keytype: 'rsa', keyval: { private: null, public: rsa.key.public } },
              };
              s.delegations.roles[0].keyids = [rsa.id];
            },
          },
          signers: { 'targets/releases': [rsa] },
          signOptions: { 'targets/releases': { method: 'ecdsa' } },
        }),
      ),
    ).toMatchObject({ code: 'BAD_SIGNATURE', role: 'targets/releases' });
  });
});

describe('the Notary reader refuses, naming the role and the check', () => {
  it('a root whose certificate CN is not the GUN: UNTRUSTED_CERTIFICATE', async () => {
    const r = await refusal(read({ rootKeys: [certificateKey('registry.example.com/team/other')] }));
    expect(r).toMatchObject({ code: 'UNTRUSTED_CERTIFICATE', role: 'root' });
    expect(r.message).toContain('its CN is "registry.example.com/team/other", not the GUN');
  });

  it('a root certificate that has expired: UNTRUSTED_CERTIFICATE', async () => {
    const r = await refusal(read({}, { now: Date.now() + 40 * DAY }));
    expect(r).toMatchObject({ code: 'UNTRUSTED_CERTIFICATE', role: 'root' });
    expect(r.message).toContain('expired at');
  });

  it('a root key that is not a certificate: UNTRUSTED_CERTIFICATE', async () => {
    const r = await refusal(read({ rootKeys: [ecdsaKey()] }));
    expect(r).toMatchObject({ code: 'UNTRUSTED_CERTIFICATE', role: 'root' });
    expect(r.message).toContain('not a certificate');
  });

  it('a root signed by another key, or short of its threshold: BAD_SIGNATURE, THRESHOLD_NOT_MET', async () => {
    expect(await refusal(read({ signers: { root: [certificateKey(GUN)] } }))).toMatchObject({
      code: 'BAD_SIGNATURE',
      role: 'root',
    });
    const two = [keys.root[0]!, certificateKey(GUN)];
    expect(
      await refusal(read({ rootKeys: two, rootThreshold: 2, signers: { root: [two[0]!] } })),
    ).toMatchObject({
      code: 'THRESHOLD_NOT_MET',
      role: 'root',
    });
    // The same key's signature twice counts once.
    expect(
      await refusal(read({ rootKeys: two, rootThreshold: 2, signers: { root: [two[0]!, two[0]!] } })),
    ).toMatchObject({ code: 'THRESHOLD_NOT_MET' });
  });

  it('a root whose pinned certificate ids do not include its certificate: UNTRUSTED_CERTIFICATE', async () => {
    const pinned = await read({}, { trust: { certIds: [keys.root[0]!.id] } });
    expect(pinned.trustedOnFirstUse).toBe(false);
    const r = await refusal(read({}, { trust: { certIds: ['0'.repeat(64)] } }));
    expect(r).toMatchObject({ code: 'UNTRUSTED_CERTIFICATE', role: 'root' });
    expect(r.message).toContain('not a pinned certificate id');
  });

  it('a root rotation not signed by the previous root: BAD_SIGNATURE; signed by both: accepted', async () => {
    const trust = { trustedRoot: buildCollection(keys).root };
    const next = [certificateKey(GUN)];
    const v2 = {
      edit: {
        root: (s: Record<string, any>) => {
          s.version = 2;
        },
      },
      rootKeys: next,
    };
    expect(await refusal(read(v2, { trust }))).toMatchObject({ code: 'BAD_SIGNATURE', role: 'root' });
    const c = await read({ ...v2, signers: { root: [...keys.root, ...next] } }, { trust });
    expect(c.rotations).toBe(1);
    expect(c.rootKeyIds).toEqual([next[0]!.id]);
  });

  it('a rotation that skips a version the server does not have: NOT_FOUND; an older root than the trusted one: ROLLBACK', async () => {
    const trust = { trustedRoot: buildCollection(keys).root };
    expect(
      await refusal(
        read(
          {
            edit: {
              root: (s) => {
                s.version = 3;
              },
            },
          },
          { trust },
        ),
      ),
    ).toMatchObject({
      code: 'NOT_FOUND',
      role: 'root',
    });
    const v2 = buildCollection(keys, {
      edit: {
        root: (s) => {
          s.version = 2;
        },
      },
    });
    const files = v2.files;
    expect(await refusal(read({}, { trust: { trustedRoot: files.get('root.json')! } }))).toMatchObject({
      code: 'ROLLBACK',
      role: 'root',
    });
  });

  it('an expired root, timestamp, snapshot, targets or delegated role: EXPIRED', async () => {
    const past = (s: Record<string, any>) => {
      s.expires = expiresAt(Date.now() - DAY);
    };
    for (const role of [
      'root',
      'timestamp',
      'snapshot',
      'targets',
      'targets/releases',
      'targets/releases/nightly',
    ]) {
      expect(await refusal(read({ edit: { [role]: past } }))).toMatchObject({ code: 'EXPIRED', role });
    }
  });

  it('timestamp, snapshot, targets or a delegation signed by a key root or the delegator does not name: BAD_SIGNATURE', async () => {
    for (const role of ['timestamp', 'snapshot', 'targets', 'targets/releases', 'targets/releases/nightly']) {
      expect(await refusal(read({ signers: { [role]: [ecdsaKey()] } }))).toMatchObject({
        code: 'BAD_SIGNATURE',
        role,
      });
    }
  });

  it('ECDSA signatures that are not raw r‖s, or carry another method: BAD_SIGNATURE', async () => {
    expect(await refusal(read({ signOptions: { targets: { der: true } } }))).toMatchObject({
      code: 'BAD_SIGNATURE',
      role: 'targets',
    });
    expect(await refusal(read({ signOptions: { targets: { method: 'rsapss' } } }))).toMatchObject({
      code: 'BAD_SIGNATURE',
      role: 'targets',
    });
  });

  it('a file whose bytes are not what its parent lists: HASH_MISMATCH, LENGTH_MISMATCH', async () => {
    const flip = (target: string) => (file: string, bytes: Uint8Array) => {
      if (!file.startsWith(`${target}.`)) return undefined;
      const copy = Buffer.from(bytes);
      const at = copy.indexOf('"version":1');
      copy[at + 10] = 0x32;
      return copy;
    };
    expect(await refusal(read({ serve: flip('snapshot') }))).toMatchObject({
      code: 'HASH_MISMATCH',
      role: 'snapshot',
    });
    expect(await refusal(read({ serve: flip('targets') }))).toMatchObject({
      code: 'HASH_MISMATCH',
      role: 'targets',
    });
    expect(await refusal(read({ serve: flip('targets/releases') }))).toMatchObject({
      code: 'HASH_MISMATCH',
      role: 'targets/releases',
    });
    const longer = (file: string, bytes: Uint8Array) =>
      file.startsWith('targets.') ? Buffer.concat([bytes, Buffer.from(' ')]) : undefined;
    expect(await refusal(read({ serve: longer }))).toMatchObject({
      code: 'LENGTH_MISMATCH',
      role: 'targets',
    });
  });

  it('a root that is not the one snapshot names: HASH_MISMATCH for root', async () => {
    expect(
      await refusal(
        read({
          edit: {
            snapshot: (s) => {
              s.meta.root.hashes.sha256 = Buffer.alloc(32).toString('base64');
            },
          },
        }),
      ),
    ).toMatchObject({ code: 'HASH_MISMATCH', role: 'root' });
  });

  it('a delegation whose prefixes leave its delegator’s, or a target outside its prefixes: PATH_NOT_DELEGATED', async () => {
    const wider = (s: Record<string, any>) => {
      s.delegations.roles[0].paths = [''];
    };
    expect(await refusal(read({ edit: { 'targets/releases': wider } }))).toMatchObject({
      code: 'PATH_NOT_DELEGATED',
      role: 'targets/releases/nightly',
    });
    const outside = (s: Record<string, any>) => {
      s.targets['other/r9'] = s.targets['releases/r1'];
    };
    expect(await refusal(read({ edit: { 'targets/releases': outside } }))).toMatchObject({
      code: 'PATH_NOT_DELEGATED',
      role: 'targets/releases',
    });
  });

  it('a version older than the trust dir has seen: ROLLBACK', async () => {
    for (const role of ['timestamp', 'snapshot', 'targets']) {
      expect(await refusal(read({}, { trust: { seenVersions: { [role]: 2 } } }))).toMatchObject({
        code: 'ROLLBACK',
        role,
      });
    }
  });

  it('a timestamp that lists no snapshot, or a snapshot that lists no targets: INVALID_METADATA', async () => {
    expect(
      await refusal(
        read({
          edit: {
            timestamp: (s) => {
              delete s.meta.snapshot;
            },
          },
        }),
      ),
    ).toMatchObject({
      code: 'INVALID_METADATA',
      role: 'timestamp',
    });
    expect(
      await refusal(
        read({
          edit: {
            snapshot: (s) => {
              delete s.meta.targets;
            },
          },
        }),
      ),
    ).toMatchObject({
      code: 'INVALID_METADATA',
      role: 'snapshot',
    });
  });
});

describe("Notary's dialect, parsed strictly", () => {
  const doc = (signed: Record<string, unknown>) => Buffer.from(JSON.stringify({ signed, signatures: [] }));
  const ts = (extra: Record<string, unknown> = {}) => ({
    _type: 'Timestamp',
    version: 1,
    expires: '2030-01-01T00:00:00.123456789Z',
    meta: { snapshot: { length: 1, hashes: { sha256: Buffer.alloc(32).toString('base64') } } },
    ...extra,
  });

  it('refuses TUF 1.0 spellings and unknown fields', () => {
    expect(codeOf(() => parseNotaryDocument('timestamp', doc(ts({ _type: 'timestamp' }))))).toBe(
      'WRONG_TYPE',
    );
    expect(codeOf(() => parseNotaryDocument('timestamp', doc(ts({ spec_version: '1.0.0' }))))).toBe(
      'INVALID_METADATA',
    );
    expect(codeOf(() => parseNotaryDocument('timestamp', doc(ts({ expires: '2030-01-01' }))))).toBe(
      'INVALID_METADATA',
    );
    // A date that does not exist (Date.parse would read it as 2 March).
    expect(
      codeOf(() => parseNotaryDocument('timestamp', doc(ts({ expires: '2030-02-30T00:00:00.5Z' })))),
    ).toBe('INVALID_METADATA');
    expect(codeOf(() => parseNotaryDocument('timestamp', Buffer.from('{"signed":')))).toBe('INVALID_JSON');
  });

  it('refuses hex hashes, stray base64, and a meta entry without sha256 or sha512', () => {
    const meta = (hashes: Record<string, string>) => ({ snapshot: { length: 1, hashes } });
    expect(
      codeOf(() => parseNotaryDocument('timestamp', doc(ts({ meta: meta({ sha256: 'ab'.repeat(32) }) })))),
    ).toBe('INVALID_METADATA');
    expect(
      codeOf(() => parseNotaryDocument('timestamp', doc(ts({ meta: meta({ sha256: 'AAAA!AAA' }) })))),
    ).toBe('INVALID_METADATA');
    expect(codeOf(() => parseNotaryDocument('timestamp', doc(ts({ meta: meta({ md5: 'AAAA' }) }))))).toBe(
      'INVALID_METADATA',
    );
  });

  it('refuses a key id that is not the hash of its key object, and a private key in metadata', () => {
    const k = ecdsaKey();
    const root = (keysField: Record<string, unknown>) => ({
      _type: 'Root',
      version: 1,
      expires: '2030-01-01T00:00:00Z',
      consistent_snapshot: false,
      keys: keysField,
      roles: Object.fromEntries(
        ['root', 'targets', 'snapshot', 'timestamp'].map((r) => [r, { keyids: [k.id], threshold: 1 }]),
      ),
    });
    const good = { keytype: 'ecdsa', keyval: { private: null, public: k.key.public } };
    expect(parseNotaryDocument('root', doc(root({ [k.id]: good }))).signed.version).toBe(1);
    expect(codeOf(() => parseNotaryDocument('root', doc(root({ ['0'.repeat(64)]: good }))))).toBe(
      'INVALID_METADATA',
    );
    expect(
      codeOf(() =>
        parseNotaryDocument(
          'root',
          doc(root({ [k.id]: { ...good, keyval: { private: 'AAAA', public: k.key.public } } })),
        ),
      ),
    ).toBe('INVALID_METADATA');
  });

  it('refuses a delegated role that is not named directly under its delegator', () => {
    const targets = (name: string) => ({
      _type: 'Targets',
      version: 1,
      expires: '2030-01-01T00:00:00Z',
      targets: {},
      delegations: { keys: {}, roles: [{ name, keyids: [], threshold: 1, paths: [''] }] },
    });
    for (const name of ['releases', 'targets/a/b', 'targets/', 'targetsx/a']) {
      expect(codeOf(() => parseNotaryDocument('targets', doc(targets(name))))).toBe('INVALID_METADATA');
    }
  });

  it("signs over docker/go's canonical JSON: sorted keys, no whitespace, only quote and backslash escaped", () => {
    expect(Buffer.from(notaryCanonical({ b: 1, a: ['<&>', null, true], é: 'x"\\\u2028' })).toString()).toBe(
      '{"a":["<&>",null,true],"b":1,"é":"x\\"\\\\\u2028"}',
    );
    // Notary's own id of a key object: "private": null is part of what is hashed.
    const k = ecdsaKey();
    expect(notaryKeyId(k.key)).toBe(
      createHash('sha256')
        .update(`{"keytype":"ecdsa","keyval":{"private":null,"public":"${k.key.public}"}}`)
        .digest('hex'),
    );
  });
});
