/**
 * A programmable TUF repository served over real HTTP on 127.0.0.1 (an ephemeral port), built
 * with core's repository helpers, that tests can make misbehave: replace any served file, or
 * answer a path with a handler (endless, trickling, hanging, an HTTP status).
 */
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  bumpVersion,
  canonicalBytes,
  type Ed25519KeyPair,
  ed25519Signer,
  expiresIn,
  generateEd25519Key,
  type JsonObject,
  type Metadata,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  newTimestamp,
  type Root,
  type Signed,
  type Signer,
  serializeMetadata,
  signedToJson,
  signMetadata,
  type Targets,
  targetFileFor,
  toHex,
  withDelegation,
  withTarget,
} from '@tufa/core';

export const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
export const DAY = 24 * 3600 * 1000;
export const GUN = 'registry.example.com/team/app';

export type TestKey = Ed25519KeyPair & { signer: Signer };

/** A key pair derived from a small number, so tests are repeatable. */
export function testKey(n: number): TestKey {
  const seed = new Uint8Array(32);
  seed[0] = n & 0xff;
  seed[1] = (n >> 8) & 0xff;
  seed[31] = 0xa5;
  const pair = generateEd25519Key(seed);
  return { ...pair, signer: ed25519Signer(pair.privateKey) };
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

export function sign<T extends Signed>(signed: T, keys: readonly TestKey[]): Uint8Array {
  return serializeMetadata(
    signMetadata(
      signed,
      keys.map((k) => k.signer),
    ),
  );
}

/** Signs a raw `signed` JSON object (for documents core's helpers would refuse to build). */
export function signRaw(
  signed: JsonObject,
  keys: readonly TestKey[],
  extraSignatures: JsonObject[] = [],
): Uint8Array {
  const bytes = canonicalBytes(signed);
  const signatures: JsonObject[] = keys.map((k) => ({ keyid: k.keyid, sig: toHex(k.signer.sign(bytes)) }));
  return canonicalBytes({ signed, signatures: [...signatures, ...extraSignatures] });
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DelegatedState {
  signed: Targets;
  keys: TestKey[];
}

export class RepoSim {
  keys = {
    root: [testKey(1)],
    targets: [testKey(2)],
    snapshot: [testKey(3)],
    timestamp: [testKey(4)],
  };
  root!: Root;
  targets!: Targets;
  readonly delegated = new Map<string, DelegatedState>();
  snapshotVersion = 0;
  timestampVersion = 0;
  snapshotExpires = expiresIn(NOW, 30 * DAY);
  timestampExpires = expiresIn(NOW, DAY);
  /** State hashes and lengths in snapshot and timestamp meta. */
  metaHashes = true;
  /** Served paths (`metadata/…`, `targets/…`) → bytes. */
  readonly files = new Map<string, Uint8Array>();
  /** Paths answered by a handler instead (misbehaviour). */
  readonly handlers = new Map<string, Handler>();
  readonly requests: string[] = [];
  /** The bytes last published per role, for tests that craft variants. */
  readonly published = new Map<string, Uint8Array>();
  private server: Server | undefined;
  baseUrl = '';

  /** Root v1, targets with `app/v1` and a delegation `releases` (releases/*) holding `releases/r1`. */
  static async start(options: { consistent?: boolean; now?: number } = {}): Promise<RepoSim> {
    const now = options.now ?? NOW;
    const sim = new RepoSim();
    sim.snapshotExpires = expiresIn(now, 30 * DAY);
    sim.timestampExpires = expiresIn(now, DAY);
    sim.root = newRoot({
      expires: expiresIn(now, 365 * DAY),
      consistentSnapshot: options.consistent ?? true,
      roles: {
        root: { keys: sim.keys.root.map((k) => k.key) },
        targets: { keys: sim.keys.targets.map((k) => k.key) },
        snapshot: { keys: sim.keys.snapshot.map((k) => k.key) },
        timestamp: { keys: sim.keys.timestamp.map((k) => k.key) },
      },
    });
    sim.publishRoot(sim.root, sim.keys.root);
    const releasesKey = testKey(5);
    sim.targets = newTargets({ expires: expiresIn(now, 90 * DAY) });
    sim.addTarget('targets', 'app/v1', text('app v1'));
    sim.targets = withDelegation(sim.targets, {
      name: 'releases',
      keys: [releasesKey.key],
      paths: ['releases/*'],
    });
    sim.delegated.set('releases', {
      signed: newTargets({ expires: expiresIn(now, 90 * DAY) }),
      keys: [releasesKey],
    });
    sim.addTarget('releases', 'releases/r1', text('release 1'));
    sim.publish();
    await sim.listen();
    return sim;
  }

  get metadataUrl(): string {
    return `${this.baseUrl}/metadata/`;
  }
  get targetsUrl(): string {
    return `${this.baseUrl}/targets/`;
  }

  /** Adds a target to a role's metadata and serves its content (no version bump). */
  addTarget(role: string, path: string, content: Uint8Array): void {
    const file = targetFileFor(content);
    if (role === 'targets') this.targets = withTarget(this.targets, path, file);
    else {
      const d = this.delegated.get(role)!;
      d.signed = withTarget(d.signed, path, file);
    }
    this.serveTarget(path, content, file.hashes);
  }

  serveTarget(path: string, content: Uint8Array, hashes: Record<string, string>): void {
    const segments = path.split('/');
    const name = segments.pop()!;
    const dir = segments.length > 0 ? `${segments.join('/')}/` : '';
    this.files.set(`targets/${dir}${name}`, content);
    for (const hash of Object.values(hashes)) this.files.set(`targets/${dir}${hash}.${name}`, content);
  }

  /** Bumps the version of targets or a delegated role (to publish a change). */
  bump(role: string): void {
    if (role === 'targets') this.targets = bumpVersion(this.targets, this.targets.expires);
    else {
      const d = this.delegated.get(role)!;
      d.signed = bumpVersion(d.signed, d.signed.expires);
    }
  }

  publishRoot(root: Root, keys: readonly TestKey[]): Uint8Array {
    this.root = root;
    const bytes = sign(root, keys);
    this.files.set(`metadata/${root.version}.root.json`, bytes);
    this.files.set('metadata/root.json', bytes);
    this.published.set('root', bytes);
    return bytes;
  }

  /** Serves a role's bytes under its versioned and plain names. */
  serveRole(role: string, version: number, bytes: Uint8Array): void {
    const encoded = encodeURIComponent(role);
    this.files.set(`metadata/${version}.${encoded}.json`, bytes);
    this.files.set(`metadata/${encoded}.json`, bytes);
    this.published.set(role, bytes);
  }

  /** Signs and serves targets, every delegated role, a new snapshot and a new timestamp. */
  publish(): void {
    const meta: Record<string, ReturnType<typeof metaFileFor>> = {};
    const metaOptions = this.metaHashes ? {} : { hashes: [], length: false };
    const targetsBytes = sign(this.targets, this.keys.targets);
    this.serveRole('targets', this.targets.version, targetsBytes);
    meta['targets.json'] = metaFileFor(targetsBytes, this.targets.version, metaOptions);
    for (const [name, d] of this.delegated) {
      const bytes = sign(d.signed, d.keys);
      this.serveRole(name, d.signed.version, bytes);
      meta[`${name}.json`] = metaFileFor(bytes, d.signed.version, metaOptions);
    }
    this.snapshotVersion += 1;
    const snapshotBytes = sign(
      newSnapshot({ version: this.snapshotVersion, expires: this.snapshotExpires, meta }),
      this.keys.snapshot,
    );
    this.serveRole('snapshot', this.snapshotVersion, snapshotBytes);
    this.publishTimestamp(metaFileFor(snapshotBytes, this.snapshotVersion, metaOptions));
  }

  publishTimestamp(snapshotMeta = this.currentTimestampMeta()): void {
    this.timestampVersion += 1;
    const bytes = sign(
      newTimestamp({ version: this.timestampVersion, expires: this.timestampExpires, snapshotMeta }),
      this.keys.timestamp,
    );
    this.files.set('metadata/timestamp.json', bytes);
    this.published.set('timestamp', bytes);
  }

  private currentTimestampMeta() {
    return metaFileFor(this.published.get('snapshot')!, this.snapshotVersion);
  }

  async listen(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.slice(1);
    // The tufa server layout maps onto the same metadata.
    const tufa = `v2/${GUN}/_trust/tuf/`;
    if (path.startsWith(tufa)) path = `metadata/${path.slice(tufa.length)}`;
    this.requests.push(path);
    const handler = this.handlers.get(path);
    if (handler !== undefined) {
      handler(req, res);
      return;
    }
    const bytes = this.files.get(path);
    if (bytes === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-length', bytes.length);
    res.end(bytes);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// Misbehaving handlers.

/** Streams bytes forever (no Content-Length). */
export function endless(): Handler {
  return (_req, res) => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const write = () => {
      while (res.write(chunk)) {
        if (res.destroyed) return;
      }
      if (!res.destroyed) res.once('drain', write);
    };
    res.on('close', () => res.removeAllListeners('drain'));
    write();
  };
}

/** Sends `bytes` one byte every `intervalMs`. */
export function trickle(bytes: Uint8Array, intervalMs: number): Handler {
  return (_req, res) => {
    res.setHeader('content-length', bytes.length);
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= bytes.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(bytes.subarray(at, at + 1));
      at += 1;
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
  };
}

/** Accepts the request and never answers. */
export function hang(): Handler {
  return () => undefined;
}

export function status(code: number): Handler {
  return (_req, res) => {
    res.statusCode = code;
    res.end();
  };
}

/** Versions of the metadata held in a client's cache folder, by file. */
export async function cachedVersions(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const visit = async (sub: string) => {
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch {
      return;
    }
    for (const name of names) {
      if (name === 'delegated') {
        await visit('delegated');
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const doc = JSON.parse(await readFile(join(dir, sub, name), 'utf8'));
      out[join(sub, name.slice(0, -5))] = doc.signed.version;
    }
  };
  await visit('');
  return out;
}

export function metadataOf<T extends Signed>(signed: T, keys: readonly TestKey[]): Metadata<T> {
  return signMetadata(
    signed,
    keys.map((k) => k.signer),
  );
}

export { signedToJson };
