/**
 * The pending routes of threshold signing over HTTP, on the embedded database, with everything a
 * co-signer reads back: refusal messages and details, states of held proposals, merges that stay
 * pending, bounds, headers, and the audit row of a publish. The cases mutation testing found
 * unchecked (pending.mutants.test.ts beside pending.ts has the path parser's).
 */
import {
  bumpVersion,
  expiresIn,
  type Metadata,
  type Targets,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withRootRole,
  withTarget,
} from '@tufa/core';
import { listAudit, type RunningServer } from '@tufa/server';
import { DAY, testKey as keyPair, sign, testCrypto } from '@tufa/testing';
import { body, gunUrl, keys, onlineKey, post, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PENDING_EXPIRY, PendingStore } from './pending.js';

const t = [keyPair(221), keyPair(222), keyPair(223)];
const d = [keyPair(231), keyPair(232)];
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

async function call(
  method: string,
  url: string,
  payload?: string,
  contentType: string | null = 'application/json',
) {
  const headers: Record<string, string> = contentType === null ? {} : { 'content-type': contentType };
  // Bytes, not a string: fetch would add a text/plain content type of its own.
  const res = await fetch(url, {
    method,
    ...(payload === undefined ? {} : { body: utf8Encode(payload), headers }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, any>),
  };
}

const propose = (gun: string, docs: Record<string, Metadata | string>, query = '') =>
  call('POST', `${pendingUrl(gun)}${query}`, body(docs));

const signaturesBody = (role: string, md: Metadata) =>
  JSON.stringify({ signatures: { [role]: md.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })) } });
const addSignatures = (gun: string, id: string, role: string, md: Metadata) =>
  call('POST', pendingUrl(gun, `${id}/signatures`), signaturesBody(role, md));

/** A collection whose targets role is `threshold`-of-3 and delegates releases/* 2-of-2; targets v1 published. */
async function collection(gun: string, threshold = 3): Promise<Targets> {
  const root = withRootRole(await rootFor(base, gun), 'targets', { keys: t.map((k) => k.key), threshold });
  const v1 = withDelegation(targetsV(1, { 'app/v1': 'v1' }, false), {
    name: 'releases',
    keys: d.map((k) => k.key),
    threshold: 2,
    paths: ['releases/*'],
  });
  const res = await post(base, gun, { root: sign(root, keys.root), targets: sign(v1, ...t) });
  expect(res.status).toBe(200);
  return v1;
}

const next = (from: Targets, tag: string, days = 90): Targets =>
  withTarget(
    bumpVersion(from, expiresIn(clock(), days * DAY)),
    tag,
    targetFileFor(testCrypto, utf8Encode(tag)),
  );

const releasesV1 = (): Targets =>
  withTarget(targetsV(1, {}, false), 'releases/r1', targetFileFor(testCrypto, utf8Encode('r1')));

describe('proposals that stay pending', () => {
  it('the same content proposed again with another signature: merged, still pending, kept', async () => {
    const gun = 'example.com/pending-m/merge';
    const v2 = next(await collection(gun), 'app/v2');
    const first = await propose(gun, { targets: sign(v2, t[0]!) });
    const again = await propose(gun, { targets: sign(v2, t[1]!) });
    expect([first.status, again.status, again.json.id]).toEqual([202, 202, first.json.id]);
    expect(again.json.status.needed).toBe(1);
    const held = await call('GET', pendingUrl(gun, first.json.id));
    expect(held.json.status.roles[0].thresholds[0].signed.sort()).toEqual([t[0]!.keyid, t[1]!.keyid].sort());
    // The third signature, proposed as the same content again, publishes it and removes it.
    const done = await propose(gun, { targets: sign(v2, t[2]!) });
    expect([done.status, done.json.published]).toEqual([200, true]);
    expect((await call('GET', pendingUrl(gun))).json.pending).toEqual([]);
  });

  it('signatures added one at a time: pending until the last, each one kept', async () => {
    const gun = 'example.com/pending-m/one-at-a-time';
    const v2 = next(await collection(gun), 'app/v2');
    const { id } = (await propose(gun, { targets: sign(v2, t[0]!) })).json;
    const second = await addSignatures(gun, id, 'targets', sign(v2, t[1]!));
    expect(second.status).toBe(200);
    expect(second.json).toMatchObject({ gun, id, published: false, status: { needed: 1, complete: false } });
    const held = await call('GET', pendingUrl(gun, id));
    expect(held.json.status.roles[0].thresholds[0].signed.sort()).toEqual([t[0]!.keyid, t[1]!.keyid].sort());
    const last = await addSignatures(gun, id, 'targets', sign(v2, t[2]!));
    expect(last.json).toMatchObject({ published: true, versions: { targets: 2 } });
  });

  it('two co-signers adding their signatures at once: neither signature is lost', async () => {
    const gun = 'example.com/pending-m/concurrent';
    const v2 = next(await collection(gun), 'app/v2');
    const { id } = (await propose(gun, { targets: sign(v2, t[0]!) })).json;
    const both = await Promise.all([
      addSignatures(gun, id, 'targets', sign(v2, t[1]!)),
      addSignatures(gun, id, 'targets', sign(v2, t[2]!)),
    ]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.filter((r) => r.json.published)).toHaveLength(1);
    const targets = await fetch(gunUrl(base, gun, 'targets.json'));
    expect(JSON.parse(await targets.text()).signed.version).toBe(2);
  });

  it('a publish through a pending update is audited like any publish', async () => {
    const gun = 'example.com/pending-m/audited';
    const v1 = await collection(gun, 2);
    const a = next(v1, 'app/a');
    const { id } = (await propose(gun, { targets: sign(a, t[0]!) })).json;
    await addSignatures(gun, id, 'targets', sign(a, t[1]!));
    const b = next(next(v1, 'x'), 'app/b');
    expect((await propose(gun, { targets: sign(b, t[0]!, t[1]!) })).json.published).toBe(true);
    const rows = await listAudit(server.store.pool, { gun, limit: 100 });
    const publishes = rows.filter((r) => r.action === 'publish').map((r) => [r.outcome, r.roles.targets]);
    expect(publishes).toEqual([
      ['accepted', 1],
      ['accepted', 2],
      ['accepted', 3],
    ]);
  });
});

describe('the state of a held proposal', () => {
  it('superseded when any role it proposes was published meanwhile', async () => {
    const gun = 'example.com/pending-m/superseded';
    const v1 = await collection(gun, 2);
    const a = next(v1, 'app/a');
    const held = await propose(gun, { targets: sign(a, t[0]!), releases: sign(releasesV1(), d[0]!) });
    expect(held.status).toBe(202);
    expect((await post(base, gun, { targets: sign(next(v1, 'app/b'), t[0]!, t[1]!) })).status).toBe(200);
    const [entry] = (await call('GET', pendingUrl(gun))).json.pending;
    expect(entry).toMatchObject({ id: held.json.id, state: 'superseded' });
    expect(entry.status).toBeUndefined();
    const late = await addSignatures(gun, held.json.id, 'targets', sign(a, t[1]!));
    expect(late.status).toBe(409);
    expect(late.json.error).toEqual({
      code: 'ROLLBACK',
      message: 'targets: version 2 has been published meanwhile: this proposal is superseded',
      details: { role: 'targets', expected: 3, found: 2, state: 'superseded' },
    });
  });

  it('invalid when it no longer fits the collection, with the rule’s code and message', async () => {
    const gun = 'example.com/pending-m/invalid';
    const v1 = await collection(gun);
    const short = next(v1, 'app/v2', 2);
    const { id } = (await propose(gun, { targets: sign(short, t[0]!) }, '?expires_in=864000')).json;
    offset += 3 * DAY;
    try {
      const [entry] = (await call('GET', pendingUrl(gun))).json.pending;
      expect(entry).toMatchObject({
        id,
        state: 'invalid',
        error: { code: 'EXPIRED', message: `targets: expired at ${short.expires}` },
      });
      expect((await call('GET', pendingUrl(gun, id))).json.state).toBe('invalid');
    } finally {
      offset -= 3 * DAY;
    }
  });
});

describe('refusals, with their messages and details', () => {
  it('no such collection, no such proposal', async () => {
    const gun = 'example.com/pending-m/none';
    expect((await call('GET', pendingUrl(gun))).json.error).toEqual({
      code: 'NOT_FOUND',
      message: `${gun}: no such collection`,
      details: { gun },
    });
    const known = 'example.com/pending-m/known';
    await collection(known);
    const id = 'cd'.repeat(32);
    expect((await call('GET', pendingUrl(known, id))).json.error).toEqual({
      code: 'NOT_FOUND',
      message: `${known}: no pending update ${id} (published, dropped or expired)`,
      details: { gun: known, id },
    });
    expect((await call('DELETE', pendingUrl(known, id))).json.error).toEqual({
      code: 'NOT_FOUND',
      message: `${known}: no pending update ${id}`,
      details: { gun: known, id },
    });
  });

  it('a dropped proposal is named in the answer', async () => {
    const gun = 'example.com/pending-m/drop';
    const v2 = next(await collection(gun), 'app/v2');
    const { id } = (await propose(gun, { targets: sign(v2, t[0]!) })).json;
    expect((await call('DELETE', pendingUrl(gun, id))).json).toEqual({ gun, dropped: id });
  });

  it('signatures for a role the proposal does not carry; a body that is not JSON; a body too large', async () => {
    const gun = 'example.com/pending-m/signatures';
    const v2 = next(await collection(gun), 'app/v2');
    const { id } = (await propose(gun, { targets: sign(v2, t[0]!) })).json;
    const long = `r${'x'.repeat(400)}`;
    const unknown = await call(
      'POST',
      pendingUrl(gun, `${id}/signatures`),
      signaturesBody(long, sign(v2, t[1]!)),
    );
    expect(unknown.json.error).toEqual({
      code: 'INVALID_ARGUMENT',
      message: `${long}: not a role of this pending update`,
      details: { role: long.slice(0, 300) },
    });
    const broken = await call('POST', pendingUrl(gun, `${id}/signatures`), '{"signatures":');
    expect(broken.json.error.code).toBe('INVALID_JSON');
    expect(broken.json.error.message).toMatch(/^signatures\b/);
    const huge = await call(
      'POST',
      pendingUrl(gun, `${id}/signatures`),
      `{"pad":"${'a'.repeat(300 * 1024)}"}`,
    );
    expect([huge.status, huge.json.error.code]).toEqual([413, 'TOO_LARGE']);
  });

  it('a root whose timestamp role is the server’s snapshot key, or whose snapshot role is its timestamp key', async () => {
    const gun = 'example.com/pending-m/online-keys';
    await collection(gun);
    const [timestampKey, snapshotKey] = [
      await onlineKey(base, gun, 'timestamp'),
      await onlineKey(base, gun, 'snapshot'),
    ];
    const v1 = await rootFor(base, gun);
    // Root 2-of-2, signed by one: the proposal stays pending, so the refusal is the pending check's own.
    const v2 = (change: 'timestamp' | 'snapshot', key: typeof timestampKey) =>
      withRootRole(
        withRootRole(
          withRootRole(bumpVersion(v1, expiresIn(clock(), 365 * DAY)), 'root', {
            keys: [keys.root.key, keyPair(240).key],
            threshold: 2,
          }),
          'targets',
          {
            keys: t.map((k) => k.key),
            threshold: 3,
          },
        ),
        change,
        { keys: [key] },
      );
    const control = await propose(gun, { root: sign(v2('timestamp', timestampKey), keys.root) });
    expect([control.status, control.json.published]).toEqual([202, false]);
    const swappedTimestamp = await propose(gun, { root: sign(v2('timestamp', snapshotKey), keys.root) });
    expect(swappedTimestamp.json.error).toMatchObject({
      code: 'INVALID_METADATA',
      details: { role: 'timestamp' },
    });
    const swappedSnapshot = await propose(gun, { root: sign(v2('snapshot', timestampKey), keys.root) });
    expect(swappedSnapshot.json.error).toMatchObject({
      code: 'UPDATE_REFUSED',
      details: { role: 'snapshot' },
    });
  });

  it(`at most 100 live proposals per collection`, async () => {
    const gun = 'example.com/pending-m/bound';
    const v1 = await collection(gun);
    for (let i = 0; i < 100; i++) {
      expect((await propose(gun, { targets: sign(next(v1, `app/${i}`), t[0]!) })).status).toBe(202);
    }
    const refused = await propose(gun, { targets: sign(next(v1, 'app/100'), t[0]!) });
    expect([refused.status, refused.json.error]).toEqual([
      409,
      {
        code: 'CONFLICT',
        message: `${gun}: 100 pending updates already; drop some first`,
        details: { limit: 100 },
      },
    ]);
  });
});

describe('expiry of a proposal', () => {
  it('7 days unless asked; from 1 second to 90 days', async () => {
    const gun = 'example.com/pending-m/expiry';
    const v1 = await collection(gun);
    const lifetime = async (query: string, tag: string) => {
      const { id } = (await propose(gun, { targets: sign(next(v1, tag), t[0]!) }, query)).json;
      const { json } = await call('GET', pendingUrl(gun, id));
      return Date.parse(json.expires) - Date.parse(json.created);
    };
    expect(DEFAULT_PENDING_EXPIRY).toBe(7 * 86_400_000);
    expect(new PendingStore(server.store).defaultExpiry).toBe(7 * 86_400_000);
    expect(new PendingStore(server.store, { defaultExpiry: 10 ** 12 }).defaultExpiry).toBe(90 * 86_400_000);
    expect(await lifetime('', 'a')).toBe(7 * 86_400_000);
    expect(await lifetime('?expires_in=1', 'b')).toBe(1000);
    expect(await lifetime('?expires_in=7776000', 'c')).toBe(90 * 86_400_000);
    for (const bad of ['7776001', '5x', 'x5', '0']) {
      const refused = await propose(gun, { targets: sign(next(v1, 'd'), t[0]!) }, `?expires_in=${bad}`);
      expect([refused.status, refused.json.error.message], bad).toEqual([
        400,
        'expires_in is a number of seconds from 1 to 7776000',
      ]);
    }
  });
});

describe('the HTTP surface', () => {
  it('application/json in any case and with parameters; anything else named in the refusal', async () => {
    const gun = 'example.com/pending-m/content-type';
    const v1 = await collection(gun);
    const payload = (tag: string) => body({ targets: sign(next(v1, tag), t[0]!) });
    expect(
      (await call('POST', pendingUrl(gun), payload('a'), 'Application/JSON ; charset=utf-8')).status,
    ).toBe(202);
    const plain = await call('POST', pendingUrl(gun), payload('b'), 'text/plain');
    expect([plain.status, plain.json.error]).toEqual([
      415,
      { code: 'INVALID_ARGUMENT', message: 'send application/json', details: { found: 'text/plain' } },
    ]);
    const none = await call('POST', pendingUrl(gun), payload('c'), null);
    expect(none.json.error.details).toEqual({ found: 'nothing' });
  });

  it('methods: HEAD like GET, others refused with the Allow header; never cached', async () => {
    const gun = 'example.com/pending-m/methods';
    const v2 = next(await collection(gun), 'app/v2');
    const { id } = (await propose(gun, { targets: sign(v2, t[0]!) })).json;
    const list = await call('GET', pendingUrl(gun));
    expect(list.headers.get('cache-control')).toBe('no-store');
    expect((await call('HEAD', pendingUrl(gun))).status).toBe(200);
    expect((await call('HEAD', pendingUrl(gun, id))).status).toBe(200);
    for (const [method, url, allow] of [
      ['PUT', pendingUrl(gun), 'GET, HEAD, POST'],
      ['GET', pendingUrl(gun, `${id}/signatures`), 'POST'],
      ['PUT', pendingUrl(gun, id), 'GET, HEAD, DELETE'],
    ] as const) {
      const refused = await call(method, url);
      expect([refused.status, refused.headers.get('allow'), refused.json.error.message]).toEqual([
        405,
        allow,
        `${method} is not allowed here (allowed: ${allow})`,
      ]);
    }
  });
});
