/** The registry client against a misbehaving registry on loopback: a real HTTP server that lies. */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticCredentials } from './credentials.js';
import { parseImageReference } from './reference.js';
import { MEDIA_TYPES, parseChallenge, RegistryClient } from './registry.js';

const MANIFEST = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, layers: [] }),
);
const DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler;
const seen: IncomingMessage[] = [];
let server: Server;
let other: Server;
let host: string;
let otherHost: string;

function listen(s: Server): Promise<string> {
  return new Promise((done) =>
    s.listen(0, '127.0.0.1', () => done(`127.0.0.1:${(s.address() as { port: number }).port}`)),
  );
}

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  other = createServer((req, res) => {
    seen.push(req);
    res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest }).end(MANIFEST);
  });
  host = await listen(server);
  otherHost = await listen(other);
});

afterAll(async () => {
  for (const s of [server, other]) {
    s.closeAllConnections();
    await new Promise((done) => s.close(done));
  }
});

function client(options: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient {
  return new RegistryClient(parseImageReference(`${host}/team/app:v1`), {
    insecureRegistries: [host],
    ...options,
  });
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

const serve =
  (headers: Record<string, string>, body: Buffer | string = MANIFEST): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest, ...headers }).end(body);
  };

describe('the registry client', () => {
  it('asks for the four manifest types and computes the digest from the bytes', async () => {
    handler = serve({ 'docker-content-digest': DIGEST });
    const manifest = await client().getManifest('v1');
    expect(manifest).toMatchObject({
      digest: DIGEST,
      size: MANIFEST.length,
      mediaType: MEDIA_TYPES.ociManifest,
    });
    const accept = seen.at(-1)!.headers.accept!.split(', ');
    expect(accept.sort()).toEqual(Object.values(MEDIA_TYPES).sort());
    expect(seen.at(-1)!.url).toBe('/v2/team/app/manifests/v1');
  });

  it('refuses a Docker-Content-Digest that is not the digest of the bytes, and bytes that are not the digest asked for', async () => {
    handler = serve({ 'docker-content-digest': `sha256:${'0'.repeat(64)}` });
    expect(await codeOf(client().getManifest('v1'))).toBe('HASH_MISMATCH');
    handler = serve({});
    expect(await codeOf(client().getManifest(`sha256:${'1'.repeat(64)}`))).toBe('HASH_MISMATCH');
    expect(await codeOf(client().getManifest(DIGEST, { expectedLength: MANIFEST.length + 1 }))).toBe(
      'LENGTH_MISMATCH',
    );
    expect(await codeOf(client().getManifest(DIGEST, { expectedLength: MANIFEST.length - 1 }))).toBe(
      'LENGTH_MISMATCH',
    );
  });

  it('refuses what is not a v2 manifest: another media type, not JSON, a body that says another type', async () => {
    handler = serve({ 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
    expect(await codeOf(client().getManifest('v1'))).toBe('INVALID_METADATA');
    handler = serve({}, 'not json');
    expect(await codeOf(client().getManifest('v1'))).toBe('INVALID_METADATA');
    handler = serve({ 'content-type': MEDIA_TYPES.ociIndex });
    expect(await codeOf(client().getManifest('v1'))).toBe('INVALID_METADATA');
  });

  it('bounds the read: a declared or a streamed body over the limit is TOO_LARGE, a registry that never answers TIMEOUT', async () => {
    handler = serve({}, Buffer.alloc(2000, 32));
    expect(await codeOf(client({ maxManifestBytes: 1000 }).getManifest('v1'))).toBe('TOO_LARGE');
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
      res.write(Buffer.alloc(800, 32));
      res.write(Buffer.alloc(800, 32));
      res.end();
    };
    expect(await codeOf(client({ maxManifestBytes: 1000 }).getManifest('v1'))).toBe('TOO_LARGE');
    handler = () => {};
    expect(await codeOf(client({ timeoutMs: 200 }).getManifest('v1'))).toBe('TIMEOUT');
  });

  it('a 404 is NOT_FOUND naming the image; 401 without a challenge UNAUTHORIZED; 429 RATE_LIMITED; 500 NETWORK', async () => {
    for (const [status, code] of [
      [404, 'NOT_FOUND'],
      [401, 'UNAUTHORIZED'],
      [403, 'FORBIDDEN'],
      [429, 'RATE_LIMITED'],
      [500, 'NETWORK'],
    ] as const) {
      handler = (_req, res) => res.writeHead(status).end();
      const err = await client()
        .getManifest('v9')
        .catch((e: Error & { code: string }) => e);
      expect((err as { code: string }).code, String(status)).toBe(code);
      if (status === 404)
        expect((err as Error).message).toBe(`${host}/team/app:v9: the registry has no such tag (HTTP 404)`);
    }
  });

  it('https unless the registry is listed as insecure', async () => {
    const secure = new RegistryClient(parseImageReference(`${host}/team/app:v1`));
    expect(secure.origin).toBe(`https://${host}`);
    const err = await secure.getManifest('v1').catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('NETWORK');
    expect((err as Error).message).toContain('the server does not speak TLS');
  });

  it('basic auth on a Basic challenge; the Authorization header does not follow a redirect to another origin', async () => {
    handler = (req, res) => {
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
        return;
      }
      res.writeHead(307, { location: `http://${otherHost}/elsewhere` }).end();
    };
    const manifest = await client({ credentials: staticCredentials('alice', 'pw', 'test') }).getManifest(
      'v1',
    );
    expect(manifest.digest).toBe(DIGEST);
    const [first, second, third] = seen.slice(-3);
    expect(first!.headers.authorization).toBeUndefined();
    expect(second!.headers.authorization).toBe(`Basic ${Buffer.from('alice:pw').toString('base64')}`);
    expect(third!.url).toBe('/elsewhere');
    expect(third!.headers.authorization).toBeUndefined();
    handler = (_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
    expect(await codeOf(client().getManifest('v1'))).toBe('UNAUTHORIZED');
  });

  it('the bearer flow: a token from the realm with service and scope, then the manifest with it', async () => {
    handler = (req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/token') {
        expect(url.searchParams.get('service')).toBe('reg');
        expect(url.searchParams.get('scope')).toBe('repository:team/app:pull');
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"tok.en"}');
      } else if (req.headers.authorization === 'Bearer tok.en') {
        serve({})(req, res);
      } else {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="http://${host}/token",service="reg",scope="repository:team/app:pull"`,
          })
          .end();
      }
    };
    expect((await client().getManifest('v1')).digest).toBe(DIGEST);
    // A realm over http on another host is refused unless listed.
    handler = (_req, res) =>
      res
        .writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.example.com/token",service="reg"' })
        .end();
    expect(await codeOf(client().getManifest('v1'))).toBe('NETWORK');
  });

  it('parses challenges as RFC 7235 auth-params', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/alpine:pull',
      },
    });
    expect(parseChallenge('Basic realm="a \\"quoted\\" realm", charset=UTF-8')).toEqual({
      scheme: 'basic',
      params: { realm: 'a "quoted" realm', charset: 'UTF-8' },
    });
    expect(parseChallenge('')).toBeUndefined();
  });
});
