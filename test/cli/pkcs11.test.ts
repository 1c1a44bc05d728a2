/**
 * Keys on a PKCS#11 token (issue 18), end to end: the built `tufa` against a real tufa-server, with
 * SoftHSM2 (Debian's softhsm2) as the token, initialised here in a temp folder (SOFTHSM2_CONF). The
 * wrong-PIN story counts the module's C_Login calls with OpenSC's pkcs11-spy (a real logging
 * module between tufa and SoftHSM2), so "never tried again" is observed, not assumed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { securesystemslibVerifyDelegate } from '@tufa/testing/securesystemslib';
import { runProcess, SOFTHSM_MODULE, softhsmToken } from '@tufa/testing/server';
import { MetadataKind, Metadata as TufJsMetadata, type Root as TufJsRoot } from '@tufjs/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const SPY_MODULE = [
  '/usr/lib/x86_64-linux-gnu/pkcs11-spy.so',
  '/usr/lib/aarch64-linux-gnu/pkcs11-spy.so',
].find((p) => existsSync(p));
const LABEL = 'tufa-test';
const PIN = '123456';
const SHA_A = `sha256:${'a'.repeat(64)}`;
const SHA_B = `sha256:${'b'.repeat(64)}`;

describe('PKCS#11 keys (SoftHSM2) through the tufa CLI and tufa-server', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let url: string;
  let token: { dir: string; conf: string };
  const homes: Home[] = [];
  const tokenEnv = () => ({
    SOFTHSM2_CONF: token.conf,
    TUFA_PKCS11_MODULE: SOFTHSM_MODULE,
    TUFA_PKCS11_PIN: PIN,
  });
  const home = (env?: Record<string, string>) => {
    const h = new Home(url, env ?? { ...PASSPHRASES, TUFA_TOKEN: backend.token, ...tokenEnv() });
    homes.push(h);
    return h;
  };
  const reader = () => home({});
  const tokenKey = async (h: Home, role: string, label: string) =>
    h.json(['key', 'generate', '--pkcs11', '--token-label', LABEL, '--label', label, '--role', role]);
  // The JSON of a role as the server serves it (tuf-js's fromJSON takes it as it is).
  const fetchRole = async (gun: string, role: string): Promise<any> =>
    (await fetch(`${url}/v2/${gun}/_trust/tuf/${role}.json`)).json();

  beforeAll(async () => {
    token = await softhsmToken(LABEL, PIN);
    backend = await startBackend('embedded');
    url = backend.server.url;
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backend?.stop();
    if (token !== undefined) rmSync(token.dir, { recursive: true, force: true });
  });

  it('targets key on the token: the home keeps its URI and public key only; publish; a fresh home verifies; tuf-js verifies the P-256 signature', async () => {
    const gun = 'example.com/hsm/targets';
    const alice = home();
    const made = await tokenKey(alice, 'targets', 'alice targets');
    expect(made.scheme).toBe('ecdsa-sha2-nistp256');
    expect(made.location).toMatch(
      /^pkcs11:token=tufa-test;object=alice%20targets;id=(%[0-9a-f]{2})+\?module-path=\/usr\/lib\/softhsm\/libsofthsm2\.so$/,
    );
    const listed = await alice.json(['key', 'list']);
    expect(listed).toEqual([
      expect.objectContaining({ keyid: made.keyid, role: 'targets', location: made.location }),
    ]);
    // Nothing secret in the home: the key file has no ciphertext, and the private key cannot be exported.
    const file = JSON.parse(readFileSync(join(alice.dir, 'private', `${made.keyid}.key`), 'utf8'));
    expect(Object.keys(file).sort()).toEqual([
      'created',
      'gun',
      'keyid',
      'pkcs11',
      'public',
      'role',
      'tufa_key',
    ]);
    const exported = await alice.run(['key', 'export', made.keyid, '--private', '--json']);
    expect([exported.code, JSON.parse(exported.stdout).error.code]).toEqual([2, 'INVALID_ARGUMENT']);

    const init = await alice.json(['init', gun, '--targets-key-id', made.keyid]);
    expect(init.targets.keyids).toEqual([made.keyid]);
    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);
    expect((await alice.json(['publish', gun])).versions).toMatchObject({ targets: 2 });

    const deploy = reader();
    const pin = ['--root-key', init.root.keyid];
    expect((await deploy.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin])).code).toBe(0);
    expect((await deploy.run(['verify', gun, 'v1', '--digest', SHA_B, ...pin])).code).toBe(1);

    // renew re-signs with the token key too.
    expect((await alice.json(['renew', gun])).versions).toMatchObject({ targets: 3 });
    expect((await deploy.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin])).code).toBe(0);

    // tuf-js, an independent client, checks the token's DER ECDSA signature with the root's key.
    const root = TufJsMetadata.fromJSON(
      MetadataKind.Root,
      await fetchRole(gun, 'root'),
    ) as TufJsMetadata<TufJsRoot>;
    const targetsJson = await fetchRole(gun, 'targets');
    expect(
      targetsJson.signatures.map((s: { keyid: string; sig: string }) => [s.keyid, s.sig.slice(0, 2)]),
    ).toEqual([[made.keyid, '30']]);
    expect(() =>
      root.verifyDelegate('targets', TufJsMetadata.fromJSON(MetadataKind.Targets, targetsJson)),
    ).not.toThrow();
    const altered = structuredClone(targetsJson);
    altered.signed.version += 1;
    expect(() =>
      root.verifyDelegate('targets', TufJsMetadata.fromJSON(MetadataKind.Targets, altered)),
    ).toThrow();
    // securesystemslib, python-tuf's signature layer, accepts the same signature and not the altered document.
    const rootJson = await fetchRole(gun, 'root');
    expect(await securesystemslibVerifyDelegate(rootJson, 'targets', targetsJson)).toEqual({
      valid: [made.keyid],
      threshold: 1,
    });
    expect((await securesystemslibVerifyDelegate(rootJson, 'targets', altered)).valid).toEqual([]);
  });

  it('an Ed25519 key on the token (CKM_EDDSA): targets signed there verify in tufa and tuf-js', async () => {
    const gun = 'example.com/hsm/ed25519';
    const alice = home();
    const made = await alice.json([
      'key',
      'generate',
      '--pkcs11',
      '--type',
      'ed25519',
      '--token-label',
      LABEL,
      '--label',
      'alice ed25519',
      '--role',
      'targets',
    ]);
    expect([made.keytype, made.scheme]).toEqual(['ed25519', 'ed25519']);
    const init = await alice.json(['init', gun, '--targets-key-id', made.keyid]);
    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);
    await alice.ok(['publish', gun]);
    expect(
      (await reader().run(['verify', gun, 'v1', '--digest', SHA_A, '--root-key', init.root.keyid])).code,
    ).toBe(0);
    const root = TufJsMetadata.fromJSON(
      MetadataKind.Root,
      await fetchRole(gun, 'root'),
    ) as TufJsMetadata<TufJsRoot>;
    const targetsJson = await fetchRole(gun, 'targets');
    expect(targetsJson.signatures.map((s: { keyid: string }) => s.keyid)).toEqual([made.keyid]);
    expect(() =>
      root.verifyDelegate('targets', TufJsMetadata.fromJSON(MetadataKind.Targets, targetsJson)),
    ).not.toThrow();
  });

  it('key import --pkcs11-uri adopts a key pair made by another tool; an RSA key on the token is refused', async () => {
    const tool = (args: string[]) =>
      runProcess(
        'pkcs11-tool',
        ['--module', SOFTHSM_MODULE, '--token-label', LABEL, '--login', '--pin', 'env:PIN', ...args],
        {
          env: { PATH: process.env.PATH ?? '', SOFTHSM2_CONF: token.conf, PIN },
        },
      );
    const made = await tool([
      '--keypairgen',
      '--key-type',
      'EC:prime256v1',
      '--label',
      'external',
      '--id',
      'e1',
    ]);
    expect(made.code).toBe(0);
    const alice = home();
    const imported = await alice.json([
      'key',
      'import',
      '--pkcs11-uri',
      `pkcs11:token=${LABEL};object=external`,
      '--role',
      'targets',
    ]);
    // The recorded URI names the pair fully (its id too) and the module it was found with.
    expect(imported.location).toBe(
      `pkcs11:token=${LABEL};object=external;id=%e1?module-path=/usr/lib/softhsm/libsofthsm2.so`,
    );
    const gun = 'example.com/hsm/imported';
    const init = await alice.json(['init', gun, '--targets-key-id', imported.keyid]);
    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);
    await alice.ok(['publish', gun]);
    expect(
      (await reader().run(['verify', gun, 'v1', '--digest', SHA_A, '--root-key', init.root.keyid])).code,
    ).toBe(0);

    expect(
      (await tool(['--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa', '--id', 'e2'])).code,
    ).toBe(0);
    const rsa = await alice.run([
      'key',
      'import',
      '--pkcs11-uri',
      `pkcs11:token=${LABEL};id=%e2`,
      '--role',
      'targets',
      '--json',
    ]);
    expect([rsa.code, JSON.parse(rsa.stdout).error.code]).toEqual([2, 'UNSUPPORTED_KEY']);
    const absent = await alice.run([
      'key',
      'import',
      '--pkcs11-uri',
      `pkcs11:token=${LABEL};id=%e3`,
      '--role',
      'targets',
      '--json',
    ]);
    expect([absent.code, JSON.parse(absent.stdout).error.code]).toEqual([4, 'NOT_FOUND']);
  });

  it('root on the token, targets in the keystore: rotate targets, then move root onto another token key', async () => {
    const gun = 'example.com/hsm/root';
    const alice = home();
    const rootKey = await tokenKey(alice, 'root', 'alice root');
    const init = await alice.json(['init', gun, '--root-key-id', rootKey.keyid]);
    expect(init.root.keyids).toEqual([rootKey.keyid]);
    // The new targets key went into the keystore (encrypted), root stayed on the token.
    const keys = await alice.json(['key', 'list']);
    expect(keys.find((k: { keyid: string }) => k.keyid === init.targets.keyid).location).toBe('keystore');

    const rotated = await alice.json(['key', 'rotate', gun, 'targets']);
    expect(rotated.versions).toMatchObject({ root: 2, targets: 2 });
    const root2 = await fetchRole(gun, 'root');
    expect(root2.signatures.map((s: { keyid: string }) => s.keyid)).toEqual([rootKey.keyid]);

    // Root rotation onto a second token key: the old and the new root key sign, one login for both.
    const next = await tokenKey(alice, 'root', 'alice root 2');
    const moved = await alice.json(['key', 'rotate', gun, 'root', '--key-id', next.keyid, '--yes']);
    expect(moved.keyid).toBe(next.keyid);
    expect(moved.versions).toMatchObject({ root: 3 });
    expect((await fetchRole(gun, 'root')).signatures.map((s: { keyid: string }) => s.keyid).sort()).toEqual(
      [rootKey.keyid, next.keyid].sort(),
    );

    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);
    await alice.ok(['publish', gun]);
    const deploy = reader();
    // Pinned on the first root key: the client follows root v2 and v3 to the new key.
    expect(
      (await deploy.run(['verify', gun, 'v1', '--digest', SHA_A, '--root-key', rootKey.keyid])).code,
    ).toBe(0);
  });

  it('2-of-2 targets, one key on the token and one in the keystore (key add by key id): both sign every publish', async () => {
    const gun = 'example.com/hsm/two';
    const alice = home();
    const hardware = await tokenKey(alice, 'targets', 'alice 2of2');
    const software = await alice.json(['key', 'generate', '--role', 'targets', '--type', 'ecdsa']);
    const init = await alice.json(['init', gun, '--targets-key-id', hardware.keyid]);
    const added = await alice.json(['key', 'add', gun, 'targets', software.keyid, '--threshold', '2']);
    expect(added.published).toBe(true);
    const root = (await fetchRole(gun, 'root')) as {
      signed: { roles: { targets: { keyids: string[]; threshold: number } } };
    };
    expect(root.signed.roles.targets.threshold).toBe(2);
    expect(root.signed.roles.targets.keyids.sort()).toEqual([hardware.keyid, software.keyid].sort());

    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);
    await alice.ok(['publish', gun]);
    expect(
      (await fetchRole(gun, 'targets')).signatures.map((s: { keyid: string }) => s.keyid).sort(),
    ).toEqual([hardware.keyid, software.keyid].sort());
    expect(
      (await reader().run(['verify', gun, 'v1', '--digest', SHA_A, '--root-key', init.root.keyid])).code,
    ).toBe(0);

    // Without the token's PIN the threshold cannot be met here, and nothing is published.
    const noPin = await alice.run(['add', gun, 'v2', '--digest', SHA_B, '--length', '10']);
    expect(noPin.code).toBe(0);
    const refused = await alice.run(['publish', gun, '--json'], { env: { TUFA_PKCS11_PIN: undefined } });
    expect([refused.code, JSON.parse(refused.stdout).error.code]).toEqual([2, 'PIN_REQUIRED']);
    expect(JSON.parse(refused.stdout).error.message).toContain('TUFA_PKCS11_PIN');
  });

  it('threshold signing across homes: a pending init co-signed by `tufa sign` with a key on the token', async () => {
    const gun = 'example.com/hsm/cosign';
    const [alice, bob] = [home(), home()];
    const bobKey = await tokenKey(bob, 'targets', 'bob cosign');
    const bobFile = join(bob.dir, 'bob.pub');
    writeFileSync(bobFile, await bob.ok(['key', 'export', bobKey.keyid]));
    const init = await alice.json(['init', gun, '--targets-threshold', '2', '--targets-key', bobFile]);
    expect([init.published, init.pending.needed]).toEqual([false, 1]);
    const signed = await bob.json(['sign', gun, 'targets', '--yes']);
    expect(signed.signed).toEqual([bobKey.keyid]);
    expect(signed.published).toBe(true);
    expect((await fetchRole(gun, 'targets')).signatures.map((s: { keyid: string }) => s.keyid)).toContain(
      bobKey.keyid,
    );
  });

  it('a wrong PIN: WRONG_PIN, exit 2, one C_Login for two keys on the token and none after it', async () => {
    expect(SPY_MODULE).toBeDefined();
    const gun = 'example.com/hsm/pin';
    const alice = home();
    const rootKey = await tokenKey(alice, 'root', 'pin root');
    const targetsKey = await tokenKey(alice, 'targets', 'pin targets');
    await alice.ok(['init', gun, '--root-key-id', rootKey.keyid, '--targets-key-id', targetsKey.keyid]);
    const other = await tokenKey(alice, 'targets', 'pin targets 2');
    const spyLog = join(token.dir, 'spy.log');
    // Root and the new targets key would both sign this rotation: the login fails once, for both.
    const r = await alice.run(['key', 'rotate', gun, 'targets', '--key-id', other.keyid, '--json'], {
      env: {
        TUFA_PKCS11_PIN: 'not the pin',
        TUFA_PKCS11_MODULE: SPY_MODULE!,
        PKCS11SPY: SOFTHSM_MODULE,
        PKCS11SPY_OUTPUT: spyLog,
      },
    });
    const error = JSON.parse(r.stdout).error;
    expect([r.code, error.code]).toEqual([2, 'WRONG_PIN']);
    expect(error.message).toMatch(/^wrong PIN for token "tufa-test" \(not tried again/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const logins = readFileSync(spyLog, 'utf8').match(/C_Login/g) ?? [];
    expect(logins).toHaveLength(1);
    // Nothing changed: the right PIN then rotates as asked.
    expect((await fetchRole(gun, 'root')).signed.version).toBe(1);
    expect(
      (await alice.json(['key', 'rotate', gun, 'targets', '--key-id', other.keyid])).versions,
    ).toMatchObject({
      root: 2,
    });
  });

  it('the module or the token missing: TOKEN_UNAVAILABLE naming the module, exit 2; keystore commands unaffected', async () => {
    const alice = home();
    const made = await tokenKey(alice, 'targets', 'missing');
    const gun = 'example.com/hsm/missing';
    await alice.ok(['init', gun, '--targets-key-id', made.keyid]);
    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);

    const missingModule = '/usr/lib/no-such-pkcs11-module.so';
    const noModule = await alice.run(['publish', gun, '--json'], {
      env: { TUFA_PKCS11_MODULE: missingModule },
    });
    expect([noModule.code, JSON.parse(noModule.stdout).error.code]).toEqual([2, 'TOKEN_UNAVAILABLE']);
    expect(JSON.parse(noModule.stdout).error.message).toBe(`PKCS#11 module ${missingModule}: no such file`);
    const generate = await alice.run(['key', 'generate', '--pkcs11', '--module', missingModule, '--json']);
    expect([generate.code, JSON.parse(generate.stdout).error.message]).toEqual([
      2,
      `PKCS#11 module ${missingModule}: no such file`,
    ]);

    // The token unplugged: SoftHSM2 with an empty token folder.
    const empty = mkdtempSync(join(tmpdir(), 'tufa-softhsm-empty-'));
    writeFileSync(
      join(empty, 'softhsm2.conf'),
      `directories.tokendir = ${empty}\nobjectstore.backend = file\n`,
    );
    const unplugged = await alice.run(['publish', gun, '--json'], {
      env: { SOFTHSM2_CONF: join(empty, 'softhsm2.conf') },
    });
    expect([unplugged.code, JSON.parse(unplugged.stdout).error.code]).toEqual([2, 'TOKEN_UNAVAILABLE']);
    expect(JSON.parse(unplugged.stdout).error.message).toBe(
      `no token labelled "tufa-test" in PKCS#11 module ${SOFTHSM_MODULE} (is it plugged in?)`,
    );
    rmSync(empty, { recursive: true, force: true });

    // The staged change is still there: with the token back, it publishes.
    expect((await alice.json(['publish', gun])).versions).toMatchObject({ targets: 2 });
  });
});
