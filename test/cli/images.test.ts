/**
 * Container images end to end: the `tufa` binary, a real tufa-server, and a real OCI registry
 * (Debian's docker-registry) that skopeo pushes image layouts into. A fake container engine on
 * PATH records what `tufa pull` asks of it; nothing is pulled from the internet.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveImage } from '@tufa/oci';
import {
  type Credentials,
  freePort,
  MEDIA,
  pushLayout,
  startRegistry,
  startTokenIssuer,
  type TestRegistry,
  type TokenIssuer,
  writeLayout,
} from '@tufa/testing/registry';
import { makeCertificates, REPO, runProcess } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const SECRET = 'hunter2-registry-secret';
const ALICE: Credentials = { username: 'alice', password: SECRET };

/** A folder of executables: a fake `docker` (and any other engine name) that appends its arguments to a log. */
function fakeEngines(): { bin: string; log: string; calls(): string[][] } {
  const bin = mkdtempSync(join(tmpdir(), 'tufa-engine-'));
  const log = join(bin, 'calls.log');
  // And `tufa` itself, for the shell line a deploy script has.
  writeFileSync(
    join(bin, 'tufa'),
    `#!/bin/sh\nexec '${process.execPath}' '${join(REPO, 'packages/cli/dist/bundle/tufa.js')}' "$@"\n`,
  );
  chmodSync(join(bin, 'tufa'), 0o755);
  // An engine whose pull fails, as docker does when its daemon is down.
  writeFileSync(
    join(bin, 'broken-engine'),
    `#!/bin/sh\necho "Cannot connect to the Docker daemon" >&2\nexit 7\n`,
  );
  chmodSync(join(bin, 'broken-engine'), 0o755);
  for (const engine of ['docker', 'podman']) {
    const file = join(bin, engine);
    writeFileSync(
      file,
      // With ENGINE_REFUSES_SECRETS set, it fails when tufa's own secrets reach it: an engine has no use for them.
      `#!/bin/sh\n[ -n "$ENGINE_REFUSES_SECRETS" ] && env | grep -q '^TUFA_[A-Z_]*\\(PASSPHRASE\\|PASSWORD\\|TOKEN\\)=' && exit 9\n{ printf '%s' '${engine}'; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >> '${log}'\n`,
    );
    chmodSync(file, 0o755);
  }
  return {
    bin,
    log,
    calls: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split('\t'))
        : [],
  };
}

describe('container images against a real registry', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let registry: TestRegistry;
  let basicRegistry: TestRegistry;
  let issuer: TokenIssuer;
  let tokenRegistry: TestRegistry;
  const homes: Home[] = [];
  const engines = fakeEngines();
  const publisher = (): Home => {
    const h = new Home(backend.server.url, { ...PASSPHRASES, TUFA_TOKEN: backend.token });
    homes.push(h);
    return h;
  };
  /** A deploy script's home: no token, no keys, the root pinned by key id. */
  const deployer = (): Home => {
    const h = new Home(backend.server.url, {});
    homes.push(h);
    return h;
  };
  const withEngines = () => ({ PATH: `${engines.bin}:${process.env.PATH ?? ''}` });

  beforeAll(async () => {
    [backend, registry, basicRegistry, issuer] = await Promise.all([
      startBackend('embedded'),
      startRegistry(),
      startRegistry({ kind: 'htpasswd', users: [ALICE] }),
      startTokenIssuer([ALICE]),
    ]);
    tokenRegistry = await startRegistry({ kind: 'token', issuer });
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await Promise.all([backend?.stop(), registry?.stop(), basicRegistry?.stop(), tokenRegistry?.stop()]);
    await issuer?.stop();
    rmSync(engines.bin, { recursive: true, force: true });
  });

  /** `tufa init` of the collection of an image: the root key id a deployer pins. */
  async function initCollection(pub: Home, gun: string): Promise<string[]> {
    const init = await pub.json(['init', gun]);
    return ['--root-key', init.root.keyid, '--no-tofu'];
  }

  it('push v1, image add, publish, resolve gives the pushed digest; the tag moved on the registry still resolves to the signed one, and verify says so', async () => {
    const gun = `${registry.host}/team/app`;
    const v1 = writeLayout({ tag: 'v1', content: 'hello v1' });
    await pushLayout(v1, `${gun}:v1`);
    const pub = publisher();
    const pin = await initCollection(pub, gun);
    const insecure = ['--insecure-registry', registry.host];

    const added = await pub.json(['image', 'add', `${gun}:v1`, ...insecure]);
    expect(added).toMatchObject({
      gun,
      tag: 'v1',
      digest: v1.top.digest,
      length: v1.top.size,
      mediaType: MEDIA.manifest,
      registryChecked: true,
      registryTagDigest: v1.top.digest,
      published: null,
    });
    expect(added.staged).toMatchObject({ staged: 'add', digest: v1.top.digest, length: v1.top.size });
    await pub.ok(['publish', gun]);
    const listed = await pub.json(['list', gun]);
    expect(listed).toEqual([
      {
        tag: 'v1',
        length: v1.top.size,
        hashes: { sha256: v1.top.digest.slice(7) },
        role: 'targets',
        custom: { mediaType: MEDIA.manifest },
      },
    ]);

    const deploy = deployer();
    const resolved = await deploy.run(['image', 'resolve', `${gun}:v1`, ...pin]);
    expect([resolved.code, resolved.stdout, resolved.stderr]).toEqual([0, `${gun}@${v1.top.digest}\n`, '']);
    const verified = await deploy.json(['image', 'verify', `${gun}:v1`, ...insecure, ...pin]);
    expect(verified).toMatchObject({ trusted: true, digest: v1.top.digest, tagMatches: true });
    // The library call, as packages/oci/README.md shows it.
    const library = await resolveImage(`${gun}:v1`, {
      server: backend.server.url,
      clientOptions: {
        trust: { rootKeyIds: [pin[1]!], allowTofu: false },
        cacheDir: join(deploy.dir, 'lib-cache'),
      },
    });
    expect(library).toMatchObject({
      pinned: `${gun}@${v1.top.digest}`,
      mediaType: MEDIA.manifest,
      length: v1.top.size,
    });
    const unsigned = await resolveImage(`${gun}:v0`, {
      server: backend.server.url,
      clientOptions: {
        trust: { rootKeyIds: [pin[1]!], allowTofu: false },
        cacheDir: join(deploy.dir, 'lib-cache'),
      },
    }).catch((err: unknown) => err);
    expect(unsigned).toMatchObject({ code: 'NOT_FOUND' });

    // Someone pushes another image under v1 and does not sign it.
    const other = writeLayout({ tag: 'v1', content: 'not what was signed' });
    await pushLayout(other, `${gun}:v1`);
    expect(other.top.digest).not.toBe(v1.top.digest);
    expect(await deploy.ok(['image', 'resolve', `${gun}:v1`, ...pin])).toBe(`${gun}@${v1.top.digest}\n`);
    const moved = await deploy.run(['image', 'verify', `${gun}:v1`, ...insecure, ...pin]);
    expect(moved.code).toBe(0);
    expect(moved.stderr).toContain(
      `the registry's tag v1 now points to ${other.top.digest}, not the signed ${v1.top.digest}`,
    );
    const movedJson = await deploy.json(['image', 'verify', `${gun}:v1`, ...insecure, ...pin]);
    expect(movedJson).toMatchObject({
      tagMatches: false,
      registryTagDigest: other.top.digest,
      digest: v1.top.digest,
    });
  }, 180_000);

  it("the README's Container images block works as written, with its deploy line against the fake docker", async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const block = /## Container images[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toContain('docker pull "$(tufa image resolve registry.example.com/team/app:v1.2)"');
    const gun = `${registry.host}/readme/app`;
    const image = writeLayout({ tag: 'v1.2', content: 'from the README' });
    await pushLayout(image, `${gun}:v1.2`);
    const home = publisher();
    const before = engines.calls().length;
    const script = `set -e\n${block!.replaceAll('registry.example.com/team/app', gun)}`;
    const r = await runProcess('bash', ['-c', script], {
      env: {
        ...withEngines(),
        ...PASSPHRASES,
        HOME: home.dir,
        TUFA_HOME: home.dir,
        TUFA_SERVER: backend.server.url,
        TUFA_TOKEN: backend.token,
        TUFA_INSECURE_REGISTRIES: registry.host,
      },
    });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const pinned = `${gun}@${image.top.digest}`;
    expect(engines.calls().slice(before)).toEqual([
      ['docker', 'pull', pinned],
      ['docker', 'pull', pinned],
    ]);
    expect(r.stdout).toContain(`trusted: ${gun}:v1.2 -> ${pinned}`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  }, 180_000);

  it('a registry that serves other bytes for the signed digest is refused, by image verify and image add', async () => {
    const gun = `${registry.host}/team/tampered`;
    const image = writeLayout({ tag: 'v1', content: 'the real one' });
    await pushLayout(image, `${gun}:v1`);
    const pub = publisher();
    const pin = await initCollection(pub, gun);
    const insecure = ['--insecure-registry', registry.host];
    await pub.ok(['image', 'add', `${gun}:v1`, '--publish', ...insecure]);

    // The registry's storage is changed under it: same length, one byte different.
    const hex = image.top.digest.slice(7);
    const data = join(registry.dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data, 'utf8');
    const swapped = bytes.replace(/"size":(\d)/, (_m, d: string) => `"size":${(Number(d) + 1) % 10}`);
    expect(swapped).not.toBe(bytes);
    expect(swapped.length).toBe(bytes.length);
    writeFileSync(data, swapped);

    const deploy = deployer();
    // resolve does not ask the registry: the signed digest is what docker pull then checks.
    expect(await deploy.ok(['image', 'resolve', `${gun}:v1`, ...pin])).toBe(`${gun}@${image.top.digest}\n`);
    const verify = await deploy.run(['image', 'verify', `${gun}:v1`, ...insecure, ...pin, '--json']);
    expect(verify.code).toBe(1);
    expect(JSON.parse(verify.stdout).error).toMatchObject({
      code: 'HASH_MISMATCH',
      expected: image.top.digest,
    });
    const add = await pub.run(['image', 'add', `${gun}:v1`, ...insecure, '--json']);
    expect(add.code).toBe(1);
    expect(JSON.parse(add.stdout).error.code).toBe('HASH_MISMATCH');
    expect(add.stderr).not.toMatch(/^\s+at /m);
  }, 180_000);

  it('a multi-platform index is signed as the index and resolved', async () => {
    const gun = `${registry.host}/team/multi`;
    const index = writeLayout({
      tag: '2.0',
      content: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    await pushLayout(index, `${gun}:2.0`);
    const pub = publisher();
    const pin = await initCollection(pub, gun);
    const added = await pub.json([
      'image',
      'add',
      `${gun}:2.0`,
      '--publish',
      '--insecure-registry',
      registry.host,
    ]);
    expect(added).toMatchObject({ digest: index.top.digest, length: index.top.size, mediaType: MEDIA.index });
    expect(added.published).toMatchObject({ gun, published: true });
    const deploy = deployer();
    const resolved = await deploy.json(['image', 'resolve', `${gun}:2.0`, ...pin]);
    expect(resolved).toMatchObject({
      pinned: `${gun}@${index.top.digest}`,
      mediaType: MEDIA.index,
      role: 'targets',
    });
    expect(index.platforms.map((p) => p.digest)).not.toContain(resolved.digest);
    const verified = await deploy.json([
      'image',
      'verify',
      `${gun}:2.0`,
      '--insecure-registry',
      registry.host,
      ...pin,
    ]);
    expect(verified).toMatchObject({ tagMatches: true, mediaType: MEDIA.index });
  }, 180_000);

  it('a Docker v2 manifest (as docker push writes) is signed with its media type', async () => {
    const gun = `${registry.host}/team/docker-v2`;
    await pushLayout(writeLayout({ tag: 'v1', content: 'docker format' }), `${gun}:v1`, undefined, 'v2s2');
    const pub = publisher();
    const pin = await initCollection(pub, gun);
    const added = await pub.json([
      'image',
      'add',
      `${gun}:v1`,
      '--publish',
      '--insecure-registry',
      registry.host,
    ]);
    expect(added.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const verified = await deployer().json([
      'image',
      'verify',
      `${gun}:v1`,
      '--insecure-registry',
      registry.host,
      ...pin,
    ]);
    expect(verified).toMatchObject({ digest: added.digest, mediaType: added.mediaType, tagMatches: true });
  }, 180_000);

  it('tufa pull runs the engine with exactly pull REGISTRY/REPO@sha256:…, and never when verification fails', async () => {
    const gun = `${registry.host}/team/pulled`;
    const image = writeLayout({ tag: 'v3', content: 'pull me' });
    await pushLayout(image, `${gun}:v3`);
    const pub = publisher();
    const pin = await initCollection(pub, gun);
    await pub.ok(['image', 'add', `${gun}:v3`, '--publish', '--insecure-registry', registry.host]);
    const pinned = `${gun}@${image.top.digest}`;
    const deploy = deployer();
    const before = engines.calls().length;

    const pulled = await deploy.run(['pull', `${gun}:v3`, ...pin], {
      env: {
        ...withEngines(),
        TUFA_TOKEN: backend.token,
        TUFA_REGISTRY_PASSWORD: SECRET,
        ENGINE_REFUSES_SECRETS: '1',
      },
    });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(engines.calls().slice(before)).toEqual([['docker', 'pull', pinned]]);

    await deploy.ok(['pull', `${gun}:v3`, '--engine', 'podman', '--tag-local', ...pin, '--', '--quiet'], {
      env: withEngines(),
    });
    await deploy.ok(['pull', `${gun}:v3`, ...pin], { env: { ...withEngines(), TUFA_ENGINE: 'podman' } });
    expect(engines.calls().slice(before + 1)).toEqual([
      ['podman', 'pull', '--quiet', pinned],
      ['podman', 'tag', pinned, `${gun}:v3`],
      ['podman', 'pull', pinned],
    ]);

    // The deploy script's one line, as the README has it.
    const line = await runProcess(
      'bash',
      ['-c', `set -e; docker pull "$(tufa image resolve ${gun}:v3 ${pin.join(' ')})"`],
      {
        env: { ...withEngines(), HOME: deploy.dir, TUFA_HOME: deploy.dir, TUFA_SERVER: backend.server.url },
      },
    );
    expect(line.code, line.stderr).toBe(0);
    const afterLine = engines.calls().length;
    expect(engines.calls().at(-1)).toEqual(['docker', 'pull', pinned]);

    // Refused: an unsigned tag, a root the deploy script does not trust, a tampered metadata cache.
    const unsigned = await deploy.run(['pull', `${gun}:latest`, ...pin], { env: withEngines() });
    expect(unsigned.code).toBe(4);
    expect(unsigned.stderr).toMatch(/^tufa: NOT_FOUND: /);
    const stranger = deployer();
    const untrusted = await stranger.run(['pull', `${gun}:v3`, '--root-key', 'ab'.repeat(32), '--no-tofu'], {
      env: withEngines(),
    });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^tufa: UNTRUSTED_ROOT: /);
    expect(engines.calls().length).toBe(afterLine);

    const broken = await deploy.run(['pull', `${gun}:v3`, '--engine', 'broken-engine', ...pin, '--json'], {
      env: withEngines(),
    });
    expect(broken.code).toBe(3);
    expect(JSON.parse(broken.stdout).error).toMatchObject({ code: 'ENGINE_FAILED', details: { status: 7 } });
    expect(broken.stderr).toContain('Cannot connect to the Docker daemon');
    const missing = await deploy.run(['pull', `${gun}:v3`, '--engine', 'no-such-engine', ...pin]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^tufa: INVALID_ARGUMENT: the container engine no-such-engine is not on PATH/m,
    );
  }, 180_000);

  it('the registry client: https by default, --insecure-registry for http, a 404 tag names the image, --digest from a build', async () => {
    const gun = `${registry.host}/team/digest`;
    const image = writeLayout({ tag: 'v1', content: 'built elsewhere' });
    await pushLayout(image, `${gun}:v1`);
    const pub = publisher();
    await initCollection(pub, gun);

    const https = await pub.run(['image', 'add', `${gun}:v1`]);
    expect(https.code).toBe(3);
    expect(https.stderr).toContain(
      `tufa: NETWORK: the manifest of ${gun}:v1: cannot reach https://${registry.host}: the server does not speak TLS`,
    );
    const missing = await pub.run(['image', 'add', `${gun}:nope`, '--insecure-registry', registry.host]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe(`tufa: NOT_FOUND: ${gun}:nope: the registry has no such tag (HTTP 404)\n`);

    const byDigest = await pub.json([
      'image',
      'add',
      `${gun}:v1`,
      '--digest',
      image.top.digest,
      '--insecure-registry',
      registry.host,
    ]);
    expect(byDigest).toMatchObject({
      digest: image.top.digest,
      length: image.top.size,
      registryChecked: true,
    });
    const unknown = `sha256:${'0'.repeat(64)}`;
    const notThere = await pub.run([
      'image',
      'add',
      `${gun}:v1`,
      '--digest',
      unknown,
      '--insecure-registry',
      registry.host,
    ]);
    expect(notThere.code).toBe(4);
    const wrongLength = await pub.run([
      'image',
      'add',
      `${gun}:v1`,
      '--digest',
      image.top.digest,
      '--length',
      String(image.top.size + 1),
      '--insecure-registry',
      registry.host,
    ]);
    expect(wrongLength.code).toBe(1);
    expect(wrongLength.stderr).toMatch(/^tufa: LENGTH_MISMATCH: /);
    const offline = await pub.json([
      'image',
      'add',
      `${gun}:v2`,
      '--digest',
      unknown,
      '--length',
      '1234',
      '--media-type',
      MEDIA.manifest,
      '--no-registry',
    ]);
    expect(offline).toMatchObject({
      digest: unknown,
      length: 1234,
      mediaType: MEDIA.manifest,
      registryChecked: false,
    });
    // A registry that cannot be reached: staged from the build's numbers, with a note; without them refused.
    const down = `127.0.0.1:${await freePort()}`;
    const args = ['image', 'add', `${down}/team/digest:v3`, '--digest', unknown, '--insecure-registry', down];
    const unreachable = await pub.run([...args, '--server', backend.server.url]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/^tufa: NETWORK: /m);
    await pub.ok(['init', `${down}/team/digest`]);
    const staged = await pub.run([...args, '--length', '99', '--media-type', MEDIA.index, '--json']);
    expect(staged.code, staged.stderr).toBe(0);
    expect(JSON.parse(staged.stdout)).toMatchObject({
      registryChecked: false,
      length: 99,
      mediaType: MEDIA.index,
    });
    const noted = await pub.run([...args, '--length', '99', '--media-type', MEDIA.index]);
    expect(noted.stderr).toMatch(
      /^tufa: note: cannot reach the registry of .* \(NETWORK\): staged without checking/m,
    );
    const incomplete = await pub.run(['image', 'add', `${gun}:v2`, '--digest', unknown, '--no-registry']);
    expect([incomplete.code, incomplete.stderr]).toEqual([
      2,
      expect.stringMatching(/^tufa: INVALID_ARGUMENT: --digest without the registry needs --length/),
    ]);
    const expiresAlone = await pub.run(['image', 'add', `${gun}:v1`, '--expires', '30d']);
    expect([expiresAlone.code, expiresAlone.stderr]).toEqual([
      2,
      'tufa: INVALID_ARGUMENT: --expires goes with --publish (or give it to tufa publish)\n',
    ]);
    const withDigest = await pub.run(['image', 'resolve', `${gun}@${image.top.digest}`]);
    expect(withDigest.code).toBe(2);
  }, 180_000);

  it('https by default: a registry with a private CA is read with NODE_EXTRA_CA_CERTS, refused without it', async () => {
    const certs = makeCertificates(mkdtempSync(join(tmpdir(), 'tufa-registry-tls-')));
    const secure = await startRegistry({ kind: 'none' }, { cert: certs.serverCert, key: certs.serverKey });
    try {
      const gun = `${secure.host}/team/tls`;
      const image = writeLayout({ tag: 'v1', content: 'over TLS' });
      await pushLayout(image, `${gun}:v1`);
      const pub = publisher();
      await initCollection(pub, gun);
      const untrusted = await pub.run(['image', 'add', `${gun}:v1`]);
      expect(untrusted.code).toBe(3);
      expect(untrusted.stderr).toMatch(
        /^tufa: NETWORK: the manifest of .*: cannot reach https:\/\/127\.0\.0\.1:\d+: .*certificate/,
      );
      const added = await pub.json(['image', 'add', `${gun}:v1`, '--publish'], {
        env: { NODE_EXTRA_CA_CERTS: certs.ca },
      });
      expect(added).toMatchObject({ digest: image.top.digest, published: { published: true } });
      const verified = await deployer().json(['image', 'verify', `${gun}:v1`], {
        env: { NODE_EXTRA_CA_CERTS: certs.ca },
      });
      expect(verified).toMatchObject({ tagMatches: true, digest: image.top.digest });
    } finally {
      await secure.stop();
      rmSync(certs.dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("Docker Content Trust's signers are delegations: a signer's key, delegated '*', signs an image in its own home", async () => {
    const gun = `${registry.host}/team/signed-by-ci`;
    const image = writeLayout({ tag: 'v7', content: 'built by ci' });
    await pushLayout(image, `${gun}:v7`);
    const owner = publisher();
    const pin = await initCollection(owner, gun);
    const ci = publisher();
    const key = await ci.newKeyFile('delegation');
    await owner.ok(['delegation', 'add', gun, 'ci', '--key', key.file, '--paths', '*']);
    await owner.ok(['publish', gun]);
    const signed = await ci.json([
      'image',
      'add',
      `${gun}:v7`,
      '--role',
      'ci',
      '--publish',
      '--insecure-registry',
      registry.host,
      ...pin,
    ]);
    expect(signed).toMatchObject({ digest: image.top.digest, published: { published: true } });
    const resolved = await deployer().json(['image', 'resolve', `${gun}:v7`, ...pin]);
    expect(resolved).toMatchObject({ role: 'ci', pinned: `${gun}@${image.top.digest}` });
    const pulled = await deployer().json(['pull', `${gun}:v7`, ...pin], { env: withEngines() });
    expect(pulled).toMatchObject({ engine: 'docker', pulled: `${gun}@${image.top.digest}`, tagged: null });
  }, 180_000);

  describe('registry authentication', () => {
    /** A home whose ~/.docker/config.json is `config`, with a credential helper `x` on PATH holding `helper`. */
    function dockerHome(
      config: unknown,
      helper?: Record<string, Credentials>,
    ): { home: Home; env: Record<string, string> } {
      const home = publisher();
      mkdirSync(join(home.dir, '.docker'));
      writeFileSync(join(home.dir, '.docker', 'config.json'), JSON.stringify(config));
      const bin = join(home.dir, 'bin');
      mkdirSync(bin);
      const store = join(home.dir, 'helper.json');
      writeFileSync(store, JSON.stringify(helper ?? {}));
      // As Docker's helpers: the server URL on stdin, {"Username","Secret"} on stdout, or "credentials not found".
      writeFileSync(
        join(bin, 'docker-credential-x'),
        `#!/usr/bin/env node\nconst fs = require('node:fs');\nif (process.argv[2] !== 'get') process.exit(2);\nconst url = fs.readFileSync(0, 'utf8').trim();\nconst store = JSON.parse(fs.readFileSync(${JSON.stringify(store)}, 'utf8'));\nfs.appendFileSync(${JSON.stringify(join(home.dir, 'helper.log'))}, url + '\\n');\nconst c = store[url];\nif (!c) { process.stdout.write('credentials not found in native keychain'); process.exit(1); }\nprocess.stdout.write(JSON.stringify({ ServerURL: url, Username: c.username, Secret: c.password }));\n`,
      );
      chmodSync(join(bin, 'docker-credential-x'), 0o755);
      return { home, env: { PATH: `${bin}:${process.env.PATH ?? ''}` } };
    }

    const outputs: string[] = [];
    const record = <R extends { stdout: string; stderr: string }>(r: R): R => {
      outputs.push(r.stdout, r.stderr);
      return r;
    };

    async function pushed(reg: TestRegistry, repo: string): Promise<{ gun: string; digest: string }> {
      const gun = `${reg.host}/${repo}`;
      const image = writeLayout({ tag: 'v1', content: `${repo} on ${reg.host}` });
      await pushLayout(image, `${gun}:v1`, ALICE);
      return { gun, digest: image.top.digest };
    }

    it('basic (htpasswd): anonymous is refused; --registry-user with TUFA_REGISTRY_PASSWORD, config.json auths and a credential helper work', async () => {
      const { gun, digest } = await pushed(basicRegistry, 'team/basic');
      const insecure = ['--insecure-registry', basicRegistry.host];
      const anonymous = dockerHome({});
      await anonymous.home.ok(['init', gun]);
      const refused = record(await anonymous.home.run(['image', 'add', `${gun}:v1`, ...insecure]));
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(
        /^tufa: UNAUTHORIZED: the manifest of .*: the registry wants a user name and password/,
      );

      const flagged = record(
        await anonymous.home.run(
          ['image', 'add', `${gun}:v1`, ...insecure, '--registry-user', 'alice', '--json', '--debug'],
          {
            env: { TUFA_REGISTRY_PASSWORD: SECRET },
          },
        ),
      );
      expect(flagged.code, flagged.stderr).toBe(0);
      expect(JSON.parse(flagged.stdout).digest).toBe(digest);
      const noPassword = record(
        await anonymous.home.run(['image', 'add', `${gun}:v1`, ...insecure, '--registry-user', 'alice']),
      );
      expect(noPassword.code).toBe(2);
      const wrong = record(
        await anonymous.home.run(
          ['image', 'add', `${gun}:v1`, ...insecure, '--registry-user', 'alice', '--debug'],
          {
            env: { TUFA_REGISTRY_PASSWORD: `${SECRET}-wrong` },
          },
        ),
      );
      expect(wrong.code).toBe(3);
      expect(wrong.stderr).toMatch(/^tufa: UNAUTHORIZED: .*with the credentials given \(HTTP 401\)/);

      const auths = dockerHome({
        auths: { [basicRegistry.host]: { auth: Buffer.from(`alice:${SECRET}`).toString('base64') } },
      });
      const addAuths = record(
        await auths.home.run(['image', 'add', `${gun}:v1`, ...insecure, '--json', '--debug']),
      );
      expect(addAuths.code, addAuths.stderr).toBe(0);

      const helper = dockerHome(
        { credHelpers: { [basicRegistry.host]: 'x' } },
        { [basicRegistry.host]: ALICE },
      );
      const viaHelper = record(
        await helper.home.run(['image', 'add', `${gun}:v1`, ...insecure, '--json', '--debug'], {
          env: helper.env,
        }),
      );
      expect(viaHelper.code, viaHelper.stderr).toBe(0);
      expect(readFileSync(join(helper.home.dir, 'helper.log'), 'utf8')).toBe(`${basicRegistry.host}\n`);
      const store = dockerHome({ credsStore: 'x' }, {});
      const notFound = record(
        await store.home.run(['image', 'add', `${gun}:v1`, ...insecure], { env: store.env }),
      );
      expect(notFound.code).toBe(3);
      expect(notFound.stderr).toMatch(/UNAUTHORIZED: .*wants a user name and password/);
      const noHelper = record(await store.home.run(['image', 'add', `${gun}:v1`, ...insecure]));
      expect([noHelper.code, noHelper.stderr]).toEqual([
        2,
        expect.stringContaining('docker-credential-x, which is not on PATH'),
      ]);
    }, 180_000);

    it('bearer token (auth.token): the token flow with credentials from config.json; anonymous and wrong passwords refused', async () => {
      const { gun, digest } = await pushed(tokenRegistry, 'team/token');
      const insecure = ['--insecure-registry', tokenRegistry.host];
      const anonymous = dockerHome({});
      await anonymous.home.ok(['init', gun]);
      const refused = record(await anonymous.home.run(['image', 'add', `${gun}:v1`, ...insecure]));
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/^tufa: UNAUTHORIZED: /);

      const auths = dockerHome({
        auths: { [`http://${tokenRegistry.host}`]: { username: 'alice', password: SECRET } },
      });
      const before = issuer.requests.length;
      const ok = record(
        await auths.home.run(['image', 'add', `${gun}:v1`, ...insecure, '--json', '--debug']),
      );
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout).digest).toBe(digest);
      expect(issuer.requests.slice(before)).toEqual([{ scope: 'repository:team/token:pull', user: 'alice' }]);

      const helper = dockerHome(
        { credsStore: 'x' },
        { [tokenRegistry.host]: { username: 'alice', password: `${SECRET}-no` } },
      );
      const wrong = record(
        await helper.home.run(['image', 'add', `${gun}:v1`, ...insecure, '--debug'], { env: helper.env }),
      );
      expect(wrong.code).toBe(3);
      expect(wrong.stderr).toMatch(
        /^tufa: UNAUTHORIZED: a token for .* refuses the credentials from docker-credential-x/,
      );
    }, 180_000);

    afterAll(() => {
      // Never a password in any output, --debug included, nor in what the homes wrote.
      for (const text of outputs) expect(text).not.toContain(SECRET);
      for (const h of homes) {
        for (const file of readdirSync(h.dir, { recursive: true }) as string[]) {
          if (file.includes('.docker') || file.endsWith('helper.json') || file.includes('bin')) continue;
          const path = join(h.dir, file);
          try {
            expect(readFileSync(path, 'utf8'), path).not.toContain(SECRET);
          } catch (err) {
            if ((err as { code?: string }).code !== 'EISDIR') throw err;
          }
        }
      }
    });
  });
});
