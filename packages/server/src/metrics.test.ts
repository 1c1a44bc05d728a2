/**
 * The per-collection series of /metrics, scraped from a real server and checked against the
 * stored metadata it serves: expiry and version of every role, signatures missing on a pending
 * 2-of-3 version, label escaping, and the --metrics-collections bound.
 */

import { readFileSync } from 'node:fs';
import {
  bumpVersion,
  expiresIn,
  newTargets,
  parseMetadata,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withRootRole,
  withTarget,
} from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, testKey as keyPair, sign, testCrypto } from '@tufa/testing';
import { body, gunUrl, keys, post, publishNew, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CollectionMetrics, METRICS_DELEGATED_ROLES } from './metrics.js';
import { PendingOverview } from './overview.js';
import { PendingStore } from './pending.js';

const t = [keyPair(211), keyPair(212), keyPair(213)];

let server: RunningServer;
let base: string;
beforeAll(async () => {
  server = await startTestServer({ dataDir: tempDir() });
  base = server.url;
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** `name{gun="…",role="…"} value` lines → value by name, gun and role (label values unescaped). */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m =
      /^(tufa_(?:metadata_expires_timestamp_seconds|metadata_version|pending_signatures))\{gun="((?:[^"\\]|\\.)*)",role="((?:[^"\\]|\\.)*)"\} (\S+)$/.exec(
        line,
      );
    if (m === null) continue;
    const unquote = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.set(`${m[1]} ${unquote(m[2]!)} ${unquote(m[3]!)}`, Number(m[4]));
  }
  return out;
}

async function scrape(): Promise<{ text: string; series: Map<string, number> }> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const text = await res.text();
  return { text, series: series(text) };
}

async function stored(gun: string, role: string) {
  const res = await fetch(gunUrl(base, gun, `${encodeURIComponent(role)}.json`));
  expect(res.status).toBe(200);
  const type = (['root', 'snapshot', 'timestamp'] as const).find((x) => x === role) ?? 'targets';
  return parseMetadata(type, new Uint8Array(await res.arrayBuffer())).signed;
}

describe('/metrics per collection and role', () => {
  it('expiry and version of every role are those of the stored metadata', async () => {
    const guns = ['example.com/metrics/one', 'example.com/metrics/two'];
    for (const gun of guns) await publishNew(base, gun);
    // A delegated role published too.
    const gun = guns[1]!;
    const odd = 'releases';
    const root = sign(await rootFor(base, gun, { version: 2 }), keys.root);
    const targets = sign(
      withDelegation(targetsV(2, {}, false), { name: odd, keys: [keys.releases.key], paths: ['*'] }),
      keys.targets,
    );
    const delegated = sign(
      newTargets({ version: 1, expires: expiresIn(Date.now(), 20 * DAY) }),
      keys.releases,
    );
    const res = await post(base, gun, { root, targets, [odd]: delegated });
    expect(res.status).toBe(200);

    const { text, series: got } = await scrape();
    expect(text).toContain('# TYPE tufa_metadata_expires_timestamp_seconds gauge');
    for (const g of guns) {
      const roles =
        g === gun
          ? ['root', 'targets', 'snapshot', 'timestamp', odd]
          : ['root', 'targets', 'snapshot', 'timestamp'];
      for (const role of roles) {
        const signed = await stored(g, role);
        expect(got.get(`tufa_metadata_expires_timestamp_seconds ${g} ${role}`), `${g} ${role}`).toBe(
          signed.expiresAt / 1000,
        );
        expect(got.get(`tufa_metadata_version ${g} ${role}`), `${g} ${role}`).toBe(signed.version);
      }
    }
    expect(got.get(`tufa_metadata_version ${gun} root`)).toBe(2);
    expect(text).toMatch(/^tufa_metadata_collections_omitted 0$/m);
  });

  it('a pending 2-of-3 version of targets shows one signature missing; published, the series goes', async () => {
    const gun = 'example.com/metrics/pending';
    const root = withRootRole(await rootFor(base, gun), 'targets', {
      keys: t.map((k) => k.key),
      threshold: 2,
    });
    const v1 = targetsV(1, { 'app/v1': 'v1' }, false);
    expect(
      (await post(base, gun, { root: sign(root, keys.root), targets: sign(v1, t[0]!, t[1]!) })).status,
    ).toBe(200);
    const v2 = withTarget(
      bumpVersion(v1, expiresIn(Date.now(), 90 * DAY)),
      'app/v2',
      targetFileFor(testCrypto, utf8Encode('v2')),
    );
    const proposed = await fetch(`${base}/v2/${gun}/_trust/pending/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body({ targets: sign(v2, t[0]!) }),
    });
    expect(proposed.status).toBe(202);
    const id = ((await proposed.json()) as { id: string }).id;

    const before = (await scrape()).series;
    expect(before.get(`tufa_pending_signatures ${gun} targets`)).toBe(1);
    expect(before.get(`tufa_metadata_version ${gun} targets`)).toBe(1);

    const signed = sign(v2, t[1]!);
    const added = await fetch(`${base}/v2/${gun}/_trust/pending/${id}/signatures`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        signatures: { targets: signed.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })) },
      }),
    });
    expect(added.status).toBe(200);
    const after = (await scrape()).series;
    expect(after.has(`tufa_pending_signatures ${gun} targets`)).toBe(false);
    expect(after.get(`tufa_metadata_version ${gun} targets`)).toBe(2);
  });

  it('a pending version carrying many delegated roles exports at most the top-level roles and METRICS_DELEGATED_ROLES of them', async () => {
    const gun = 'example.com/metrics/wide';
    await publishNew(base, gun);
    // v2 of targets delegates to 30 roles of 2-of-2; each role's document carries one signature.
    const names = Array.from({ length: 30 }, (_, i) => `d${String(i).padStart(2, '0')}`);
    let v2 = targetsV(2, {}, false);
    for (const name of names) {
      v2 = withDelegation(v2, { name, keys: [t[0]!.key, t[1]!.key], threshold: 2, paths: [`${name}/*`] });
    }
    const docs: Record<string, ReturnType<typeof sign>> = { targets: sign(v2, keys.targets) };
    for (const name of names) {
      docs[name] = sign(newTargets({ version: 1, expires: expiresIn(Date.now(), 30 * DAY) }), t[0]!);
    }
    const proposed = await fetch(`${base}/v2/${gun}/_trust/pending/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(docs),
    });
    expect(proposed.status, await proposed.clone().text()).toBe(202);
    const pendingSeries = [...(await scrape()).series.keys()].filter((k) =>
      k.startsWith(`tufa_pending_signatures ${gun} `),
    );
    expect(pendingSeries.length).toBeGreaterThan(0);
    expect(pendingSeries.length).toBeLessThanOrEqual(4 + METRICS_DELEGATED_ROLES);
  });

  it('--metrics-collections keeps the collections that expire soonest and counts the rest', async () => {
    const soon = 'example.com/metrics/soon';
    const root = sign(await rootFor(base, soon), keys.root);
    const targets = sign(
      withTarget(
        newTargets({ version: 1, expires: expiresIn(Date.now(), 2 * DAY) }),
        'a',
        targetFileFor(testCrypto, utf8Encode('a')),
      ),
      keys.targets,
    );
    expect((await post(base, soon, { root, targets })).status).toBe(200);
    const pool = server.store.pool;
    const pending = new PendingOverview(new PendingStore(server.store), pool, server.store.now);
    const total = Number(
      (
        await pool.query(
          'SELECT count(*) AS n FROM collections c WHERE EXISTS (SELECT 1 FROM metadata m WHERE m.collection_id = c.id)',
        )
      ).rows[0].n,
    );
    expect(total).toBeGreaterThan(1);

    const one = await new CollectionMetrics({ pool, pending, limit: 1, now: Date.now }).render(() => true);
    const guns = new Set([...series(one).keys()].map((k) => k.split(' ')[1]));
    expect([...guns]).toEqual([soon]);
    expect(one).toMatch(new RegExp(`^tufa_metadata_collections_omitted ${total - 1}$`, 'm'));

    const none = await new CollectionMetrics({ pool, pending, limit: 0, now: Date.now }).render(() => true);
    expect(none).toBe('');
    // What the scraper may not pull is neither shown nor counted.
    const hidden = await new CollectionMetrics({ pool, pending, limit: 10, now: Date.now }).render(
      (g) => g !== soon,
    );
    expect(hidden).not.toContain(soon);
    expect(hidden).toMatch(/^tufa_metadata_collections_omitted 0$/m);
    expect(METRICS_DELEGATED_ROLES).toBeGreaterThan(0);
  });

  it("the README's alerting rules name series this server exports, and the soon-expiring targets would fire", async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const from = readme.indexOf('Alerting rules for Prometheus');
    const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(from))![1]!;
    const rules = (parseYaml(block) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups[0]!
      .rules;
    const { text, series: got } = await scrape();
    for (const rule of rules) {
      for (const name of rule.expr.match(/tufa_[a-z_]+/g) ?? []) {
        expect(text, `${rule.alert}: ${name}`).toMatch(new RegExp(`^# TYPE ${name} gauge$`, 'm'));
      }
    }
    const soon = rules.find((r) => r.alert === 'TufaMetadataExpiresSoon')!;
    expect(soon.expr).toBe('tufa_metadata_expires_timestamp_seconds{role!="timestamp"} - time() < 7 * 86400');
    // The rule, evaluated on this scrape: only the targets that expire in 2 days fires.
    const firing = [...got]
      .filter(([k, v]) => {
        const [name, , role] = k.split(' ');
        return (
          name === 'tufa_metadata_expires_timestamp_seconds' &&
          role !== 'timestamp' &&
          v - Date.now() / 1000 < 7 * 86400
        );
      })
      .map(([k]) => k.split(' ').slice(1).join(' '));
    expect(firing).toEqual(['example.com/metrics/soon targets']);
  });
});
