/**
 * Errors that point the right way (issue 13, section 3): the `tufa` binary against two real
 * tufa-server processes, one over plain HTTP with access control, one over HTTPS.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates, type ServerProcess, spawnServer } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, serverCommand, startBackend } from './harness.test-util.js';

const SHA_A = `sha256:${'a'.repeat(64)}`;

describe('tufa errors that say what is wrong', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let url: string;
  let tls: ServerProcess;
  let tlsDir: string;
  let tlsData: string;
  const homes: Home[] = [];
  const home = (env?: Record<string, string>) => {
    const h = new Home(url, env ?? { ...PASSPHRASES, TUFA_TOKEN: backend.token });
    homes.push(h);
    return h;
  };
  const pinFile = (h: Home, gun: string) => join(h.dir, 'trust', `${encodeURIComponent(gun)}.root.json`);

  beforeAll(async () => {
    backend = await startBackend('embedded');
    url = backend.server.url;
    tlsDir = mkdtempSync(join(tmpdir(), 'tufa-tls-cli-'));
    const certs = makeCertificates(tlsDir);
    tlsData = mkdtempSync(join(tmpdir(), 'tufa-srv-'));
    tls = await spawnServer([
      '--data-dir',
      tlsData,
      '--tls-cert',
      certs.serverCert,
      '--tls-key',
      certs.serverKey,
    ]);
  }, 180_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backend?.stop();
    await tls?.stop();
    rmSync(tlsDir, { recursive: true, force: true });
    rmSync(tlsData, { recursive: true, force: true });
  });

  it('init of a collection that exists: CONFLICT saying it exists and how to join it; no key is made', async () => {
    const gun = 'example.com/errors/exists';
    await home().json(['init', gun]);
    const other = home();
    const again = await other.run(['init', gun, '--json']);
    expect(again.code).toBe(3);
    const error = JSON.parse(again.stdout).error;
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toMatch(/already exists/);
    expect(error.message).toMatch(/--trust-root/);
    expect(error.message).toMatch(/trust on first use/);
    expect(again.stderr).not.toMatch(/THRESHOLD_NOT_MET/);
    expect(existsSync(join(other.dir, 'private'))).toBe(false);
  });

  it('a token whose scope does not cover the GUN: FORBIDDEN saying so; no token: UNAUTHORIZED', async () => {
    const narrow = await serverCommand([
      'token',
      'create',
      '--name',
      'narrow',
      '--scope',
      'push:elsewhere.example/*',
      '--data-dir',
      backend.dataDir,
    ]);
    const gun = 'example.com/errors/scope';
    const scoped = home({ ...PASSPHRASES, TUFA_TOKEN: narrow.split('\n')[0]!.trim() });
    const refused = await scoped.run(['init', gun]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(
      /^tufa: FORBIDDEN: .*scopes? .*do(es)? not cover .*example\.com\/errors\/scope/m,
    );
    expect(refused.stderr).not.toMatch(/no timestamp key/);
    const anonymous = await home({ ...PASSPHRASES }).run(['init', gun]);
    expect(anonymous.code).toBe(3);
    expect(anonymous.stderr).toMatch(/^tufa: UNAUTHORIZED: .*token/m);
    expect(anonymous.stderr).not.toMatch(/no timestamp key/);
  });

  it('a garbage TUFA_TOKEN on anonymous reads: UNAUTHORIZED saying the token was refused', async () => {
    const gun = 'example.com/errors/garbage';
    const pub = home();
    await pub.json(['init', gun]);
    const fresh = await home({ TUFA_TOKEN: 'not-a-real-token' }).run(['list', gun]);
    // A home that holds the root already asks for 2.root.json first.
    const cached = await pub.run(['list', gun], { env: { TUFA_TOKEN: 'not-a-real-token' } });
    for (const r of [fresh, cached]) {
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^tufa: UNAUTHORIZED: the server refused the token/m);
      expect(r.stderr).not.toMatch(/root\.json/);
    }
  });

  it('init with a 2-of-2 targets pins the root it made; its output names only the roles that need signing', async () => {
    const gun = 'example.com/errors/pin-targets';
    const [alice, bob] = [home(), home()];
    const bobKey = await bob.newKeyFile('targets');
    const out = await alice.ok(['init', gun, '--targets-threshold', '2', '--targets-key', bobKey.file]);
    expect(out).toContain(`tufa sign ${gun} targets`);
    expect(out).not.toMatch(/tufa sign \S+ root/);
    expect(existsSync(pinFile(alice, gun))).toBe(true);
    await bob.ok(['sign', gun, 'targets', '--yes']);
    const listed = await alice.run(['list', gun, '--no-tofu']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).not.toMatch(/trust on first use/);
  });

  it('init with a 2-of-2 root pins its root keys; --root-key (a key id everywhere else) is refused on init', async () => {
    const gun = 'example.com/errors/pin-root';
    const [alice, bob] = [home(), home()];
    const bobKey = await bob.newKeyFile('root');
    const old = await alice.run(['init', gun, '--root-threshold', '2', '--root-key', bobKey.file]);
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/^tufa: INVALID_ARGUMENT: .*--root-key-file/m);
    expect(existsSync(join(alice.dir, 'private'))).toBe(false);
    const out = await alice.ok(['init', gun, '--root-threshold', '2', '--root-key-file', bobKey.file]);
    expect(out).toContain(`tufa sign ${gun} root`);
    expect(out).not.toMatch(/tufa sign \S+ targets/);
    await bob.ok(['sign', gun, 'root', '--yes']);
    const listed = await alice.run(['list', gun, '--no-tofu']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).not.toMatch(/trust on first use/);
  });

  it('--json: usage errors are the same JSON error document as every other error', async () => {
    const h = home({});
    for (const [args, message] of [
      [['list', '--json'], /missing required argument 'gun'/],
      [['list', 'example.com/x', '--bogus', '--json'], /unknown option '--bogus'/],
      [['--json', 'nosuchcommand'], /unknown command 'nosuchcommand'/],
    ] as const) {
      const r = await h.run([...args]);
      expect(r.code).toBe(2);
      const doc = JSON.parse(r.stdout);
      expect(doc.error.code).toBe('INVALID_ARGUMENT');
      expect(doc.error.message).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^tufa: INVALID_ARGUMENT: /);
    }
  });

  it('status: state is an enum with a message; exit 1 when a role expires within the warning window', async () => {
    const gun = 'example.com/errors/status';
    const pub = home();
    await pub.json(['init', gun]);
    const fine = await pub.run(['status', gun, '--json']);
    expect(fine.code).toBe(0);
    const roles = JSON.parse(fine.stdout).roles as { role: string; state: string; message: string }[];
    expect(roles.map((r) => r.state)).toEqual(['ok', 'ok', 'ok', 'ok']);
    for (const r of roles) expect(typeof r.message).toBe('string');
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    await pub.ok(['publish', gun, '--expires', '10d']);
    const soon = await pub.run(['status', gun, '--json']);
    expect(soon.code).toBe(1);
    const targets = JSON.parse(soon.stdout).roles.find((r: { role: string }) => r.role === 'targets');
    expect(targets).toMatchObject({
      state: 'expiring',
      message: expect.stringMatching(/expires in 10 days/),
    });
    // A narrower window: nothing to report.
    expect((await pub.run(['status', gun, '--within', '5d'])).code).toBe(0);
  });

  it('https:// against an http server and http:// against an https server: NETWORK saying which', async () => {
    const gun = 'example.com/errors/tls';
    const h = home();
    const noTls = await h.run(['list', gun, '--server', url.replace('http://', 'https://')]);
    const noTlsWrite = await h.run(['init', gun, '--server', url.replace('http://', 'https://')]);
    for (const r of [noTls, noTlsWrite]) {
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^tufa: NETWORK: .*the server does not speak TLS: use http:\/\//m);
      expect(r.stderr).not.toMatch(/ssl3_get_record|EPROTO|openssl/i);
    }
    const plain = tls.url.replace('https://', 'http://');
    const speaksTls = await h.run(['list', gun, '--server', plain]);
    const speaksTlsWrite = await h.run(['init', gun, '--server', plain]);
    for (const r of [speaksTls, speaksTlsWrite]) {
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^tufa: NETWORK: .*the server speaks TLS: use https:\/\//m);
      expect(r.stderr).not.toMatch(/socket hang up/);
    }
  });

  it('credentials in a server URL are refused, never echoed, never in a cache folder name', async () => {
    const gun = 'example.com/errors/credentials';
    await home().json(['init', gun]);
    const h = home();
    const withPassword = url.replace('http://', 'http://alice:s3cret@');
    for (const args of [
      ['list', gun, '--server', withPassword],
      ['init', `${gun}2`, '--server', withPassword],
      ['list', gun, '--server', 'ftp://alice:s3cret@127.0.0.1/'],
    ]) {
      const r = await h.run([...args, '--json', '--debug']);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout).error.code).toBe('INVALID_ARGUMENT');
      expect(r.stdout + r.stderr).not.toContain('s3cret');
      expect(r.stderr).toMatch(/user name or password/);
    }
    const cache = join(h.dir, 'cache');
    const folders = existsSync(cache) ? readdirSync(cache) : [];
    expect(folders.filter((f) => f.includes('alice'))).toEqual([]);
  });

  it('a damaged key file is INVALID_KEY; a wrong passphrase says it may also be a damaged file', async () => {
    const gun = 'example.com/errors/keyfile';
    const pub = home();
    const init = await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    const wrong = await pub.run(['publish', gun], { env: { TUFA_TARGETS_PASSPHRASE: 'nope' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(
      /^tufa: WRONG_PASSPHRASE: wrong passphrase for targets key .* \(or a damaged key file\)/m,
    );
    const file = join(pub.dir, 'private', `${init.targets.keyid}.key`);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.ciphertext = `${doc.ciphertext.slice(0, 10)}*${doc.ciphertext.slice(11)}`;
    writeFileSync(file, JSON.stringify(doc));
    const damaged = await pub.run(['publish', gun]);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/^tufa: INVALID_KEY: .*ciphertext is not base64/m);
  });
});
