/**
 * Collections in succinct hash bins (TAP 15) on the server: a publish into one bin reads no other
 * bin's document, stored bins are checked again when their delegator changes, and bins are
 * limited apart from named delegated roles (--max-hash-bins).
 */
import {
  expiresIn,
  metadataToJson,
  newTargets,
  parseMetadata,
  parseSignedEnvelope,
  type SuccinctRoles,
  serializeJson,
  sha256Of,
  succinctBinNameFor,
  type Targets,
  targetFileFor,
  utf8Encode,
  withSuccinctDelegation,
  withTarget,
} from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { gunUrl, keys, post, rootFor } from '@tufa/testing/publisher';
import { startTestPostgres, startTestServer, type TestPostgres } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let pgServer: TestPostgres;
let databaseUrl: string;
let server: RunningServer;
beforeAll(async () => {
  pgServer = await startTestPostgres();
  databaseUrl = await pgServer.createDatabase();
  server = await startTestServer({ databaseUrl, maxDelegatedRoles: 2, maxHashBins: 16 });
});
afterAll(async () => {
  await server?.close();
  await pgServer?.stop();
});

const binnedTargets = (version: number, bitLength: number, binKey = keys.releases): Targets =>
  withSuccinctDelegation(newTargets({ version, expires: expiresIn(Date.now(), 90 * DAY) }), {
    keys: [binKey.key],
    bitLength,
    namePrefix: 'bins',
  });

/** Bin `name` at `version`, holding `tags`. */
const bin = (version: number, tags: readonly string[]) => {
  let t = newTargets({ version, expires: expiresIn(Date.now(), 90 * DAY) });
  for (const tag of tags) t = withTarget(t, tag, targetFileFor(testCrypto, utf8Encode(tag)));
  return t;
};

/** Root, targets in 16 bins and every bin (v1, one tag each) published on `base`; the bins' names. */
async function publishBinned(
  base: string,
  gun: string,
): Promise<{ succinct: SuccinctRoles; tags: Map<string, string> }> {
  const root = sign(await rootFor(base, gun), keys.root);
  const targets = binnedTargets(1, 4);
  const succinct = targets.delegations!.succinctRoles!;
  const tags = new Map<string, string>();
  for (let i = 0; tags.size < 16; i++) {
    const name = succinctBinNameFor(succinct, `app/v${i}`);
    if (!tags.has(name)) tags.set(name, `app/v${i}`);
  }
  const docs: Record<string, ReturnType<typeof sign>> = { root, targets: sign(targets, keys.targets) };
  for (const [name, tag] of tags) docs[name] = sign(bin(1, [tag]), keys.releases);
  const res = await post(base, gun, docs);
  expect(res.status).toBe(200);
  return { succinct, tags };
}

async function latestSnapshotMeta(base: string, gun: string) {
  const res = await fetch(gunUrl(base, gun, 'snapshot.json'));
  return parseMetadata('snapshot', new Uint8Array(await res.arrayBuffer())).signed.meta;
}

describe('a publish into one bin', () => {
  it('reads no other bin: a stored bin whose bytes are damaged does not stop it, and keeps its entry', async () => {
    const gun = 'example.com/bins/lazy';
    const { succinct, tags } = await publishBinned(server.url, gun);
    const [damaged, target] = [...tags.keys()];
    const before = (await latestSnapshotMeta(server.url, gun))[`${damaged}.json`];
    await server.store.pool.query(
      // Same length, not JSON: a parse would refuse it.
      `UPDATE metadata SET data = overlay(data PLACING convert_to('!!!!', 'UTF8') FROM 1)
       WHERE collection_id = (SELECT id FROM collections WHERE gun = $1) AND role = $2`,
      [gun, damaged],
    );
    // A second server on the same database: nothing of this collection is parsed in its memory.
    const fresh = await startTestServer({ databaseUrl, maxDelegatedRoles: 2, maxHashBins: 16 });
    try {
      let added = 0;
      while (succinctBinNameFor(succinct, `app/new${added}`) !== target) added++;
      const next = bin(2, [tags.get(target!)!, `app/new${added}`]);
      const res = await post(fresh.url, gun, { [target!]: sign(next, keys.releases) });
      expect(res.status).toBe(200);
      // The top-level roles and what the update wrote: not a version per bin.
      expect(res.json.versions).toEqual({ root: 1, targets: 1, [target!]: 2, snapshot: 2, timestamp: 2 });
      const meta = await latestSnapshotMeta(fresh.url, gun);
      expect(meta[`${damaged}.json`]).toEqual(before);
      expect(meta[`${target}.json`]!.version).toBe(2);
    } finally {
      await fresh.close();
    }
  });

  it('a targets that gives the bins other keys checks every stored bin again: THRESHOLD_NOT_MET', async () => {
    const gun = 'example.com/bins/rotate';
    await publishBinned(server.url, gun);
    const fresh = await startTestServer({ databaseUrl, maxDelegatedRoles: 2, maxHashBins: 16 });
    try {
      const res = await post(fresh.url, gun, {
        targets: sign(binnedTargets(2, 4, keys.other), keys.targets),
      });
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'THRESHOLD_NOT_MET' });
      const same = await post(fresh.url, gun, { targets: sign(binnedTargets(2, 4), keys.targets) });
      expect(same.status).toBe(200);
    } finally {
      await fresh.close();
    }
  });
});

/**
 * The latest snapshot, checked against the generic encoder (byte for byte) and against every
 * role's latest document as served: each entry its version, length and sha256.
 */
async function checkedSnapshot(base: string, gun: string, roles: Iterable<string>) {
  const bytes = new Uint8Array(await (await fetch(gunUrl(base, gun, 'snapshot.json'))).arrayBuffer());
  const snapshot = parseSignedEnvelope('snapshot', bytes);
  expect(Buffer.from(bytes)).toEqual(Buffer.from(serializeJson(metadataToJson(snapshot.metadata))));
  const meta = snapshot.metadata.signed.meta;
  const names = ['targets', ...roles];
  expect(Object.keys(meta).sort()).toEqual(names.map((name) => `${name}.json`).sort());
  for (const name of names) {
    const doc = new Uint8Array(await (await fetch(gunUrl(base, gun, `${name}.json`))).arrayBuffer());
    expect(meta[`${name}.json`], name).toEqual({
      version: parseMetadata('targets', doc).signed.version,
      length: doc.length,
      hashes: { sha256: sha256Of(testCrypto, { bytes: doc }) },
      extra: {},
    });
  }
  return snapshot;
}

/** The stored bytes of the latest snapshot of `gun`. */
async function storedSnapshot(gun: string): Promise<Uint8Array> {
  const r = await server.store.pool.query<{ data: Buffer }>(
    `SELECT data FROM metadata m JOIN collections c ON c.id = m.collection_id
     WHERE c.gun = $1 AND m.role = 'snapshot' ORDER BY m.version DESC LIMIT 1`,
    [gun],
  );
  return new Uint8Array(r.rows[0]!.data);
}

/** The stored latest snapshot of `gun` replaced by `bytes` (a store's damage, or another writer's form). */
async function replaceStoredSnapshot(gun: string, bytes: Uint8Array): Promise<void> {
  await server.store.pool.query(
    `UPDATE metadata SET data = $3, sha256 = $4
     WHERE collection_id = (SELECT id FROM collections WHERE gun = $1) AND role = $2
       AND version = (SELECT max(version) FROM metadata m JOIN collections c ON c.id = m.collection_id
                      WHERE c.gun = $1 AND m.role = $2)`,
    [gun, 'snapshot', Buffer.from(bytes), sha256Of(testCrypto, { bytes })],
  );
}

describe('the server-signed snapshot of a publish into one bin', () => {
  it('two servers publishing in turn: each snapshot is the served form of every latest role', async () => {
    const gun = 'example.com/bins/turns';
    const { succinct, tags } = await publishBinned(server.url, gun);
    const names = [...tags.keys()];
    const held = new Map([...tags].map(([name, tag]) => [name, [tag]]));
    const versions = new Map(names.map((name) => [name, 1]));
    await checkedSnapshot(server.url, gun, names);
    const other = await startTestServer({ databaseUrl, maxDelegatedRoles: 2, maxHashBins: 16 });
    try {
      // Each server in turn, twice running on one of them: a snapshot of its own, then the other's.
      const turns = [server, other, other, server, server, other, server];
      for (const [i, at] of turns.entries()) {
        const name = names[(i * 5) % 3]!;
        let n = 0;
        while (succinctBinNameFor(succinct, `app/t${i}-${n}`) !== name) n++;
        held.get(name)!.push(`app/t${i}-${n}`);
        versions.set(name, versions.get(name)! + 1);
        const res = await post(at.url, gun, {
          [name]: sign(bin(versions.get(name)!, held.get(name)!), keys.releases),
        });
        expect(res.status, `turn ${i}`).toBe(200);
        expect(res.json.versions.snapshot).toBe(i + 2);
        // Read from the server that wrote: the other learns of the change by a NOTIFY, a moment later.
        const snapshot = await checkedSnapshot(at.url, gun, names);
        expect(snapshot.metadata.signed.version).toBe(i + 2);
      }
      // A stale upload is still a rollback on either server.
      const stale = sign(bin(1, held.get(names[0]!)!), keys.releases);
      for (const at of [server, other]) {
        const res = await post(at.url, gun, { [names[0]!]: stale });
        expect(res.status).toBe(409);
        expect(res.json.error).toMatchObject({ code: 'ROLLBACK' });
      }
    } finally {
      await other.close();
    }
  });

  it('a stored snapshot not in the served form, or in another shape, is read the general way', async () => {
    const gun = 'example.com/bins/shapes';
    const { succinct, tags } = await publishBinned(server.url, gun);
    const names = [...tags.keys()];
    const [target, other] = names;
    type Doc = { signed: { meta: Record<string, { hashes?: Record<string, string> }> } };
    // Whitespace (the signed part's canonical bytes are the same), then an entry with a second hash.
    const damages = [
      (doc: Doc) => new TextEncoder().encode(JSON.stringify(doc, null, 2)),
      (doc: Doc) => {
        const entry = doc.signed.meta[`${other}.json`]!;
        entry.hashes = { ...entry.hashes, sha512: 'ab'.repeat(64) };
        return serializeJson(doc as never);
      },
    ];
    const tagsOfTarget = [tags.get(target!)!];
    for (const [i, damage] of damages.entries()) {
      // From the database: a server that did not write it learns of a new one by a NOTIFY, a moment later.
      const stored = parseSignedEnvelope('snapshot', await storedSnapshot(gun));
      const replaced = damage(metadataToJson(stored.metadata) as Doc);
      await replaceStoredSnapshot(gun, replaced);
      expect(parseSignedEnvelope('snapshot', replaced).servedForm).toBe(i === 1);
      // A server with nothing of it in memory reads it from the database.
      const fresh = await startTestServer({ databaseUrl, maxDelegatedRoles: 2, maxHashBins: 16 });
      try {
        let n = 0;
        while (succinctBinNameFor(succinct, `app/s${i}-${n}`) !== target) n++;
        tagsOfTarget.push(`app/s${i}-${n}`);
        const res = await post(fresh.url, gun, { [target!]: sign(bin(i + 2, tagsOfTarget), keys.releases) });
        expect(res.status).toBe(200);
        const bytes = new Uint8Array(
          await (await fetch(gunUrl(fresh.url, gun, 'snapshot.json'))).arrayBuffer(),
        );
        const next = parseSignedEnvelope('snapshot', bytes);
        expect(Buffer.from(bytes)).toEqual(Buffer.from(serializeJson(metadataToJson(next.metadata))));
        expect(next.metadata.signed.version).toBe(i + 2);
        const meta = next.metadata.signed.meta;
        expect(meta[`${target}.json`]!.version).toBe(i + 2);
        // The stored entries as they were: the second hash kept where the stored snapshot had it.
        expect(Object.keys(meta[`${other}.json`]!.hashes!).sort()).toEqual(
          i === 1 ? ['sha256', 'sha512'] : ['sha256'],
        );
        expect(Object.keys(meta).length).toBe(names.length + 1);
      } finally {
        await fresh.close();
      }
    }
  });
});

describe('the snapshot another server wrote', () => {
  it('is spliced by the next publish on either side: event loop and worker, server after server', async () => {
    const gun = 'example.com/bins/others';
    // 256 bins: the stored snapshot (about 28 KB) is over 16 KB, a bin and the top-level roles are not.
    const options = { databaseUrl, maxDelegatedRoles: 2, maxHashBins: 256 };
    const servers = await Promise.all([
      startTestServer({ ...options, verifyWorkerAbove: 16 * 1024 }),
      startTestServer({ ...options, verifyWorkerAbove: 16 * 1024 }),
      startTestServer({ ...options, verifyWorkerAbove: 0 }), // every update in its worker
    ]);
    try {
      const [a, b, inWorker] = servers as [RunningServer, RunningServer, RunningServer];
      const root = sign(await rootFor(a.url, gun), keys.root);
      const targets = binnedTargets(1, 8);
      const succinct = targets.delegations!.succinctRoles!;
      const names = Array.from({ length: 256 }, (_, i) => `bins-${i.toString(16).padStart(2, '0')}`);
      const docs: Record<string, ReturnType<typeof sign>> = { root, targets: sign(targets, keys.targets) };
      for (const name of names) docs[name] = sign(bin(1, []), keys.releases);
      expect((await post(a.url, gun, docs)).status).toBe(200);
      const snapshotBytes = (await (await fetch(gunUrl(a.url, gun, 'snapshot.json'))).arrayBuffer())
        .byteLength;
      expect(snapshotBytes).toBeGreaterThan(16 * 1024);
      const held = new Map(names.map((name) => [name, [] as string[]]));
      const versions = new Map(names.map((name) => [name, 1]));
      // Each turn meets the snapshot the previous one wrote, another server's but twice.
      const turns = [b, a, inWorker, b, inWorker, inWorker, a, b, a];
      for (const [i, at] of turns.entries()) {
        const tag = `app/o${i}`;
        const name = succinctBinNameFor(succinct, tag);
        held.get(name)!.push(tag);
        versions.set(name, versions.get(name)! + 1);
        const before = at.store.publishCounts;
        const res = await post(at.url, gun, {
          [name]: sign(bin(versions.get(name)!, held.get(name)!), keys.releases),
        });
        expect(res.status, `turn ${i}`).toBe(200);
        // Spliced, and checked where its size says: the other's snapshot is read by one scan, not parsed.
        expect(at.store.publishCounts, `turn ${i}`).toEqual({
          checkedInWorker: before.checkedInWorker + (at === inWorker ? 1 : 0),
          snapshotsSpliced: before.snapshotsSpliced + 1,
          snapshotsWhole: before.snapshotsWhole,
        });
        const snapshot = await checkedSnapshot(at.url, gun, names);
        expect(snapshot.metadata.signed.version).toBe(i + 2);
        expect(snapshot.metadata.signed.meta[`${name}.json`]!.version).toBe(versions.get(name));
      }
      // A stale bin is still a rollback, on the event loop and in the worker alike.
      const name = succinctBinNameFor(succinct, 'app/o0');
      for (const at of [a, inWorker]) {
        const res = await post(at.url, gun, { [name]: sign(bin(1, []), keys.releases) });
        expect(res.status).toBe(409);
        expect(res.json.error).toMatchObject({ code: 'ROLLBACK' });
      }
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});

describe('--max-hash-bins', () => {
  it('bins are limited apart from named roles: 16 pass a limit of 2 named roles, 32 are DELEGATION_LIMIT', async () => {
    const gun = 'example.com/bins/limit';
    await publishBinned(server.url, gun);
    const before = await latestSnapshotMeta(server.url, gun);
    const res = await post(server.url, gun, { targets: sign(binnedTargets(2, 5), keys.targets) });
    expect(res.status).toBe(413);
    expect(res.json.error).toMatchObject({
      code: 'DELEGATION_LIMIT',
      details: { limit: 16, found: 32, bins: true },
    });
    expect(await latestSnapshotMeta(server.url, gun)).toEqual(before);
  });
});
