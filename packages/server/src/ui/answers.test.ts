/**
 * The status page's answers other than the happy path, against a real server whose pulls are
 * anonymous and whose writes need a token: every answer under /ui/ (refusals, redirects, 404s,
 * 304s) carries the page's CSP and headers, and a pending update (whose proposal names targets not
 * yet published) is shown only to a caller who may push, as GET …/pending/ is.
 */
import { bumpVersion, expiresIn, targetFileFor, utf8Encode, withRootRole, withTarget } from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, testKey as keyPair, sign, testCrypto } from '@tufa/testing';
import { body, gunUrl, keys, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PendingOverview } from '../overview.js';
import { PendingStore } from '../pending.js';
import type { Store } from '../store.js';
import { everyDelegatedRole, StatusPage, TargetIndex, UI_CSP, type Viewer } from './page.js';

const GUN = 'example.com/ui-answers/app';
const EMBARGOED = 'app/v2-embargoed';
const t = [keyPair(241), keyPair(242), keyPair(243)];

let server: RunningServer;
let url: string;
let ops: string;
let puller: string;

beforeAll(async () => {
  server = await startTestServer({ dataDir: tempDir(), allowAnonymousWrites: false });
  url = server.url;
  ops = (await server.tokens.create('ops', ['admin:*'])).token;
  puller = (await server.tokens.create('puller', ['pull:example.com/*'])).token;
  const auth = { 'content-type': 'application/json', authorization: `Bearer ${ops}` };
  const root = withRootRole(await rootFor(url, GUN, { token: ops }), 'targets', {
    keys: t.map((k) => k.key),
    threshold: 2,
  });
  const v1 = targetsV(1, { 'app/v1': 'v1' }, false);
  const published = await fetch(gunUrl(url, GUN), {
    method: 'POST',
    headers: auth,
    body: body({ root: sign(root, keys.root), targets: sign(v1, t[0]!, t[1]!) }),
  });
  expect(published.status).toBe(200);
  const v2 = withTarget(
    bumpVersion(v1, expiresIn(Date.now(), 90 * DAY)),
    EMBARGOED,
    targetFileFor(testCrypto, utf8Encode('v2')),
  );
  const proposed = await fetch(`${url}/v2/${GUN}/_trust/pending/`, {
    method: 'POST',
    headers: auth,
    body: body({ targets: sign(v2, t[2]!) }),
  });
  expect(proposed.status).toBe(202);
}, 120_000);

afterAll(async () => {
  await server?.close();
});

const collection = async (token?: string) => {
  const res = await fetch(`${url}/ui/api/collection?gun=${GUN}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  return { text: await res.text() };
};

describe('the status page where pulls are anonymous and writes need a token', () => {
  it('shows a pending update to a caller who may push, and to no other (it names unpublished targets)', async () => {
    // What the pending API itself answers: a writer's list.
    expect((await fetch(`${url}/v2/${GUN}/_trust/pending/`)).status).toBe(401);
    for (const token of [undefined, puller]) {
      const { text } = await collection(token);
      expect(JSON.parse(text).pending, String(token)).toBeNull();
      expect(text).not.toContain(EMBARGOED);
    }
    const shown = JSON.parse((await collection(ops)).text);
    expect(shown.pending).toHaveLength(1);
    expect(shown.pending[0].changes[0].targets.added).toEqual([EMBARGOED]);
  });

  it('every answer under /ui/ carries the CSP and nosniff: refusals, redirects, 404, 405, 304', async () => {
    const etag = (await fetch(`${url}/ui/app.js`)).headers.get('etag')!;
    const answers: [string, RequestInit, number][] = [
      ['/ui', { redirect: 'manual' }, 308],
      ['/ui/nothing.js', {}, 404],
      ['/ui/api/nothing', {}, 404],
      ['/ui/', { method: 'POST' }, 405],
      ['/ui/api/collection', {}, 400],
      ['/ui/api/collections?page=0', {}, 400],
      ['/ui/api/collections', { headers: { authorization: 'Bearer tufa_0000000000000000_x' } }, 401],
      [`/ui/api/collection?gun=example.com/ui-answers/none`, {}, 404],
      ['/ui/app.js', { headers: { 'if-none-match': etag } }, 304],
    ];
    for (const [path, init, status] of answers) {
      const res = await fetch(`${url}${path}`, init);
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-security-policy'), path).toBe(UI_CSP);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
    }
  });
});

describe('bad query parameters', () => {
  it('are 400 INVALID_ARGUMENT, never a 500', async () => {
    const long = 'a'.repeat(257);
    const bad = [
      'api/collections?page=abc',
      'api/collections?page=-1',
      'api/collections?page=1e3',
      'api/collections?page=99999999',
      'api/collections?page=1&page=2',
      `api/collections?q=${long}`,
      'api/collections?q=a&q=b',
      'api/collection?gun=',
      'api/collection?gun=%00',
      `api/collection?gun=${encodeURIComponent('a/../b')}`,
      `api/collection?gun=${'a'.repeat(300)}`,
      'api/collection?gun=a&gun=b',
      'api/targets',
      `api/targets?gun=${GUN}&page=0`,
      `api/targets?gun=${GUN}&q=${long}`,
    ];
    for (const path of bad) {
      const res = await fetch(`${url}/ui/${path}`);
      const got = (await res.json()) as { error?: { code: string } };
      expect([res.status, got.error?.code], path).toEqual([400, 'INVALID_ARGUMENT']);
    }
    // Odd but harmless: a page past the end is empty, a search that is a regex or a LIKE pattern is text.
    for (const q of ['.*', '%', '_', '(', '[', '%ZZ']) {
      const res = await fetch(
        `${url}/ui/api/targets?gun=${GUN}&q=${q === '%ZZ' ? q : encodeURIComponent(q)}`,
      );
      expect([res.status, ((await res.json()) as { total: number }).total], q).toEqual([200, 0]);
    }
  });
});

describe('the cost of the collections list', () => {
  it('a burst of list requests shares one pass over every collection’s expiries', async () => {
    // The server's own pool and store, with the passes over every collection counted.
    let passes = 0;
    const pool = server.store.pool;
    const counted = new Proxy(pool, {
      get(target, name) {
        if (name === 'query') {
          return (...args: Parameters<typeof pool.query>) => {
            if (String(args[0]).includes('GROUP BY c.gun')) passes++;
            return (target.query as (...a: unknown[]) => unknown)(...args);
          };
        }
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const store = new Proxy(server.store, {
      get: (target, name) => (name === 'pool' ? counted : Reflect.get(target, name)),
    }) as Store;
    const page = new StatusPage({
      store,
      pending: new PendingOverview(new PendingStore(store), counted, store.now),
    });
    const anyone: Viewer = {
      admit: async () => {},
      mayPull: async () => true,
      requirePull: async () => {},
      mayPush: async () => false,
    };
    const lists = await Promise.all(
      Array.from({ length: 8 }, () => page.answer('api/collections', {}, {}, anyone)),
    );
    expect(passes).toBe(1);
    for (const list of lists) expect((list.body as { total: number }).total).toBe(1);
  });
});

describe('the cost of a page of targets', () => {
  it('the sorted targets are built once per set of stored documents, not per request', async () => {
    const load = async () => {
      const client = await server.store.pool.connect();
      try {
        const id = (await server.store.collectionId(client, GUN))!;
        const loaded = await server.store.loadState(client, id);
        return { targets: loaded.state.targets, delegated: await everyDelegatedRole(loaded) };
      } finally {
        client.release();
      }
    };
    const index = new TargetIndex();
    const first = index.entries(GUN, await load());
    expect(first.map((t) => t.name)).toEqual(['app/v1']);
    // Loaded again: the store hands out the same parsed documents, so the same sorted list.
    expect(index.entries(GUN, await load())).toBe(first);
    // Another document (a new version, here a copy): built again.
    const loaded = await load();
    const again = index.entries(GUN, { ...loaded, targets: { ...loaded.targets! } });
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});
