/**
 * tufa collections for the benchmark, made with core: on a tufa-server (through its HTTP API, as
 * a publisher would) and as a static TUF repository folder (for the client comparison).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  dict,
  expiresIn,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  newTimestamp,
  type Root,
  type SuccinctRoles,
  serializeMetadata,
  succinctBinIndex,
  succinctBinName,
  type TargetFile,
  type Targets,
  withDelegation,
  withSuccinctDelegation,
  withTarget,
} from '@tufa/core';
import { rolesOf, sign, testCrypto, testKey } from '@tufa/testing';
import { body, gunUrl, rootFor } from '@tufa/testing/publisher';
import { DAY } from './util.js';

export const KEYS = { root: testKey(1), targets: testKey(2), snapshot: testKey(3), timestamp: testKey(4) };

/** A target entry like a container image's: sha256 and length only (about 100 bytes in targets.json). */
export function targetEntry(i: number): { path: string; file: TargetFile; digest: string } {
  const digest = createHash('sha256').update(`artifact ${i}`).digest('hex');
  return {
    path: `app/v${String(i).padStart(6, '0')}`,
    file: { length: 1000 + i, hashes: { sha256: digest }, extra: {} },
    digest: `sha256:${digest}`,
  };
}

/** Targets with `n` entries, built in one dictionary (withTarget copies, which is quadratic). */
export function targetsWith(n: number, version: number, extra: number[] = []): Targets {
  const targets = dict<TargetFile>();
  for (let i = 0; i < n; i++) {
    const t = targetEntry(i);
    targets[t.path] = t.file;
  }
  for (const i of extra) {
    const t = targetEntry(i);
    targets[t.path] = t.file;
  }
  return newTargets({ version, expires: expiresIn(Date.now(), 365 * DAY), targets });
}

export { gunUrl };

/** A tufa server and the access token to publish with (undefined: a server without access control). */
export interface Remote {
  base: string;
  token: string | undefined;
}

const auth = (remote: Remote): Record<string, string> =>
  remote.token === undefined ? {} : { authorization: `Bearer ${remote.token}` };

/** The body of an update: `{"role": <exact bytes>, ...}`. */
const updateBody = (docs: Record<string, Uint8Array>): Buffer => Buffer.from(body(docs));

/**
 * POSTs an update on a new connection (node:http, no agent): a kept-alive socket that the server
 * closes after its idle timeout while the next body is being signed would fail the request.
 */
export function postUpdate(remote: Remote, gun: string, body: Uint8Array): Promise<void> {
  return new Promise((done, fail) => {
    const req = request(
      gunUrl(remote.base, gun),
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': body.length, ...auth(remote) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          if (res.statusCode === 200) done();
          else
            fail(
              new Error(`POST ${gun}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 500)}`),
            );
        });
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error(`POST ${gun}: no answer in 120 s`)));
    req.on('error', fail);
    req.end(body);
  });
}

/** Creates a collection with `n` targets on a tufa server (root v1, targets v1; the server signs the rest). */
export async function createCollection(remote: Remote, gun: string, n: number): Promise<Root> {
  const root = await rootFor(remote.base, gun, { token: remote.token });
  const update = updateBody({
    root: serializeMetadata(sign(root, KEYS.root)),
    targets: serializeMetadata(sign(targetsWith(n, 1), KEYS.targets)),
  });
  await postUpdate(remote, gun, update);
  return root;
}

/** Bodies of `count` successive updates, each adding one target to targets (versions 2, 3, ...). */
export function successiveUpdates(n: number, count: number): Buffer[] {
  const bodies: Buffer[] = [];
  let targets = targetsWith(n, 1);
  for (let k = 0; k < count; k++) {
    const t = targetEntry(n + k);
    targets = { ...withTarget(targets, t.path, t.file), version: k + 2 };
    bodies.push(updateBody({ targets: serializeMetadata(sign(targets, KEYS.targets)) }));
  }
  return bodies;
}

/**
 * A static TUF repository (consistent snapshots) in `dir`: metadata/1.root.json, timestamp.json,
 * 1.snapshot.json, 1.targets.json and, for delegations, 1.NAME.json. Returns the tag to look up.
 */
export function writeStaticRepository(
  dir: string,
  options: { targets: number; delegations?: number },
): { tag: string; root: Uint8Array } {
  const metadata = join(dir, 'metadata');
  mkdirSync(metadata, { recursive: true });
  const expires = expiresIn(Date.now(), 365 * DAY);
  const root = sign(
    newRoot({
      expires,
      roles: rolesOf(KEYS),
    }),
    KEYS.root,
  );
  let targets = targetsWith(options.targets, 1);
  const roles: { name: string; bytes: Uint8Array }[] = [];
  let tag = targetEntry(options.targets - 1).path;
  const delegations = options.delegations ?? 0;
  for (let d = 0; d < delegations; d++) {
    const name = `team${String(d).padStart(3, '0')}`;
    const pair = testKey(100 + d);
    targets = withDelegation(targets, { name, keys: [pair.key], paths: [`${name}/*`] });
    const own = dict<TargetFile>();
    for (let i = 0; i < 4; i++) own[`${name}/v${i}`] = targetEntry(d * 4 + i).file;
    const role = newTargets({ version: 1, expires, targets: own });
    roles.push({ name, bytes: serializeMetadata(sign(role, pair)) });
    tag = `${name}/v3`;
  }
  const targetsBytes = serializeMetadata(sign(targets, KEYS.targets));
  const meta: Record<string, ReturnType<typeof metaFileFor>> = {
    'targets.json': metaFileFor(testCrypto, targetsBytes, 1, { hashes: [], length: false }),
  };
  for (const r of roles)
    meta[`${r.name}.json`] = metaFileFor(testCrypto, r.bytes, 1, { hashes: [], length: false });
  const snapshotBytes = serializeMetadata(sign(newSnapshot({ version: 1, expires, meta }), KEYS.snapshot));
  const timestampBytes = serializeMetadata(
    sign(
      newTimestamp({ version: 1, expires, snapshotMeta: metaFileFor(testCrypto, snapshotBytes, 1) }),
      KEYS.timestamp,
    ),
  );
  const rootBytes = serializeMetadata(root);
  writeFileSync(join(metadata, '1.root.json'), rootBytes);
  writeFileSync(join(metadata, 'root.json'), rootBytes);
  writeFileSync(join(metadata, 'timestamp.json'), timestampBytes);
  writeFileSync(join(metadata, '1.snapshot.json'), snapshotBytes);
  writeFileSync(join(metadata, '1.targets.json'), targetsBytes);
  for (const r of roles) writeFileSync(join(metadata, `1.${r.name}.json`), r.bytes);
  return { tag, root: rootBytes };
}

/** The key every bench bin is signed with. */
export const BIN_KEY = testKey(5);

/** A collection in succinct hash bins as the bench builds it: targets, each bin's targets, and the timings. */
export interface BinnedCollection {
  root: Root;
  succinct: SuccinctRoles;
  /** Each bin's signed content as last uploaded, by bin number. */
  bins: Targets[];
  /** ms: generating and signing every document; then uploading them (all the updates). */
  buildMs: number;
  uploadMs: number;
  updates: number;
  /** The path of a target of the collection (for a lookup). */
  tag: string;
}

/**
 * Creates a collection of `targets` targets in 2^bits succinct bins on a tufa server: root, targets
 * and the first bins in one update, the other bins in updates of at most `perUpdate` roles.
 */
export async function createBinnedCollection(
  remote: Remote,
  gun: string,
  options: { targets: number; bits: number; perUpdate: number },
): Promise<BinnedCollection> {
  const started = performance.now();
  const expires = expiresIn(Date.now(), 365 * DAY);
  const root = await rootFor(remote.base, gun, { token: remote.token });
  const targets = withSuccinctDelegation(newTargets({ version: 1, expires }), {
    keys: [BIN_KEY.key],
    bitLength: options.bits,
    namePrefix: 'bins',
  });
  const succinct = targets.delegations!.succinctRoles!;
  const count = 2 ** options.bits;
  const content = Array.from({ length: count }, () => dict<TargetFile>());
  for (let i = 0; i < options.targets; i++) {
    const t = targetEntry(i);
    content[succinctBinIndex(succinct, t.path)]![t.path] = t.file;
  }
  const bins = content.map((own) => newTargets({ version: 1, expires, targets: own }));
  const documents: [string, Uint8Array][] = [
    ['root', serializeMetadata(sign(root, KEYS.root))],
    ['targets', serializeMetadata(sign(targets, KEYS.targets))],
  ];
  for (let b = 0; b < count; b++) {
    documents.push([succinctBinName(succinct, b), serializeMetadata(sign(bins[b]!, BIN_KEY))]);
  }
  const built = performance.now();
  let updates = 0;
  while (documents.length > 0) {
    await postUpdate(remote, gun, updateBody(Object.fromEntries(documents.splice(0, options.perUpdate))));
    updates++;
  }
  return {
    root,
    succinct,
    bins,
    buildMs: built - started,
    uploadMs: performance.now() - built,
    updates,
    tag: targetEntry(options.targets - 1).path,
  };
}

/** Bodies of `count` successive updates of a binned collection, each adding one target to its bin. */
export function successiveBinUpdates(c: BinnedCollection, first: number, count: number): Buffer[] {
  const bodies: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    const t = targetEntry(first + k);
    const b = succinctBinIndex(c.succinct, t.path);
    const bin = c.bins[b]!;
    c.bins[b] = { ...withTarget(bin, t.path, t.file), version: bin.version + 1 };
    bodies.push(
      updateBody({ [succinctBinName(c.succinct, b)]: serializeMetadata(sign(c.bins[b]!, BIN_KEY)) }),
    );
  }
  return bodies;
}
