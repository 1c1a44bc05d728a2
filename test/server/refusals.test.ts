/**
 * Refusals of the server's update and proposal rules that no other test reached, sent as a hostile
 * client would send them: raw HTTP to a real tufa server (in-process, embedded database), never
 * through the CLI, which refuses most of these before they leave. Each asserts the exact code and
 * that nothing the server stores or serves changed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@tufa/client';
import {
  bumpVersion,
  type DelegatedRole,
  expiresIn,
  type Metadata,
  newSnapshot,
  newTargets,
  type Root,
  serializeMetadata,
  snapshotMetaForState,
  succinctBinNameFor,
  type Targets,
  type TopLevelRole,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withRootRole,
  withSuccinctDelegation,
  withTarget,
} from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, sign, testCrypto, testKey } from '@tufa/testing';
import { body, gunUrl, keys, post, publishNew, rootFor, targetsV } from '@tufa/testing/publisher';
import { MASTER_KEY, REPO, serverArgs, spawnServer, startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Targets is 2-of-2 (t1, t2), and so is the delegated role "releases" (r1, r2). */
const t1 = testKey(401);
const t2 = testKey(402);
const r1 = testKey(403);
const r2 = testKey(404);
/** A key id that no key table lists. */
const UNLISTED = 'ee'.repeat(32);

let server: RunningServer;
let base: string;
beforeAll(async () => {
  server = await startTestServer({ dataDir: tempDir() });
  base = server.url;
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const sha256 = (bytes: ArrayBuffer | Uint8Array) =>
  createHash('sha256')
    .update(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))
    .digest('hex');

/** Every stored row of the collection, its pending proposals, and what it serves. */
async function stateOf(gun: string) {
  const rows = await server.store.pool.query(
    `SELECT m.role, m.version, m.sha256 FROM metadata m JOIN collections c ON c.id = m.collection_id
     WHERE c.gun = $1 ORDER BY m.role, m.version`,
    [gun],
  );
  const pending = await server.store.pool.query(
    `SELECT p.id, p.documents, p.updated_at FROM pending_updates p JOIN collections c ON c.id = p.collection_id
     WHERE c.gun = $1 ORDER BY p.id`,
    [gun],
  );
  const served: Record<string, string> = {};
  for (const role of ['root', 'targets', 'snapshot', 'timestamp', 'releases']) {
    const res = await fetch(gunUrl(base, gun, `${role}.json`));
    served[role] = `${res.status} ${sha256(await res.arrayBuffer())}`;
  }
  return { rows: rows.rows, pending: pending.rows, served };
}

interface Answer {
  status: number;
  json: Record<string, any>;
}

/** Sends a refused request: asserts its status and code and that the collection did not change; the error. */
async function refused(gun: string, send: () => Promise<Answer>, status: number, code: string) {
  const before = await stateOf(gun);
  const res = await send();
  expect({ status: res.status, code: res.json.error?.code }, JSON.stringify(res.json)).toEqual({
    status,
    code,
  });
  expect(await stateOf(gun)).toEqual(before);
  return res.json.error as { code: string; message: string; details: Record<string, unknown> };
}

async function call(method: string, url: string, payload?: string): Promise<Answer> {
  const res = await fetch(url, {
    method,
    ...(payload === undefined ? {} : { body: payload, headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, any>) };
}

const pendingUrl = (gun: string, rest = '') => `${base}/v2/${gun}/_trust/pending/${rest}`;
const propose = (gun: string, docs: Record<string, Metadata | Uint8Array | string>) =>
  call('POST', pendingUrl(gun), body(docs));
const signatureBody = (role: string, md: Metadata) =>
  JSON.stringify({ signatures: { [role]: md.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })) } });

type Route = 'update' | 'proposal';
/** The atomic update, signed by every key; or a proposal, signed by the first key alone. */
function send(route: Route, gun: string, role: string, signed: Targets | Root): Promise<Answer> {
  const signers = role === 'root' ? [keys.root] : role === 'targets' ? [t1, t2] : [r1, r2];
  if (route === 'update') return post(base, gun, { [role]: sign(signed, ...signers) });
  return propose(gun, { [role]: sign(signed, signers[0]!) });
}
const ACCEPTED: Record<Route, number> = { update: 200, proposal: 202 };

/** A collection whose targets (2-of-2) delegates releases/* to "releases" (2-of-2); targets v1 published. */
async function collection(gun: string): Promise<{ root: Root; targets: Targets }> {
  const root = withRootRole(await rootFor(base, gun), 'targets', { keys: [t1.key, t2.key], threshold: 2 });
  const targets = withDelegation(targetsV(1, { 'app/v1': 'v1' }, false), {
    name: 'releases',
    keys: [r1.key, r2.key],
    threshold: 2,
    paths: ['releases/*'],
  });
  const res = await post(base, gun, { root: sign(root, keys.root), targets: sign(targets, t1, t2) });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return { root, targets };
}

const releasesV1 = (expires: string) =>
  withTarget(newTargets({ expires }), 'releases/r1', targetFileFor(testCrypto, utf8Encode('r1')));

/** One expiry for every document made here, so that the same content signed twice is the same proposal. */
const EXPIRES = expiresIn(Date.now(), 90 * DAY);
const nextTargets = (from: Targets, tag = 'app/v2') =>
  withTarget(bumpVersion(from, EXPIRES), tag, targetFileFor(testCrypto, utf8Encode(tag)));

/** Targets v2 whose delegation to "releases" is changed by `edit` (keys stay as they are). */
function withReleasesDelegation(from: Targets, edit: (role: DelegatedRole) => DelegatedRole): Targets {
  const next = nextTargets(from);
  const delegations = next.delegations!;
  return { ...next, delegations: { ...delegations, roles: delegations.roles.map(edit) } };
}

/** Root v2 with `role`'s key ids and threshold set as given (no key added to the key table). */
function rootWithRole(root: Root, role: TopLevelRole, keyids: string[], threshold: number): Root {
  const next = bumpVersion(root, root.expires);
  return { ...next, roles: { ...next.roles, [role]: { ...next.roles[role], keyids, threshold } } };
}

describe.each(['update', 'proposal'] as const)('the %s route', (route) => {
  it('an expired delegated role is EXPIRED and kept nowhere; the same role unexpired is accepted', async () => {
    const gun = `example.com/refusals/${route}/expired`;
    await collection(gun);
    const expired = releasesV1(expiresIn(Date.now(), -DAY));
    const err = await refused(gun, () => send(route, gun, 'releases', expired), 400, 'EXPIRED');
    expect(err.details).toMatchObject({ role: 'releases', found: expired.expires });
    const fresh = await send(route, gun, 'releases', releasesV1(expiresIn(Date.now(), 30 * DAY)));
    expect(fresh.status, JSON.stringify(fresh.json)).toBe(ACCEPTED[route]);
  });

  it('a document naming one key id twice in its signatures is DUPLICATE_SIGNATURE, kept nowhere', async () => {
    const gun = `example.com/refusals/${route}/duplicate-signature`;
    const { targets } = await collection(gun);
    const md = sign(nextTargets(targets), t1, t2);
    const twice = serializeMetadata({ ...md, signatures: [...md.signatures, md.signatures[0]!] });
    const sendTwice = () =>
      route === 'update' ? post(base, gun, { targets: twice }) : propose(gun, { targets: twice });
    const err = await refused(gun, sendTwice, 400, 'DUPLICATE_SIGNATURE');
    expect(err.details).toMatchObject({ role: 'targets', found: t1.keyid });
  });

  it('a delegation naming a key the delegations do not list is INVALID_METADATA', async () => {
    const gun = `example.com/refusals/${route}/unlisted-delegation-key`;
    const { targets } = await collection(gun);
    const bad = withReleasesDelegation(targets, (d) => ({ ...d, keyids: [...d.keyids, UNLISTED] }));
    const err = await refused(gun, () => send(route, gun, 'targets', bad), 400, 'INVALID_METADATA');
    expect(err.details).toMatchObject({ role: 'releases', found: [UNLISTED] });
    expect(err.message).toMatch(/names keys that are not listed/);
  });

  it('a delegation whose threshold its keys cannot meet is INVALID_METADATA', async () => {
    const gun = `example.com/refusals/${route}/unreachable-delegation`;
    const { targets } = await collection(gun);
    const bad = withReleasesDelegation(targets, (d) => ({ ...d, threshold: 3 }));
    const err = await refused(gun, () => send(route, gun, 'targets', bad), 400, 'INVALID_METADATA');
    expect(err.details).toMatchObject({ role: 'releases', expected: '<= 2', found: 3 });
    expect(err.message).toMatch(/threshold 3 cannot be met/);
  });

  it.each(['../x', '1.x', 'a//b', '.', 'x/..'])(
    'a delegated role named %j inside delegations is INVALID_METADATA',
    async (name) => {
      const gun = `example.com/refusals/${route}/name-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
      const { targets } = await collection(gun);
      const bad = withReleasesDelegation(targets, (d) => ({ ...d, name }));
      const err = await refused(gun, () => send(route, gun, 'targets', bad), 400, 'INVALID_METADATA');
      expect(err.details).toMatchObject({ role: 'targets', found: name });
    },
  );

  it('more than 1000 roles at once is TOO_LARGE before any document is read; 1000 go on to the rules', async () => {
    const gun = `example.com/refusals/${route}/roles`;
    await collection(gun);
    const many = (n: number) => `{${Array.from({ length: n }, (_, i) => `"r${i}":{}`).join(',')}}`;
    const url = route === 'update' ? gunUrl(base, gun) : pendingUrl(gun);
    const err = await refused(gun, () => call('POST', url, many(1001)), 413, 'TOO_LARGE');
    expect(err.details).toMatchObject({ expected: 1000, found: 1001 });
    // At the bound the count is fine, and the first document is what is refused.
    const atBound = await refused(gun, () => call('POST', url, many(1000)), 400, 'INVALID_METADATA');
    expect(atBound.details.role).toBe('r0');
  });
});

describe('succinct hash bins (TAP 15), through the atomic update', () => {
  it('a bin is validated like any delegated role: a path outside its bin is PATH_NOT_DELEGATED, kept nowhere', async () => {
    const gun = 'example.com/refusals/bins';
    const root = withRootRole(await rootFor(base, gun), 'targets', { keys: [t1.key, t2.key], threshold: 2 });
    // Bins 0-7 are delegated; none is published yet, which the client sees only when it needs one.
    const targets = withSuccinctDelegation(targetsV(1, {}, false), {
      keys: [r1.key],
      bitLength: 3,
      namePrefix: 'bins',
    });
    const created = await post(base, gun, { root: sign(root, keys.root), targets: sign(targets, t1, t2) });
    expect(created.status, JSON.stringify(created.json)).toBe(200);
    const succinct = targets.delegations!.succinctRoles!;
    const tag = 'app/v1';
    const right = succinctBinNameFor(succinct, tag);
    const wrong = right === 'bins-0' ? 'bins-1' : 'bins-0';
    const bin = sign(
      withTarget(newTargets({ expires: EXPIRES }), tag, targetFileFor(testCrypto, utf8Encode(tag))),
      r1,
    );
    const err = await refused(gun, () => post(base, gun, { [wrong]: bin }), 400, 'PATH_NOT_DELEGATED');
    expect(err.details).toMatchObject({ role: wrong });
    const ok = await post(base, gun, { [right]: bin });
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    const served = await fetch(gunUrl(base, gun, `${right}.json`));
    expect(served.status).toBe(200);
    const client = createClient(
      { server: base, gun },
      { cacheDir: tempDir(), trust: { rootFile: serializeMetadata(sign(root, keys.root)) } },
    );
    expect((await client.getTarget(tag)).role).toBe(right);
  });
});

describe('root, through the atomic update', () => {
  it('a root whose targets role names a key that root does not list is INVALID_METADATA', async () => {
    const gun = 'example.com/refusals/unlisted-root-key';
    const { root } = await collection(gun);
    const bad = rootWithRole(root, 'targets', [...root.roles.targets.keyids, UNLISTED], 2);
    const err = await refused(gun, () => send('update', gun, 'root', bad), 400, 'INVALID_METADATA');
    expect(err.details).toMatchObject({ role: 'targets', found: [UNLISTED] });
  });

  it('a root whose targets threshold its keys cannot meet is INVALID_METADATA', async () => {
    const gun = 'example.com/refusals/unreachable-root';
    const { root } = await collection(gun);
    const bad = rootWithRole(root, 'targets', [...root.roles.targets.keyids], 3);
    const err = await refused(gun, () => send('update', gun, 'root', bad), 400, 'INVALID_METADATA');
    expect(err.details).toMatchObject({ role: 'targets', expected: '<= 2', found: 3 });
  });
});

describe('a client-signed snapshot', () => {
  it('that leaves out a role of the update is INVALID_METADATA; listing it is accepted', async () => {
    const gun = 'example.com/refusals/offline-snapshot';
    const root = withRootRole(await rootFor(base, gun), 'snapshot', { keys: [keys.other.key] });
    const targets = sign(targetsV(1, { 'app/v1': 'v1' }), keys.targets); // delegates "releases"
    const stored = (md: Metadata<Targets>) => ({ bytes: serializeMetadata(md), metadata: md });
    const snapshotOf = (version: number, delegated: Map<string, ReturnType<typeof stored>>) =>
      sign(
        newSnapshot({
          version,
          expires: expiresIn(Date.now(), DAY),
          meta: snapshotMetaForState(testCrypto, { targets: stored(targets), delegated }),
        }),
        keys.other,
      );
    const first = await post(base, gun, {
      root: sign(root, keys.root),
      targets,
      snapshot: snapshotOf(1, new Map()),
    });
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    const releases = sign(releasesV1(expiresIn(Date.now(), 30 * DAY)), keys.releases);
    const err = await refused(
      gun,
      () => post(base, gun, { releases, snapshot: snapshotOf(2, new Map()) }),
      400,
      'INVALID_METADATA',
    );
    expect(err.details).toMatchObject({ role: 'releases', expected: 'releases.json' });
    expect(err.message).toMatch(/releases\.json is missing/);
    const listed = snapshotOf(2, new Map([['releases', stored(releases)]]));
    expect((await post(base, gun, { releases, snapshot: listed })).status).toBe(200);
  });
});

describe('proposals', () => {
  it('a signature for a superseded proposal is ROLLBACK saying so; the published targets and the proposal stay', async () => {
    const gun = 'example.com/refusals/superseded';
    const { targets } = await collection(gun);
    const a = nextTargets(targets, 'app/a');
    const proposed = await propose(gun, { targets: sign(a, t1) });
    expect(proposed.status).toBe(202);
    const published = await post(base, gun, { targets: sign(nextTargets(targets, 'app/b'), t1, t2) });
    expect(published.status).toBe(200);
    const id = proposed.json.id as string;
    const err = await refused(
      gun,
      () => call('POST', pendingUrl(gun, `${id}/signatures`), signatureBody('targets', sign(a, t2))),
      409,
      'ROLLBACK',
    );
    expect(err.details).toMatchObject({ state: 'superseded', role: 'targets', expected: 3, found: 2 });
    expect(err.message).toMatch(/superseded/);
    const held = await call('GET', pendingUrl(gun, id));
    expect(held.json.state).toBe('superseded');
  });

  it('signatures are bounded to 256 KiB per request: TOO_LARGE, nothing merged or published', async () => {
    const gun = 'example.com/refusals/signatures-size';
    const { targets } = await collection(gun);
    const v2 = nextTargets(targets);
    const id = (await propose(gun, { targets: sign(v2, t1) })).json.id as string;
    // The signature that completes the proposal, padded with JSON whitespace past the bound.
    const completing = signatureBody('targets', sign(v2, t2));
    const padded = completing.replace('{', `{${' '.repeat(256 * 1024 + 1 - completing.length)}`);
    const url = pendingUrl(gun, `${id}/signatures`);
    const err = await refused(gun, () => call('POST', url, padded), 413, 'TOO_LARGE');
    expect(err.details).toMatchObject({ limit: 256 * 1024 });
    // One space less is exactly the bound: read, merged and published.
    const accepted = await call('POST', url, `{${padded.slice(2)}`);
    expect(accepted.status, JSON.stringify(accepted.json)).toBe(200);
    expect(accepted.json.published).toBe(true);
  });

  it('a collection holds at most 100 pending proposals: the next is CONFLICT and not stored', async () => {
    const gun = 'example.com/refusals/pending-count';
    const { targets } = await collection(gun);
    for (let i = 0; i < 100; i++) {
      const res = await propose(gun, { targets: sign(nextTargets(targets, `app/p${i}`), t1) });
      expect(res.status, JSON.stringify(res.json)).toBe(202);
    }
    const err = await refused(
      gun,
      () => propose(gun, { targets: sign(nextTargets(targets, 'app/p100'), t1) }),
      409,
      'CONFLICT',
    );
    expect(err.details).toMatchObject({ limit: 100 });
    // More signatures for one already held are no new proposal.
    const again = await propose(gun, { targets: sign(nextTargets(targets, 'app/p0'), t2) });
    expect(again.status).toBe(200);
    expect(again.json.published).toBe(true);
  });
});

describe('the client against a real server', () => {
  it('verifyFile: a same-length file is HASH_MISMATCH; a long stream stops one chunk past the trusted length', async () => {
    const gun = 'example.com/refusals/verify-file';
    const { root } = await publishNew(base, gun, { 'app/v1': 'v1' });
    const client = createClient(
      { server: base, gun },
      { cacheDir: tempDir(), trust: { rootFile: serializeMetadata(root) } },
    );
    const same = (async function* () {
      yield utf8Encode('v2');
    })();
    await expect(client.verifyFile('app/v1', same)).rejects.toMatchObject({ code: 'HASH_MISMATCH' });
    // 64 MiB behind the two trusted bytes: reading stops at the first chunk past them.
    let pulled = 0;
    const long = (async function* () {
      yield utf8Encode('v1');
      for (let i = 0; i < 1024; i++) {
        pulled++;
        yield new Uint8Array(64 * 1024);
      }
    })();
    await expect(client.verifyFile('app/v1', long)).rejects.toMatchObject({
      code: 'LENGTH_MISMATCH',
      found: '> 2',
    });
    expect(pulled).toBe(1);
  });
});

/**
 * Runs `tufa-server ARGS` (from the sources) until it exits; one that starts serving instead is
 * stopped at once and reported as `started`, so that a missing refusal fails the test, not hangs it.
 */
function startOrExit(args: string[]): Promise<{ code: number | 'started'; stderr: string }> {
  const child = spawn(process.execPath, serverArgs('--port', '0', ...args), {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', TUFA_MASTER_KEY: MASTER_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let started = false;
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    if (!started && stdout.includes('"url":')) {
      started = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((done) =>
    child.once('close', (code) => done({ code: started ? 'started' : (code ?? -1), stderr })),
  );
}

describe('the data folder', () => {
  it('in use by a running server: a second tufa-server on it exits 3 with CONFLICT, and the first serves on', async () => {
    const dataDir = tempDir();
    const first = await spawnServer(['--data-dir', dataDir]);
    try {
      const gun = 'example.com/refusals/data-dir';
      await publishNew(first.url, gun);
      const servedBefore = sha256(await (await fetch(gunUrl(first.url, gun, 'targets.json'))).arrayBuffer());
      const pidFile = join(dataDir, 'server.pid');
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(first.child.pid));

      const second = await startOrExit(['--data-dir', dataDir]);
      expect(second.code, second.stderr).toBe(3);
      expect(second.stderr.trimEnd().split('\n').at(-1)).toBe(
        `tufa-server: CONFLICT: ${dataDir} is in use by another tufa-server (pid ${first.child.pid})`,
      );
      expect(second.stderr).not.toMatch(/\n\s+at /);

      // The first server's lock, database and answers are as they were, and it still publishes.
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(first.child.pid));
      expect((await fetch(`${first.url}/_health`)).status).toBe(200);
      const servedAfter = sha256(await (await fetch(gunUrl(first.url, gun, 'targets.json'))).arrayBuffer());
      expect(servedAfter).toBe(servedBefore);
      const next = await post(first.url, gun, { targets: sign(targetsV(2), keys.targets) });
      expect(next.status, JSON.stringify(next.json)).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  }, 120_000);
});
