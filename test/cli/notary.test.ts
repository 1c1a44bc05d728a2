/**
 * Coming from Notary v1, end to end: Debian's notary-server (memory store, loopback) and notary
 * CLI make a real collection (tags, a rotated targets key, two delegations); `tufa notary import`
 * reads it, verifies it by Notary's rules and publishes it to a real tufa-server; a fresh home
 * then verifies every tag. A proxy on loopback tampers with what Notary serves.
 */
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  makeNotaryCertificate,
  NOTARY_PASSPHRASES,
  type NotaryClient,
  type NotaryServer,
  notaryClient,
  startNotaryServer,
} from '@tufa/testing/notary';
import { fakeClockEnv, REPO, runProcess } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const GUN = 'registry.example.com/team/app';
const OTHER = 'registry.example.com/team/other';
const DAY = 24 * 3600 * 1000;

/** A proxy in front of the Notary server that may change the bytes of one path's answers. */
async function tamperProxy(
  upstream: string,
  tamper: (path: string, body: Buffer) => Buffer,
): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const answer = await fetch(`${upstream}${req.url}`);
    const body = tamper(req.url ?? '', Buffer.from(await answer.arrayBuffer()));
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, server };
}

describe('tufa notary import against a real Notary 0.7', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let notaryServer: NotaryServer;
  let notary: NotaryClient;
  const dir = mkdtempSync(join(tmpdir(), 'tufa-notary-e2e-'));
  const homes: Home[] = [];
  const servers: Server[] = [];
  /** The tags the notary CLI published, as `notary list` shows them. */
  const expected = new Map<string, { digest: string; length: number; role: string }>();

  const publisher = (env: Record<string, string> = {}): Home => {
    const h = new Home(backend.server.url, { ...PASSPHRASES, TUFA_TOKEN: backend.token, ...env });
    homes.push(h);
    return h;
  };

  async function notaryList(gun: string): Promise<void> {
    const out = await notary.ok(['list', gun]);
    for (const line of out.trim().split('\n').slice(2)) {
      const [name, digest, length, role] = line.trim().split(/\s+/);
      expected.set(name!, { digest: `sha256:${digest}`, length: Number(length), role: role! });
    }
  }

  beforeAll(async () => {
    [backend, notaryServer] = await Promise.all([
      startBackend('embedded'),
      startNotaryServer(join(dir, 'server')),
    ]);
    notary = notaryClient(join(dir, 'client'), notaryServer.url);
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };
    await notary.ok(['init', GUN]);
    await notary.ok(['add', GUN, 'v1', file('v1', 'release one')]);
    await notary.ok(['add', GUN, 'v1.1', file('v1.1', 'release one point one')]);
    await notary.ok(['publish', GUN]);
    // The trust dir as it stood before the rotation: its root is v1.
    cpSync(notary.trustDir, join(dir, 'trust-v1'), { recursive: true });
    // A rotated targets key: root v2 names the new one.
    await notary.ok(['key', 'rotate', GUN, 'targets']);
    const releases = makeNotaryCertificate(dir, 'releases', 'releases');
    const qa = makeNotaryCertificate(dir, 'qa', 'qa');
    await notary.ok(['delegation', 'add', GUN, 'targets/releases', releases.cert, '--paths', 'releases/']);
    await notary.ok(['delegation', 'add', GUN, 'targets/qa', qa.cert, '--paths', 'qa/']);
    await notary.ok(['publish', GUN]);
    await notary.ok(['key', 'import', releases.key, '--role', 'targets/releases']);
    await notary.ok(['key', 'import', qa.key, '--role', 'targets/qa']);
    await notary.ok(['add', GUN, 'releases/v2', file('r2', 'release two'), '--roles', 'targets/releases']);
    await notary.ok([
      'add',
      GUN,
      'releases/stable/v2',
      file('r2s', 'stable two'),
      '--roles',
      'targets/releases',
    ]);
    await notary.ok(['add', GUN, 'qa/nightly', file('qa', 'nightly build'), '--roles', 'targets/qa']);
    await notary.ok(['add', GUN, 'v3', file('v3', 'release three')]);
    // Notary signs < > & raw but serves them escaped (\u003c …): signatures cover the raw form.
    await notary.ok(['add', GUN, 'v4<rc>&é', file('v4', 'release four')]);
    await notary.ok(['publish', GUN]);
    await notaryList(GUN);
    // Another collection: its root's certificate names OTHER.
    await notary.ok(['init', OTHER]);
    await notary.ok(['publish', OTHER]);
  }, 180_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    for (const s of servers) s.close();
    await Promise.all([backend?.stop(), notaryServer?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A deploy script's home, pinned to the new root, verifies every tag the notary CLI published. */
  async function verifyAll(gun: string, rootKeyId: string): Promise<void> {
    const deployer = new Home(backend.server.url, {});
    homes.push(deployer);
    for (const [tag, t] of expected) {
      await deployer.ok(['verify', gun, tag, '--digest', t.digest, '--root-key', rootKeyId, '--no-tofu']);
    }
    const listed = await deployer.json(['list', gun, '--root-key', rootKeyId, '--no-tofu']);
    expect(new Map(listed.map((t: any) => [t.tag, `sha256:${t.hashes.sha256}`]))).toEqual(
      new Map([...expected].map(([tag, t]) => [tag, t.digest])),
    );
  }

  it('imports tags, the rotated targets key and two delegations with new keys; a fresh home verifies every tag', async () => {
    expect(expected.size).toBe(7);
    const pub = publisher();
    const report = await pub.json([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-new',
      '--trust-dir',
      notary.trustDir,
    ]);
    expect(report.source).toMatchObject({ gun: GUN, rootVersion: 2, trustedOnFirstUse: false });
    expect(report.gun).toBe('registry.example.com/team/app-new');
    expect(new Map(report.tags.map((t: any) => [t.tag, t.digest]))).toEqual(
      new Map([...expected].map(([tag, t]) => [tag, t.digest])),
    );
    expect(report.delegations).toEqual([
      expect.objectContaining({
        notary: 'targets/releases',
        role: 'releases',
        parent: 'targets',
        prefixes: ['releases/'],
        keys: 'new',
        tags: 2,
      }),
      expect.objectContaining({
        notary: 'targets/qa',
        role: 'qa',
        parent: 'targets',
        prefixes: ['qa/'],
        keys: 'new',
        tags: 1,
      }),
    ]);
    expect(report.delegations[0].paths).toEqual([
      'releases/*',
      'releases/*/*',
      'releases/*/*/*',
      'releases/*/*/*/*',
    ]);
    expect(report.keys).toMatchObject({ root: 'new', targets: 'new' });
    expect(report.check).toEqual({ tags: 7, mismatches: [] });
    expect(report.notCarried.map((n: any) => n.what)).toContain('the timestamp and snapshot keys');
    expect(report.rootKeyId).toMatch(/^[0-9a-f]{64}$/);
    await verifyAll('registry.example.com/team/app-new', report.rootKeyId);
  });

  it('--keep-keys signs the tufa collection with the Notary keys, re-encrypted into the keystore (P-256)', async () => {
    const pub = publisher(NOTARY_PASSPHRASES);
    const into = 'registry.example.com/team/app-kept';
    const report = await pub.json([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      into,
      '--trust-dir',
      notary.trustDir,
      '--keep-keys',
    ]);
    expect(report.keys).toMatchObject({ root: 'kept', targets: 'kept' });
    expect(report.keys.notice).toMatch(/PBKDF2/);
    expect(report.delegations.map((d: any) => [d.role, d.keys])).toEqual([
      ['releases', 'kept'],
      ['qa', 'kept'],
    ]);
    expect(report.check).toEqual({ tags: 7, mismatches: [] });
    const keys = await pub.json(['key', 'list']);
    const root = keys.find((k: any) => k.keyid === report.rootKeyId);
    expect(root).toMatchObject({ role: 'root', gun: into });
    // Every key this home holds now is one of Notary's P-256 keys, encrypted by tufa.
    for (const file of readdirSync(join(pub.dir, 'private'))) {
      const stored = JSON.parse(readFileSync(join(pub.dir, 'private', file), 'utf8'));
      expect(stored.public).toMatchObject({ keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256' });
      expect(stored.kdf.name).toBe('scrypt');
    }
    await verifyAll(into, report.rootKeyId);
  });

  it('a Notary root pinned by certificate id is accepted, another id is refused; an existing tufa collection is refused before anything is written', async () => {
    const empty = mkdtempSync(join(dir, 'pin-trust-'));
    const first = await publisher().json([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-pin0',
      '--trust-dir',
      empty,
    ]);
    expect(first.source.trustedOnFirstUse).toBe(true);
    const [certId] = first.source.rootCertIds;
    const pinned = await publisher().json([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-pin1',
      '--trust-dir',
      empty,
      '--root-cert-id',
      certId,
    ]);
    expect(pinned.source.trustedOnFirstUse).toBe(false);
    const wrong = await publisher().run([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-pin2',
      '--trust-dir',
      empty,
      '--root-cert-id',
      'ab'.repeat(32),
      '--json',
    ]);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stdout).error).toMatchObject({ code: 'UNTRUSTED_CERTIFICATE', role: 'root' });
    const home = publisher(NOTARY_PASSPHRASES);
    const again = await home.run([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-pin1',
      '--trust-dir',
      notary.trustDir,
      '--keep-keys',
      '--json',
    ]);
    expect(again.code).toBe(3);
    expect(JSON.parse(again.stdout).error.code).toBe('CONFLICT');
    expect(await home.json(['key', 'list'])).toEqual([]);
  });

  it('a root rotation is verified from the trust dir root along every version', async () => {
    const report = await publisher().json([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-rot',
      '--trust-dir',
      join(dir, 'trust-v1'),
    ]);
    expect(report.source).toMatchObject({ rootVersion: 2, rotations: 1, trustedOnFirstUse: false });
  });

  it('refuses a collection whose served targets were tampered with (one byte), naming the role and the check; nothing is created', async () => {
    const proxy = await tamperProxy(notaryServer.url, (path, body) => {
      if (!/\/_trust\/tuf\/targets\.[0-9a-f]{64}\.json$/.test(path)) return body;
      const changed = Buffer.from(body);
      const at = changed.indexOf('"length":');
      changed[at + 9] = changed[at + 9] === 0x31 ? 0x32 : 0x31;
      return changed;
    });
    servers.push(proxy.server);
    const pub = publisher();
    const into = 'registry.example.com/team/app-tampered';
    const r = await pub.run([
      'notary',
      'import',
      proxy.url,
      GUN,
      '--into',
      into,
      '--trust-dir',
      notary.trustDir,
      '--json',
    ]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'HASH_MISMATCH', role: 'targets' });
    expect(r.stderr).toMatch(/notary targets: its sha256 is not the one snapshot lists/);
    const list = await pub.run(['list', into, '--json']);
    expect(JSON.parse(list.stdout).error.code).toBe('NOT_FOUND');
  });

  it('refuses expired Notary metadata (the timestamp, 14 days after it was signed)', async () => {
    const r = await publisher(fakeClockEnv({ offsetMs: 15 * DAY })).run([
      'notary',
      'import',
      notaryServer.url,
      GUN,
      '--into',
      'registry.example.com/team/app-late',
      '--trust-dir',
      notary.trustDir,
      '--json',
    ]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'EXPIRED', role: 'timestamp' });
  });

  it("refuses a root whose certificate's CN is not the GUN (another collection's root served in its place)", async () => {
    const otherRoot = Buffer.from(
      await (await fetch(`${notaryServer.url}/v2/${OTHER}/_trust/tuf/root.json`)).arrayBuffer(),
    );
    const proxy = await tamperProxy(notaryServer.url, (path, body) =>
      path.endsWith(`${GUN}/_trust/tuf/root.json`) ? otherRoot : body,
    );
    servers.push(proxy.server);
    const empty = mkdtempSync(join(dir, 'empty-trust-'));
    const r = await publisher().run([
      'notary',
      'import',
      proxy.url,
      GUN,
      '--into',
      'registry.example.com/team/app-cn',
      '--trust-dir',
      empty,
      '--json',
    ]);
    expect(r.code).toBe(1);
    const error = JSON.parse(r.stdout).error;
    expect(error).toMatchObject({ code: 'UNTRUSTED_CERTIFICATE', role: 'root' });
    expect(error.message).toContain(`its CN is "${OTHER}", not the GUN ${GUN}`);
  });

  it("the README's migration block works as written, and a deploy script verifies with the key id it printed", async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const block = /## Migrating from Notary[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toContain(
      'tufa notary import https://notary.example.com registry.example.com/team/app --trust-dir ~/.docker/trust',
    );
    const bin = mkdtempSync(join(dir, 'bin-'));
    writeFileSync(
      join(bin, 'tufa'),
      `#!/bin/sh\nexec '${process.execPath}' '${join(REPO, 'packages/cli/dist/bundle/tufa.js')}' "$@"\n`,
    );
    chmodSync(join(bin, 'tufa'), 0o755);
    const pub = publisher();
    const script = `set -e\n${block!.replaceAll('https://notary.example.com', notaryServer.url).replaceAll('~/.docker/trust', notary.trustDir)}`;
    const r = await runProcess('bash', ['-c', script], {
      env: {
        ...pub.env,
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        HOME: pub.dir,
        TUFA_HOME: pub.dir,
        TUFA_SERVER: backend.server.url,
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`imported ${GUN}`);
    const keyid = /--root-key ([0-9a-f]{64})/.exec(r.stdout)![1]!;
    await verifyAll(GUN, keyid);
  });
});
