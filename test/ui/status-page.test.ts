/**
 * The status page at /ui/ in headless Chromium against real servers: an expired targets role
 * shown as expired, a pending 2-of-3 version with one signature missing, hostile target names
 * shown as text (and no script of theirs run), hash bins summed up, and a server whose pulls need
 * a token: the page asks for one, shows what its scopes cover, and /metrics follows the same rule.
 * A screenshot of each view lands in reports/ui/.
 */
import {
  bumpVersion,
  expiresIn,
  newTargets,
  succinctBinNameFor,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withRootRole,
  withSuccinctDelegation,
  withTarget,
} from '@tufa/core';
import { type RunningServer, UI_CSP } from '@tufa/server';
import { DAY, testKey as keyPair, sign, testCrypto } from '@tufa/testing';
import { body, gunUrl, keys, post, publishNew, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launch, open } from './browser.test-util.js';

const EXPIRED = 'example.com/ui/expired';
const PENDING = 'example.com/ui/pending';
const NAMES = 'example.com/ui/names';
const SOON = 'example.com/ui/soon';
const SCRIPT_NAME = '<script>window.__pwned = 1</script>';
const IMG_NAME = '<img src=x onerror="window.__pwned = 2">';
const BIDI_NAME = 'invoice\u202Egnp.exe';
const t = [keyPair(231), keyPair(232), keyPair(233)];

let browser: Browser;
let offset = 0;
let server: RunningServer;
let base: string;

const file = (content: string) => targetFileFor(testCrypto, utf8Encode(content));

beforeAll(async () => {
  browser = await launch();
  server = await startTestServer(
    { dataDir: tempDir(), maxDelegatedRoles: 20_000 },
    { clock: () => Date.now() + offset },
  );
  base = server.url;
  await publishNew(base, 'example.com/ui/fine');

  // Targets that expire in 3 days; the server's clock then moves 4 days on.
  const root = sign(await rootFor(base, EXPIRED), keys.root);
  const short = newTargets({ version: 1, expires: expiresIn(Date.now(), 3 * DAY) });
  expect(
    (
      await post(base, EXPIRED, {
        root,
        targets: sign(withTarget(short, 'app/v1', file('v1')), keys.targets),
      })
    ).status,
  ).toBe(200);

  // Targets that expire in 10 days: 5 days left once the clock moved.
  // It delegates releases/* to `releases`, which delegates releases/nightly/* on: a tree.
  const soon = withDelegation(
    withTarget(newTargets({ version: 1, expires: expiresIn(Date.now(), 10 * DAY) }), 'app/v1', file('v1')),
    { name: 'releases', keys: [keys.releases.key], paths: ['releases/*'] },
  );
  const releases = withDelegation(newTargets({ version: 1, expires: expiresIn(Date.now(), 200 * DAY) }), {
    name: 'releases/nightly',
    keys: [keys.other.key],
    paths: ['releases/nightly/*'],
  });
  const soonRoot = sign(await rootFor(base, SOON), keys.root);
  expect(
    (
      await post(base, SOON, {
        root: soonRoot,
        targets: sign(soon, keys.targets),
        releases: sign(releases, keys.releases),
      })
    ).status,
  ).toBe(200);

  // targets 2-of-3; v2 proposed with one signature.
  const twoOfThree = withRootRole(await rootFor(base, PENDING), 'targets', {
    keys: t.map((k) => k.key),
    threshold: 2,
  });
  const v1 = targetsV(1, { 'app/v1': 'v1' }, false);
  expect(
    (await post(base, PENDING, { root: sign(twoOfThree, keys.root), targets: sign(v1, t[0]!, t[1]!) }))
      .status,
  ).toBe(200);
  const v2 = withTarget(bumpVersion(v1, expiresIn(Date.now(), 90 * DAY)), 'app/v2', file('v2'));
  const proposed = await fetch(`${base}/v2/${PENDING}/_trust/pending/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body({ targets: sign(v2, t[2]!) }),
  });
  expect(proposed.status).toBe(202);
  // Another that waits one day: expired once the clock moved, and left in place by the page.
  const v2b = withTarget(bumpVersion(v1, expiresIn(Date.now(), 90 * DAY)), 'app/v3', file('v3'));
  const waiting = await fetch(`${base}/v2/${PENDING}/_trust/pending/?expires_in=86400`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body({ targets: sign(v2b, t[0]!) }),
  });
  expect(waiting.status).toBe(202);

  // Hostile names, and 16,384 succinct hash bins of which one is published.
  let named = newTargets({ version: 1, expires: expiresIn(Date.now(), 300 * DAY) });
  for (const n of [SCRIPT_NAME, IMG_NAME, BIDI_NAME]) named = withTarget(named, n, file(n));
  // Enough targets for two pages of 50.
  for (let i = 0; i < 60; i++)
    named = withTarget(named, `pkg/${String(i).padStart(2, '0')}`, file(`pkg ${i}`));
  named = withSuccinctDelegation(named, { keys: [keys.releases.key], bitLength: 14, namePrefix: 'bin' });
  const succinct = named.delegations!.succinctRoles!;
  const bin = succinctBinNameFor(succinct, 'releases/1.0');
  const binDoc = withTarget(
    newTargets({ version: 1, expires: expiresIn(Date.now(), 20 * DAY) }),
    'releases/1.0',
    file('1.0'),
  );
  const res = await post(base, NAMES, {
    root: sign(await rootFor(base, NAMES), keys.root),
    targets: sign(named, keys.targets),
    [bin]: sign(binDoc, keys.releases),
  });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  offset = 5 * DAY;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the status page', () => {
  it('is served with a strict CSP, its files with their types; /ui redirects, an unknown file is 404', async () => {
    const page = await fetch(`${base}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(UI_CSP);
    expect(UI_CSP).not.toContain('unsafe');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i);
    expect((await fetch(`${base}/ui/app.js`)).headers.get('content-type')).toBe(
      'text/javascript; charset=utf-8',
    );
    expect((await fetch(`${base}/ui/style.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const again = await fetch(`${base}/ui/app.js`, {
      headers: { 'if-none-match': page.headers.get('etag')! },
    });
    expect(again.status).toBe(200);
    const etag = (await fetch(`${base}/ui/app.js`)).headers.get('etag')!;
    expect((await fetch(`${base}/ui/app.js`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const bare = await fetch(`${base}/ui`, { redirect: 'manual' });
    expect([bare.status, bare.headers.get('location')]).toEqual([308, '/ui/']);
    const missing = await fetch(`${base}/ui/nothing.js`);
    expect([missing.status, ((await missing.json()) as any).error.code]).toEqual([404, 'NOT_FOUND']);
    const noGun = await fetch(`${base}/ui/api/collection`);
    expect([noGun.status, ((await noGun.json()) as any).error.code]).toEqual([400, 'INVALID_ARGUMENT']);
    const badGun = await fetch(`${base}/ui/api/collection?gun=${encodeURIComponent('../x')}`);
    expect([badGun.status, ((await badGun.json()) as any).error.code]).toEqual([400, 'INVALID_ARGUMENT']);
  });

  it('lists the collections, the expired one first and coloured expired, with a timeline of every role', async () => {
    const { page, errors } = await browser.page();
    await open(page, `${base}/ui/`);
    const rows = page.locator('#collections tbody tr');
    expect(await rows.count()).toBe(5);
    expect(await rows.first().getAttribute('data-gun')).toBe(EXPIRED);
    expect(await rows.nth(1).getAttribute('data-gun')).toBe(SOON);
    expect(await rows.nth(1).locator('[data-state]').getAttribute('data-state')).toBe('week');
    expect(await rows.first().locator('[data-state]').getAttribute('data-state')).toBe('expired');
    expect(
      await page.locator(`tr[data-gun="example.com/ui/fine"] [data-state]`).getAttribute('data-state'),
    ).toBe('fine');
    // Four roles of five collections, the one published bin and `releases`.
    expect(await page.locator('svg.timeline circle').count()).toBe(22);
    expect(await page.locator('svg.timeline circle.expired[data-role="targets"]').count()).toBe(1);
    await browser.screenshot(page, 'collections');
    expect(errors).toEqual([]);
  });

  it('shows an expired targets role as expired', async () => {
    const { page, errors } = await browser.page();
    await open(page, `${base}/ui/#/c/${encodeURIComponent(EXPIRED)}`);
    const targets = page.locator('#roles tr[data-role="targets"]');
    expect(await targets.locator('[data-state]').getAttribute('data-state')).toBe('expired');
    expect(await targets.locator('.state').textContent()).toBe('expired');
    expect(await targets.textContent()).toMatch(/\(expired \d+ (d|h) ago\)/);
    expect(await page.locator('#roles tr[data-role="root"] [data-state]').getAttribute('data-state')).toBe(
      'fine',
    );
    await browser.screenshot(page, 'collection-expired');
    expect(errors).toEqual([]);
  });

  it('shows the delegations as a tree, published or not', async () => {
    const { page, errors } = await browser.page();
    await open(page, `${base}/ui/#/c/${encodeURIComponent(SOON)}`);
    const releases = page.locator('#delegations li[data-role="releases"]');
    expect(await releases.locator('> strong').textContent()).toBe('releases');
    expect(await releases.textContent()).toContain('paths: releases/*');
    const nightly = releases.locator('> ul > li[data-role="releases/nightly"]');
    expect(await nightly.textContent()).toContain('not published');
    expect(await nightly.textContent()).toContain('paths: releases/nightly/*');
    expect(await page.locator('#roles tr[data-role="releases"] td').last().textContent()).toBe('targets');
    expect(await page.locator('#roles tr[data-role="targets"] [data-state]').getAttribute('data-state')).toBe(
      'week',
    );
    await browser.screenshot(page, 'collection-delegations');
    expect(errors).toEqual([]);
  });

  it('shows a pending 2-of-3 version with who signed and one signature missing', async () => {
    const { page, errors } = await browser.page();
    await open(page, `${base}/ui/#/c/${encodeURIComponent(PENDING)}`);
    // The proposal that waited one day has expired: only the live one is shown.
    expect(await page.locator('#pending .pending').count()).toBe(1);
    const threshold = page.locator('#pending .threshold[data-role="targets"]');
    expect(await threshold.count()).toBe(1);
    const text = await threshold.textContent();
    expect(text).toContain('1 of 2 needed signed');
    expect(await threshold.locator('.missing').textContent()).toBe('1 signature missing');
    expect(await threshold.locator('.chip.signed').getAttribute('title')).toBe(t[2]!.keyid);
    const notYet = await threshold
      .locator('.chip:not(.signed)')
      .evaluateAll((els) => els.map((e) => e.getAttribute('title')));
    expect(notYet.sort()).toEqual([t[0]!.keyid, t[1]!.keyid].sort());
    expect(await page.locator('#roles tr[data-role="targets"]').textContent()).toContain('2 of 3');
    await browser.screenshot(page, 'collection-pending');
    expect(errors).toEqual([]);
  });

  it('shows target names as text: no script of theirs runs, bidi controls are made visible; hash bins in one line', async () => {
    const { page, errors } = await browser.page();
    await open(page, `${base}/ui/#/c/${encodeURIComponent(NAMES)}`);
    const names = await page
      .locator('#targets td.target')
      .evaluateAll((els) => els.map((e) => e.textContent));
    expect(names).toContain(SCRIPT_NAME);
    expect(names).toContain(IMG_NAME);
    expect(names).toContain('invoiceU+202Egnp.exe');
    expect(await page.locator('#targets td.target .ctl').textContent()).toBe('U+202E');
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => (globalThis as any).document.scripts.length)).toBe(1);
    expect(await page.locator('#targets img').count()).toBe(0);
    const bins = page.locator('#delegations li[data-role="bin-*"]');
    expect(await bins.textContent()).toContain('16384 bins (14 bits), 1 published');
    expect(await page.locator('#delegations li').count()).toBe(1);
    await browser.screenshot(page, 'collection-names');
    // 64 targets, 50 a page: the second page holds the last 14, in order.
    expect(await page.locator('#targets h2').textContent()).toBe('Targets (64)');
    expect(await page.locator('#targets td.target').count()).toBe(50);
    await page.locator('#targets .pager button', { hasText: 'next' }).click();
    await page.waitForSelector('#targets .pager:has-text("page 2 of 2")');
    const second = await page
      .locator('#targets td.target')
      .evaluateAll((els) => els.map((e) => e.textContent));
    expect(second).toEqual([...Array.from({ length: 13 }, (_, i) => `pkg/${47 + i}`), 'releases/1.0']);
    // Searching narrows the targets, served by the server page by page.
    await page.locator('#targets input[type="search"]').fill('script');
    await page.waitForFunction(
      () => (globalThis as any).document.querySelectorAll('#targets td.target').length === 1,
    );
    expect(await page.locator('#targets td.target').textContent()).toBe(SCRIPT_NAME);
    expect(errors).toEqual([]);
  });
  it('changes nothing: every table holds what it held before the page was read', async () => {
    const counts = async () =>
      (
        await server.store.pool.query(
          `SELECT (SELECT count(*) FROM metadata) AS metadata, (SELECT count(*) FROM pending_updates) AS pending,
                  (SELECT count(*) FROM changes) AS changes, (SELECT count(*) FROM audit_log) AS audit,
                  (SELECT count(*) FROM online_keys) AS keys, (SELECT count(*) FROM collections) AS collections`,
        )
      ).rows[0];
    const before = await counts();
    expect(Number(before.pending)).toBe(2);
    for (const path of [
      'api/collections',
      ...[EXPIRED, PENDING, NAMES, SOON].flatMap((g) => [
        `api/collection?gun=${g}`,
        `api/targets?gun=${g}&q=a`,
      ]),
      `api/collection?gun=example.com/ui/none`,
    ]) {
      await fetch(`${base}/ui/${path}`);
    }
    expect(await counts()).toEqual(before);
  });
});

describe('the status page where pulls need a token', () => {
  const TEAM = 'example.com/team/app';
  const OTHER = 'example.com/other/app';
  let locked: RunningServer;
  let url: string;
  let reader: string;

  beforeAll(async () => {
    locked = await startTestServer({
      dataDir: tempDir(),
      requireAuthForPull: true,
      allowAnonymousWrites: false,
    });
    url = locked.url;
    const ops = (await locked.tokens.create('ops', ['admin:*'])).token;
    reader = (await locked.tokens.create('reader', ['pull:example.com/team/*'])).token;
    for (const gun of [TEAM, OTHER]) {
      const root = sign(await rootFor(url, gun, { token: ops }), keys.root);
      const res = await fetch(gunUrl(url, gun), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` },
        body: body({ root, targets: sign(targetsV(1, { 'app/v1': 'v1' }), keys.targets) }),
      });
      expect(res.status).toBe(200);
    }
  }, 120_000);
  afterAll(async () => {
    await locked?.close();
  });

  it('asks for a token, refuses a wrong one, and shows what the token may pull', async () => {
    expect((await fetch(`${url}/ui/api/collections`)).status).toBe(401);
    expect((await fetch(`${url}/ui/api/collection?gun=${TEAM}`)).status).toBe(401);
    const { page, errors } = await browser.page();
    await open(page, `${url}/ui/`);
    expect(await page.locator('#login').isVisible()).toBe(true);
    expect(await page.locator('#collections').count()).toBe(0);
    await browser.screenshot(page, 'login');

    await page.locator('#token').fill('tufa_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro');
    await page.locator('#login button[type="submit"]').click();
    await page.waitForSelector('#login-error:not(:empty)');
    expect(await page.locator('#login-error').textContent()).toContain('Refused');

    await page.locator('#token').fill(reader);
    await page.locator('#login button[type="submit"]').click();
    await page.waitForSelector('#collections');
    const guns = await page
      .locator('#collections tbody tr')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-gun')));
    expect(guns).toEqual([TEAM]);
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('tufa.token'))).toBe(reader);
    await browser.screenshot(page, 'collections-token');
    // The collection the token does not cover is refused as a read would be.
    const other = await page.evaluate(async (gun) => {
      const token = (globalThis as any).sessionStorage.getItem('tufa.token');
      const res = await fetch(`api/collection?gun=${gun}`, { headers: { Authorization: `Bearer ${token}` } });
      return [res.status, ((await res.json()) as any).error.code];
    }, OTHER);
    expect(other).toEqual([403, 'FORBIDDEN']);
    await open(page, `${url}/ui/#/c/${encodeURIComponent(TEAM)}`);
    await page.waitForSelector('#roles');
    expect(await page.locator('#roles tr[data-role="targets"] [data-state]').getAttribute('data-state')).toBe(
      'fine',
    );
    // A pull-only token is not shown the pending updates (they are a writer's), and the page says so.
    expect(await page.locator('#pending-hidden').count()).toBe(1);
    // The browser logs every refused fetch: the 401s asked for a token, the 403 was ours.
    expect(errors.filter((e) => !/status of (401|403)/.test(e))).toEqual([]);
  });

  it('/metrics shows a scraper the collections it may pull, and none to an anonymous one', async () => {
    const anonymous = await (await fetch(`${url}/metrics`)).text();
    expect(anonymous).toContain('tufa_http_requests_total');
    expect(anonymous).not.toContain('tufa_metadata_version{');
    const scoped = await (
      await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${reader}` } })
    ).text();
    expect(scoped).toMatch(new RegExp(`^tufa_metadata_version\\{gun="${TEAM}",role="targets"\\} 1$`, 'm'));
    expect(scoped).not.toContain(OTHER);
    const wrong = await fetch(`${url}/metrics`, {
      headers: { authorization: 'Bearer tufa_0000000000000000_x' },
    });
    expect([wrong.status, ((await wrong.json()) as any).error.code]).toEqual([401, 'UNAUTHORIZED']);
  });
});
