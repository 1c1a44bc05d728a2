/**
 * The pending routes of threshold signing, in-process on the embedded database: proposals,
 * signatures merged until the thresholds are met and the update is published, competing
 * proposals, expiry, and every refusal with its error code.
 */
import { request } from 'node:http';
import {
  bumpVersion,
  expiresIn,
  type Metadata,
  newTargets,
  parseMetadata,
  serializeMetadata,
  type Targets,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withRootRole,
  withTarget,
} from '@tufa/core';
import { listAudit, type RunningServer } from '@tufa/server';
import { DAY, testKey as keyPair, sign, testCrypto } from '@tufa/testing';
import { body, gunUrl, keys, post, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PENDING_EXPIRY, PendingStore } from './pending.js';

const t = [keyPair(201), keyPair(202), keyPair(203)];
const outsider = keyPair(299);
let offset = 0;
const clock = () => Date.now() + offset;

let server: RunningServer;
let base: string;
beforeAll(async () => {
  server = await startTestServer({ dataDir: tempDir() }, { clock });
  base = server.url;
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const pendingUrl = (gun: string, rest = '') => `${base}/v2/${gun}/_trust/pending/${rest}`;

async function call(method: string, url: string, payload?: string, contentType = 'application/json') {
  const res = await fetch(url, {
    method,
    ...(payload === undefined ? {} : { body: payload, headers: { 'content-type': contentType } }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, any>) };
}

/** A request with the path exactly as given (fetch would normalise `..` away). */
function rawCall(method: string, path: string): Promise<{ status: number; json: Record<string, any> }> {
  const url = new URL(base);
  return new Promise((done, fail) => {
    const req = request({ host: url.hostname, port: url.port, path, method }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => done({ status: res.statusCode!, json: JSON.parse(text) }));
    });
    req.on('error', fail);
    req.end();
  });
}

const propose = (gun: string, docs: Record<string, Metadata | Uint8Array | string>, query = '') =>
  call('POST', `${pendingUrl(gun)}${query}`, body(docs));

const addSignatures = (gun: string, id: string, role: string, md: Metadata) =>
  call(
    'POST',
    pendingUrl(gun, `${id}/signatures`),
    JSON.stringify({ signatures: { [role]: md.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })) } }),
  );

/** A collection whose targets role is 2-of-3 (t0, t1, t2), published with targets v1. */
async function twoOfThree(gun: string): Promise<Targets> {
  const root = withRootRole(await rootFor(base, gun), 'targets', { keys: t.map((k) => k.key), threshold: 2 });
  const v1 = targetsV(1, { 'app/v1': 'v1' }, false);
  const res = await post(base, gun, { root: sign(root, keys.root), targets: sign(v1, t[0]!, t[1]!) });
  expect(res.status).toBe(200);
  return v1;
}

const next = (from: Targets, tag: string): Targets =>
  withTarget(
    bumpVersion(from, expiresIn(Date.now(), 90 * DAY)),
    tag,
    targetFileFor(testCrypto, utf8Encode(tag)),
  );

const latestTargets = async (gun: string) =>
  parseMetadata(
    'targets',
    new Uint8Array(await (await fetch(gunUrl(base, gun, 'targets.json'))).arrayBuffer()),
  );

describe('pending updates', () => {
  it('2-of-3 targets: pending after one signature, published by the second; clients never see it pending', async () => {
    const gun = 'example.com/pending/two-of-three';
    const v1 = await twoOfThree(gun);
    const v2 = next(v1, 'app/v2');
    const proposed = await propose(gun, { targets: sign(v2, t[0]!) });
    expect(proposed.status).toBe(202);
    expect(proposed.json.published).toBe(false);
    expect(proposed.json.status.needed).toBe(1);
    const id = proposed.json.id as string;
    expect((await latestTargets(gun)).signed.version).toBe(1);
    const unpublished = await call('GET', gunUrl(base, gun, '2.targets.json'));
    expect([unpublished.status, unpublished.json.error.code]).toEqual([404, 'NOT_FOUND']);

    const list = await call('GET', pendingUrl(gun));
    expect(list.status).toBe(200);
    expect(list.json.pending).toHaveLength(1);
    const [entry] = list.json.pending;
    expect(entry).toMatchObject({ id, state: 'pending', roles: [{ role: 'targets', version: 2 }] });
    expect(entry.status.roles[0].thresholds[0]).toMatchObject({
      threshold: 2,
      signed: [t[0]!.keyid],
      needed: 1,
    });
    expect(entry.changes[0].targets).toEqual({ added: ['app/v2'], removed: [], changed: [] });

    const one = await call('GET', pendingUrl(gun, id));
    expect(one.status).toBe(200);
    const bytes = new Uint8Array(Buffer.from(one.json.documents.targets, 'base64'));
    expect(Buffer.from(bytes).equals(Buffer.from(serializeMetadata(sign(v2, t[0]!))))).toBe(true);

    const foreign = await addSignatures(gun, id, 'targets', sign(v2, outsider));
    expect(foreign.status).toBe(400);
    expect(foreign.json.error.code).toBe('BAD_SIGNATURE');
    const otherContent = await addSignatures(gun, id, 'targets', sign(next(v1, 'app/evil'), t[1]!));
    expect(otherContent.status).toBe(400);
    expect(otherContent.json.error.code).toBe('BAD_SIGNATURE');
    const unknownRole = await addSignatures(gun, id, 'releases', sign(v2, t[1]!));
    expect(unknownRole.json.error.code).toBe('INVALID_ARGUMENT');

    const done = await addSignatures(gun, id, 'targets', sign(v2, t[1]!));
    expect(done.status).toBe(200);
    expect(done.json.published).toBe(true);
    expect(done.json.versions).toMatchObject({ targets: 2, snapshot: 2, timestamp: 2 });
    const published = await latestTargets(gun);
    expect(published.signed.version).toBe(2);
    expect(published.signatures.map((s) => s.keyid).sort()).toEqual([t[0]!.keyid, t[1]!.keyid].sort());
    expect((await call('GET', pendingUrl(gun))).json.pending).toEqual([]);
    expect((await call('GET', pendingUrl(gun, id))).json.error.code).toBe('NOT_FOUND');
  });

  it('the same content proposed by two signers merges, and a complete proposal is published at once', async () => {
    const gun = 'example.com/pending/merge';
    const v1 = await twoOfThree(gun);
    const v2 = next(v1, 'app/v2');
    const a = await propose(gun, { targets: sign(v2, t[0]!) });
    const b = await propose(gun, { targets: sign(v2, t[2]!) });
    expect(b.json.id).toBe(a.json.id);
    expect(b.json.published).toBe(true);
    expect((await latestTargets(gun)).signed.version).toBe(2);
    const at = await propose(gun, { targets: sign(next(next(v1, 'x'), 'app/v3'), t[0]!, t[1]!) });
    expect(at.status).toBe(200);
    expect(at.json.published).toBe(true);
  });

  it('competing proposals: publishing one supersedes the other, which is refused and can be dropped', async () => {
    const gun = 'example.com/pending/competing';
    const v1 = await twoOfThree(gun);
    const a = await propose(gun, { targets: sign(next(v1, 'app/a'), t[0]!) });
    const b = await propose(gun, { targets: sign(next(v1, 'app/b'), t[1]!) });
    expect(a.json.id).not.toBe(b.json.id);
    expect((await call('GET', pendingUrl(gun))).json.pending).toHaveLength(2);
    const won = await addSignatures(gun, b.json.id, 'targets', sign(next(v1, 'app/b'), t[2]!));
    expect(won.json.published).toBe(true);
    const list = (await call('GET', pendingUrl(gun))).json.pending as { id: string; state: string }[];
    expect(list).toEqual([expect.objectContaining({ id: a.json.id, state: 'superseded' })]);
    const late = await addSignatures(gun, a.json.id, 'targets', sign(next(v1, 'app/a'), t[2]!));
    expect(late.status).toBe(409);
    expect(late.json.error.code).toBe('ROLLBACK');
    expect((await call('DELETE', pendingUrl(gun, a.json.id))).status).toBe(200);
    expect((await call('DELETE', pendingUrl(gun, a.json.id))).json.error.code).toBe('NOT_FOUND');
    expect((await call('GET', pendingUrl(gun))).json.pending).toEqual([]);
    // Every proposal, signature and drop is in the audit log, accepted or refused.
    const rows = await listAudit(server.store.pool, { gun, limit: 100 });
    const seen = rows.filter((r) => r.action.startsWith('pending.')).map((r) => `${r.action} ${r.outcome}`);
    expect(seen).toEqual([
      'pending.propose accepted',
      'pending.propose accepted',
      'pending.sign accepted',
      'pending.sign ROLLBACK',
      'pending.drop accepted',
      'pending.drop NOT_FOUND',
    ]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/route="pending_signatures"/);
    expect(metrics).toMatch(/route="pending"/);
  });

  it('a pending update expires after the time asked for (bounded by the server)', async () => {
    const gun = 'example.com/pending/expiry';
    const v1 = await twoOfThree(gun);
    const v2 = next(v1, 'app/v2');
    const proposed = await propose(gun, { targets: sign(v2, t[0]!) }, '?expires_in=60');
    expect(proposed.status).toBe(202);
    expect((await call('GET', pendingUrl(gun))).json.pending).toHaveLength(1);
    offset += 61_000;
    try {
      expect((await call('GET', pendingUrl(gun))).json.pending).toEqual([]);
      const late = await addSignatures(gun, proposed.json.id, 'targets', sign(v2, t[1]!));
      expect(late.json.error.code).toBe('NOT_FOUND');
    } finally {
      offset -= 61_000;
    }
    for (const bad of ['0', '-1', 'abc', String(91 * 24 * 3600)]) {
      const refused = await propose(gun, { targets: sign(v2, t[0]!) }, `?expires_in=${bad}`);
      expect(refused.status, bad).toBe(400);
      expect(refused.json.error.code).toBe('INVALID_ARGUMENT');
    }
  });

  it('refuses what could never be published, with the rule’s code', async () => {
    const gun = 'example.com/pending/refusals';
    const v1 = await twoOfThree(gun);
    const v2 = next(v1, 'app/v2');
    const code = async (p: Promise<{ status: number; json: Record<string, any> }>) => {
      const r = await p;
      return `${r.status} ${r.json.error?.code}`;
    };
    expect(await code(propose(gun, { targets: sign(v2) }))).toBe('400 THRESHOLD_NOT_MET');
    expect(await code(propose(gun, { targets: sign(v2, outsider) }))).toBe('400 BAD_SIGNATURE');
    const tampered = { ...sign(next(v1, 'app/evil')), signatures: sign(v2, t[0]!).signatures };
    expect(await code(propose(gun, { targets: tampered }))).toBe('400 BAD_SIGNATURE');
    expect(await code(propose(gun, { targets: sign(next(v2, 'app/v3'), t[0]!) }))).toBe(
      '400 VERSION_MISMATCH',
    );
    expect(await code(propose(gun, { targets: sign(v1, t[0]!) }))).toBe('409 ROLLBACK');
    expect(await code(propose(gun, { snapshot: sign(v2, t[0]!) }))).toBe('400 UPDATE_REFUSED');
    expect(await code(propose(gun, { targets: '{"signed": 1}' }))).toBe('400 INVALID_METADATA');
    expect(await code(propose('example.com/pending/nothing', { targets: sign(v2, t[0]!) }))).toBe(
      '404 NOT_FOUND',
    );
    expect(await code(call('POST', pendingUrl(gun), body({ targets: sign(v2, t[0]!) }), 'text/plain'))).toBe(
      '415 INVALID_ARGUMENT',
    );
    expect(await code(call('GET', pendingUrl(gun, 'abc')))).toBe('404 NOT_FOUND');
    expect(await code(call('PUT', pendingUrl(gun)))).toBe('405 INVALID_ARGUMENT');
    expect(await code(rawCall('GET', '/v2/a/../b/_trust/pending/'))).toBe('400 INVALID_ARGUMENT');
    const id = (await propose(gun, { targets: sign(v2, t[0]!) })).json.id as string;
    const badBody = await call(
      'POST',
      pendingUrl(gun, `${id}/signatures`),
      JSON.stringify({ signatures: [] }),
    );
    expect(badBody.json.error.code).toBe('INVALID_ARGUMENT');
    const badSig = await call(
      'POST',
      pendingUrl(gun, `${id}/signatures`),
      JSON.stringify({ signatures: { targets: [{ keyid: t[1]!.keyid, sig: 'ab'.repeat(64) }] } }),
    );
    expect(badSig.json.error.code).toBe('BAD_SIGNATURE');
    // Nothing of a refused request was kept: the proposal still has its one signature.
    const held = (await call('GET', pendingUrl(gun, id))).json;
    expect(held.status.roles[0].thresholds[0].signed).toEqual([t[0]!.keyid]);
  });

  it("an operator's default expiry applies when the proposer asks for none", async () => {
    const gun = 'example.com/pending/default-expiry';
    const v1 = await twoOfThree(gun);
    const store = new PendingStore(server.store, { defaultExpiry: 30_000 });
    const proposed = await store.propose(
      gun,
      new Map([['targets', serializeMetadata(sign(next(v1, 'x'), t[0]!))]]),
    );
    expect(proposed.published).toBe(false);
    const [entry] = await store.list(gun);
    expect(Date.parse(entry!.expires) - Date.parse(entry!.created)).toBe(30_000);
    expect(new PendingStore(server.store, { defaultExpiry: 10 ** 12 }).defaultExpiry).toBe(
      MAX_PENDING_EXPIRY,
    );
  });

  it('a role that two delegators name: pending through the second one, published when its threshold is met', async () => {
    const gun = 'example.com/pending/two-delegators';
    const [a, b, x] = [keyPair(220), keyPair(221), keyPair(222)];
    const empty = () => newTargets({ expires: expiresIn(Date.now(), 90 * DAY) });
    const top = withDelegation(withDelegation(targetsV(1), { name: 'a', keys: [a.key], paths: ['*'] }), {
      name: 'b',
      keys: [b.key],
      paths: ['*'],
    });
    // a gives `shared` to x alone; b gives it to t0 and t1, 2 of 2.
    const byA = withDelegation(empty(), { name: 'shared', keys: [x.key], paths: ['s/*'] });
    const byB = withDelegation(empty(), {
      name: 'shared',
      keys: [t[0]!.key, t[1]!.key],
      threshold: 2,
      paths: ['s/*'],
    });
    const first = await post(base, gun, {
      root: sign(await rootFor(base, gun), keys.root),
      targets: sign(top, keys.targets),
      a: sign(byA, a),
      b: sign(byB, b),
    });
    expect(first.status).toBe(200);
    const shared = withTarget(empty(), 's/1', targetFileFor(testCrypto, utf8Encode('s1')));
    const proposed = await propose(gun, { shared: sign(shared, t[0]!) });
    expect([proposed.status, proposed.json.error?.code]).toEqual([202, undefined]);
    expect(proposed.json.status.roles[0]).toMatchObject({ role: 'shared', complete: false, oneOf: true });
    expect(
      proposed.json.status.roles[0].thresholds.map((x: { by: string; needed: number }) => [x.by, x.needed]),
    ).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
    expect(proposed.json.status.needed).toBe(1);
    const done = await addSignatures(gun, proposed.json.id, 'shared', sign(shared, t[1]!));
    expect(done.json.published).toBe(true);
    expect(done.json.versions.shared).toBe(1);
  });

  it('root rotation 1-of-1 to 2-of-2: both thresholds reported until met', async () => {
    const gun = 'example.com/pending/root';
    await twoOfThree(gun);
    const current = parseMetadata(
      'root',
      new Uint8Array(await (await fetch(gunUrl(base, gun, 'root.json'))).arrayBuffer()),
    );
    const second = keyPair(210);
    const v2 = withRootRole(bumpVersion(current.signed, expiresIn(Date.now(), 365 * DAY)), 'root', {
      keys: [keys.root.key, second.key],
      threshold: 2,
    });
    const proposed = await propose(gun, { root: sign(v2, keys.root) });
    expect(proposed.status).toBe(202);
    expect(
      proposed.json.status.roles[0].thresholds.map((x: { by: string; needed: number }) => [x.by, x.needed]),
    ).toEqual([
      ['root v1', 0],
      ['root v2', 1],
    ]);
    const done = await addSignatures(gun, proposed.json.id, 'root', sign(v2, second));
    expect(done.json.published).toBe(true);
    expect(done.json.versions.root).toBe(2);
  });
});
