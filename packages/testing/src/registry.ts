/**
 * A real OCI registry for the tests: Debian's docker-registry (distribution 2.8) on a free loopback
 * port with its storage in a temp folder, anonymous, with htpasswd (basic) auth, or with token auth
 * backed by a small token issuer here. Images are OCI image layouts written here (a one-file layer,
 * a config, a manifest, an index) and pushed with skopeo. Nothing comes from the internet.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { selfSignedP256 } from './certificates.js';
import { runProcess } from './process.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface Credentials {
  username: string;
  password: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of an image name, and the GUN's first segment. */
  host: string;
  dir: string;
  /** Every request the registry logged (method and path), for tests that check what was asked. */
  log(): string;
  stop(): Promise<void>;
}

/** A loopback port nothing listens on (until something does). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** A bcrypt hash for htpasswd, by the C library's crypt(3) through perl (Debian's libcrypt has $2b$). */
function bcrypt(password: string): string {
  const salt = randomBytes(16).toString('base64').replace(/[+=]/g, '.').slice(0, 22);
  return execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`], {
    encoding: 'utf8',
  });
}

type Auth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Credentials[] }
  | { kind: 'token'; issuer: TokenIssuer };

/** Starts docker-registry with filesystem storage in a temp folder; resolves once /v2/ answers. */
export async function startRegistry(
  auth: Auth = { kind: 'none' },
  /** Serve https with this certificate (for 127.0.0.1) and key. */
  tls?: { cert: string; key: string },
): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-registry-'));
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    // A fixed secret spares the registry's warning about a random one.
    '  secret: tufa-test-secret',
  ];
  if (tls !== undefined) lines.push('  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`);
  if (auth.kind === 'htpasswd') {
    const file = join(dir, 'htpasswd');
    writeFileSync(file, auth.users.map((u) => `${u.username}:${bcrypt(u.password)}\n`).join(''));
    lines.push('auth:', '  htpasswd:', '    realm: tufa-test', `    path: ${file}`);
  } else if (auth.kind === 'token') {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${auth.issuer.url}/token`,
      `    service: ${auth.issuer.service}`,
      `    issuer: ${auth.issuer.name}`,
      `    rootcertbundle: ${auth.issuer.certFile}`,
    );
  }
  writeFileSync(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  let output = '';
  const child: ChildProcess = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '' },
  });
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const host = `127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}:\n${output}`);
    try {
      // Any answer will do: an https registry answers plain http with a 400.
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      break;
    } catch {
      await sleep(50);
    }
  }
  return {
    host,
    dir,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * A token issuer for distribution's `auth.token`: basic credentials in, an ES256 JWT out, signed
 * by a self-signed certificate the registry has in its rootcertbundle (sent as the x5c header).
 */
export interface TokenIssuer {
  url: string;
  service: string;
  name: string;
  certFile: string;
  /** Every request the issuer saw: its query and whether credentials came with it. */
  requests: { scope: string | null; user: string | null }[];
  stop(): Promise<void>;
}

export async function startTokenIssuer(users: Credentials[]): Promise<TokenIssuer> {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-issuer-'));
  selfSignedP256(dir, { key: 'issuer.key', cert: 'issuer.pem' }, '/CN=tufa test token issuer', 1);
  const key = createPrivateKey(readFileSync(join(dir, 'issuer.key')));
  const certDer = Buffer.from(
    readFileSync(join(dir, 'issuer.pem'), 'utf8')
      .replace(/-----[A-Z ]+-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );
  const service = 'tufa-test-registry';
  const name = 'tufa-test-issuer';
  const requests: TokenIssuer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    const header = req.headers.authorization ?? '';
    let user: string | null = null;
    if (header.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(header.slice(6), 'base64').toString().split(':');
      const found = users.find((c) => c.username === u && c.password === rest.join(':'));
      if (found === undefined) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        requests.push({ scope: url.searchParams.get('scope'), user: `refused:${u}` });
        return;
      }
      user = found.username;
    }
    const scope = url.searchParams.get('scope');
    requests.push({ scope, user });
    // Anonymous callers get a token with no access: the registry then answers 401 again.
    const access =
      scope === null || user === null
        ? []
        : scope.split(' ').map((s) => {
            const [type, repo, actions] = [
              s.split(':')[0],
              s.split(':').slice(1, -1).join(':'),
              s.split(':').at(-1),
            ];
            return { type, name: repo, actions: (actions ?? '').split(',') };
          });
    const now = Math.floor(Date.now() / 1000);
    const head = { alg: 'ES256', typ: 'JWT', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: name,
      sub: user ?? '',
      aud: url.searchParams.get('service'),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${b64url(signature)}`;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    service,
    name,
    certFile: join(dir, 'issuer.pem'),
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- OCI image layouts ---------------------------------------------------------------------------

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A ustar archive holding one regular file. */
function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface LayoutImage {
  /** The layout folder: push it with pushLayout. */
  dir: string;
  tag: string;
  /** What the tag names: the manifest, or the index of a multi-platform image. */
  top: Descriptor;
  /** The platform manifests of an index. */
  platforms: Descriptor[];
}

/**
 * Writes an OCI image layout whose TAG is one image holding one file (`content`), or with
 * `platforms` an index of one such image per platform (content varied per platform).
 */
export function writeLayout(options: {
  tag: string;
  content: string;
  platforms?: { os: string; architecture: string }[];
}): LayoutImage {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-layout-'));
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blob = (mediaType: string, bytes: Buffer): Descriptor => {
    const digest = sha256(bytes);
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  };
  const image = (platform: { os: string; architecture: string }, content: string): Descriptor => {
    const tar = tarOneFile('hello.txt', Buffer.from(content));
    const layer = blob(MEDIA.layer, gzipSync(tar));
    const config = blob(
      MEDIA.config,
      Buffer.from(
        JSON.stringify({
          architecture: platform.architecture,
          os: platform.os,
          config: {},
          rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
        }),
      ),
    );
    return blob(
      MEDIA.manifest,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, config, layers: [layer] })),
    );
  };
  let top: Descriptor;
  const platforms: Descriptor[] = [];
  if (options.platforms === undefined) {
    top = image({ os: 'linux', architecture: 'amd64' }, options.content);
  } else {
    for (const p of options.platforms) {
      platforms.push(image(p, `${options.content} (${p.os}/${p.architecture})`));
    }
    const manifests = platforms.map((d, i) => ({ ...d, platform: options.platforms![i] }));
    top = blob(
      MEDIA.index,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests })),
    );
  }
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': options.tag } }],
    }),
  );
  return { dir, tag: options.tag, top, platforms };
}

/** `skopeo copy` of the layout's tag to REGISTRY/REPO:TAG over plain http, digests kept as written. */
export async function pushLayout(
  image: LayoutImage,
  destination: string,
  credentials?: Credentials,
  /** `v2s2`: converted to a Docker v2 manifest on the way (its digest is then the registry's). */
  format?: 'v2s2',
): Promise<void> {
  const args = [
    '--insecure-policy',
    'copy',
    '--quiet',
    '--all',
    ...(format === undefined ? ['--preserve-digests'] : ['--format', format]),
    '--dest-tls-verify=false',
    ...(credentials === undefined ? [] : ['--dest-creds', `${credentials.username}:${credentials.password}`]),
    `oci:${image.dir}:${image.tag}`,
    `docker://${destination}`,
  ];
  const home = mkdtempSync(join(tmpdir(), 'tufa-skopeo-'));
  try {
    const r = await runProcess('skopeo', args, { env: { PATH: process.env.PATH ?? '', HOME: home } });
    if (r.code !== 0) throw new Error(`skopeo copy to ${destination} exited ${r.code}:\n${r.stderr}`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
