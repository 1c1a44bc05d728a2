/**
 * Large updates are checked in the verification worker (ADR 0013): the same answers as on the
 * event loop, refusal by refusal, and a worker that runs out of memory or stops is a clean
 * refusal, never a 500 or a dead server. Real servers on one PostgreSQL: one checks every update
 * on its event loop, the other every update in its worker.
 */
import {
  bumpVersion,
  expiresIn,
  type Metadata,
  newSnapshot,
  newTargets,
  parseMetadata,
  serializeMetadata,
  snapshotMetaForState,
  succinctBinNameFor,
  type Targets,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withRootRole,
  withSuccinctDelegation,
  withTarget,
} from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import type { RunningServer } from '@tufa/server';
import { codeOf, DAY, sign, testCrypto } from '@tufa/testing';
import { gunUrl, keys, post, publishNew, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestPostgres, startTestServer, type TestPostgres } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCommandLine } from './config.js';
import { BodyBudget } from './http.js';
import { checkingUpdate } from './update-check.js';
import { DEFAULT_VERIFIER, UpdateVerifier } from './verifier.js';

let pgServer: TestPostgres;
let inline: RunningServer;
let worker: RunningServer;

beforeAll(async () => {
  pgServer = await startTestPostgres();
  const databaseUrl = await pgServer.createDatabase();
  const shared = { databaseUrl, bodyLimit: 32 * 1024 * 1024, maxDelegatedRoles: 2 };
  // One instant for both: a refusal that names the reference time (EXPIRED) reads the same.
  const now = Date.now();
  inline = await startTestServer(
    { ...shared, verifyWorkerAbove: Number.MAX_SAFE_INTEGER },
    { clock: () => now },
  );
  worker = await startTestServer({ ...shared, verifyWorkerAbove: 0 }, { clock: () => now });
});
afterAll(async () => {
  await inline?.close();
  await worker?.close();
  await pgServer?.stop();
});

const bytesAt = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());

/** A document as sent, with its signatures replaced. */
const withSignatures = (md: Metadata, signatures: Metadata['signatures']): Metadata => ({
  ...md,
  signatures,
});

describe('the verification worker answers as the event loop does', () => {
  it('every refusal: the same status and the same error body (code, message, details) both ways', async () => {
    const gun = 'verify.example.com/refusals';
    await publishNew(inline.url, gun);
    const t2 = targetsV(2, { 'app/v2': 'v2' });
    const signed = sign(t2, keys.targets);
    const junk = Array.from({ length: 3 }, (_, i) => ({
      keyid: i.toString(16).padStart(64, '0'),
      sig: 'ab'.repeat(64),
      extra: {},
    }));
    let outside = newTargets({ expires: expiresIn(Date.now(), DAY) });
    outside = withTarget(outside, 'app/not-releases', targetFileFor(testCrypto, utf8Encode('x')));
    let wide: Targets = targetsV(2, {});
    for (const name of ['a', 'b', 'c']) {
      wide = withDelegation(wide, { name, keys: [keys.releases.key], paths: [`${name}/*`] });
    }
    const text = (md: Metadata) => new TextDecoder().decode(serializeMetadata(md));
    const cases: Record<string, Record<string, Metadata | string>> = {
      THRESHOLD_NOT_MET: { targets: sign(t2, keys.other) },
      ROLLBACK: { targets: sign(targetsV(1, { 'app/v1': 'v1' }), keys.targets) },
      VERSION_MISMATCH: { targets: sign(targetsV(3), keys.targets) },
      EXPIRED: { targets: sign(bumpVersion(t2, expiresIn(Date.now(), -DAY), 2), keys.targets) },
      NON_CANONICAL: { targets: JSON.stringify(JSON.parse(text(signed)), null, 1) },
      WRONG_TYPE: { targets: sign(await rootFor(inline.url, gun, { version: 2 }), keys.root) },
      TOO_MANY_SIGNATURES: { targets: withSignatures(signed, [...signed.signatures, ...junk]) },
      DUPLICATE_SIGNATURE: {
        targets: withSignatures(signed, [signed.signatures[0]!, signed.signatures[0]!]),
      },
      INVALID_JSON: { targets: text(signed).replace('"version":2', '"version":02') },
      INVALID_METADATA: { targets: text(signed).replace('"length":2', '"length":-2') },
      UPDATE_REFUSED: { targets: signed, timestamp: signed },
      PATH_NOT_DELEGATED: { releases: sign(outside, keys.releases) },
      'UPDATE_REFUSED (undelegated role)': { nobody: sign(outside, keys.releases) },
      DELEGATION_LIMIT: { targets: sign(wide, keys.targets) },
    };
    for (const [name, docs] of Object.entries(cases)) {
      const here = await post(inline.url, gun, docs);
      const there = await post(worker.url, gun, docs);
      expect({ name, status: there.status, body: there.json }).toEqual({
        name,
        status: here.status,
        body: here.json,
      });
      expect({ name, code: here.json.error?.code }).toEqual({ name, code: name.split(' ')[0] });
    }
    // Nothing refused was stored.
    expect(
      parseMetadata('targets', await bytesAt(gunUrl(worker.url, gun, 'targets.json'))).signed.version,
    ).toBe(1);
  });

  it('accepts in the worker: the bytes stored as sent, the snapshot listing them, a root rotation, then a lost race', async () => {
    const gun = 'verify.example.com/accepted';
    await publishNew(worker.url, gun);
    const t2 = sign(targetsV(2, { 'app/v2': 'v2' }), keys.targets);
    const accepted = await post(worker.url, gun, { targets: t2 });
    expect({ status: accepted.status, versions: accepted.json.versions }).toEqual({
      status: 200,
      versions: { root: 1, targets: 2, snapshot: 2, timestamp: 2 },
    });
    const stored = await bytesAt(gunUrl(inline.url, gun, 'targets.json'));
    expect(Buffer.from(stored).equals(Buffer.from(serializeMetadata(t2)))).toBe(true);
    const snapshot = parseMetadata('snapshot', await bytesAt(gunUrl(inline.url, gun, 'snapshot.json')));
    const listed = snapshot.signed.meta['targets.json']!;
    expect({ version: listed.version, length: listed.length, sha256: listed.hashes?.sha256 }).toEqual({
      version: 2,
      length: stored.length,
      sha256: hex(stored),
    });
    // A root rotation (two thresholds), then targets signed by the new targets key.
    const root2 = withRootRole(await rootFor(worker.url, gun, { version: 2 }), 'targets', {
      keys: [keys.other.key],
    });
    const rotated = await post(worker.url, gun, {
      root: sign(root2, keys.root),
      targets: sign(targetsV(3), keys.other),
    });
    expect(rotated.status).toBe(200);
    // The same version again, through either path: the loser of a race, with the versions now.
    const again = { targets: sign(targetsV(3), keys.other) };
    const here = await post(inline.url, gun, again);
    const there = await post(worker.url, gun, again);
    expect(there).toEqual(here);
    expect({
      status: here.status,
      code: here.json.error.code,
      current: here.json.error.details.current,
    }).toEqual({
      status: 409,
      code: 'ROLLBACK',
      current: { root: 2, targets: 3, snapshot: 3, timestamp: 3 },
    });
  });
});

const hex = (bytes: Uint8Array) => Buffer.from(createNodeCrypto().hash('sha256', bytes)).toString('hex');

describe('a worker that fails is a clean refusal', () => {
  /** A valid first update (root v1 and targets v1), as the worker is given one. */
  const firstUpdate = async (gun: string) => {
    const root = sign(await rootFor(inline.url, gun), keys.root);
    const targets = sign(targetsV(1), keys.targets);
    return {
      uploads: [
        ['root', serializeMetadata(root)],
        ['targets', serializeMetadata(targets)],
      ] as [string, Uint8Array][],
      serverKeyids: {
        timestamp: root.signed.roles.timestamp.keyids,
        snapshot: root.signed.roles.snapshot.keyids,
      },
    };
  };

  /** A job for a collection's first update: nothing stored, the uploads copied (a job moves its buffers). */
  const firstJob = (
    uploads: readonly [string, Uint8Array][],
    serverKeyids: { timestamp: readonly string[]; snapshot: readonly string[] },
  ) => ({
    uploads: uploads.map(([role, bytes]) => [role, bytes.slice()] as [string, Uint8Array]),
    parsed: [],
    delegating: [],
    entries: { names: [], versions: [], lengths: [], sha256s: [] },
    versions: {},
    replacedVersions: [],
    now: Date.now(),
    serverKeyids,
    maxDelegatedRoles: 10,
    maxHashBins: 10,
  });
  // A first update asks the event loop for no stored document.
  const noAsk = () => Promise.reject(new Error('asked'));

  it('more updates than the queue holds: 503 NETWORK with Retry-After, the others checked', async () => {
    const verifier = new UpdateVerifier({ threshold: 0, memoryMb: 256, queue: 1 });
    try {
      const { uploads, serverKeyids } = await firstUpdate('verify.example.com/queue');
      const job = () => firstJob(uploads, serverKeyids);
      const answers = await Promise.allSettled([
        verifier.check(job(), noAsk),
        verifier.check(job(), noAsk),
        verifier.check(job(), noAsk),
      ]);
      const outcome = answers.map((a) =>
        a.status === 'fulfilled'
          ? a.value.facts.changed.map((c) => `${c.role} v${c.version}`).join(', ')
          : `${(a.reason as { status?: number }).status} ${(a.reason as { code?: string }).code} ${JSON.stringify((a.reason as { headers?: unknown }).headers)}`,
      );
      expect(outcome).toEqual([
        'root v1, targets v1',
        'root v1, targets v1',
        '503 NETWORK {"Retry-After":"1"}',
      ]);
      // The facts are the event loop's own.
      const here = checkingUpdate({
        current: { delegated: new Map() },
        uploads: new Map(job().uploads),
        now: Date.now(),
        serverKeyids,
        maxDelegatedRoles: 10,
        maxHashBins: 10,
        crypto: testCrypto,
      });
      let step = here.next();
      while (step.done !== true) step = here.next();
      const first = answers[0] as PromiseFulfilledResult<{ facts: unknown }>;
      expect(first.value.facts).toEqual(step.value);
    } finally {
      await verifier.close();
    }
  });

  it('one large update body at a time: the next is 503 NETWORK with Retry-After as it passes the threshold', () => {
    const verifier = new UpdateVerifier({ threshold: 1000, memoryMb: 256, queue: 4, largeBodies: 1 });
    const budget = new BodyBudget(1_000_000);
    const refusal = (take: () => void) => {
      try {
        take();
        return 'taken';
      } catch (err) {
        const e = err as { status?: number; code?: string; headers?: unknown };
        return `${e.status} ${e.code} ${JSON.stringify(e.headers)}`;
      }
    };
    const first = verifier.holdBody(budget.open());
    const second = verifier.holdBody(budget.open());
    expect(refusal(() => first.take(1500))).toBe('taken');
    // Small bodies are not counted; a body is counted from the byte that passes the threshold.
    expect(refusal(() => second.take(600))).toBe('taken');
    expect(refusal(() => second.take(600))).toBe('503 NETWORK {"Retry-After":"1","Connection":"close"}');
    first.release();
    const third = verifier.holdBody(budget.open());
    expect(refusal(() => third.take(5000))).toBe('taken');
    // The budget's share stays the request's until it answers: release gives back the count only.
    expect(budget.inFlight).toBe(1500 + 600 + 5000);
  });

  it('a worker stopped while it checks: 503 NETWORK with Retry-After; the next update gets a new worker', async () => {
    const verifier = new UpdateVerifier({ threshold: 0, memoryMb: 256, queue: 4 });
    try {
      const { uploads, serverKeyids } = await firstUpdate('verify.example.com/stopped');
      const job = () => firstJob(uploads, serverKeyids);
      const checking = verifier.check(job(), noAsk);
      await verifier.close();
      const stopped = await checking.then(
        () => 'accepted',
        (err: { status?: number; code?: string; headers?: unknown }) =>
          `${err.status} ${err.code} ${JSON.stringify(err.headers)}`,
      );
      expect(stopped).toBe('503 NETWORK {"Retry-After":"1"}');
      const next = await verifier.check(job(), noAsk);
      expect(next.facts.changed.map((c) => c.role)).toEqual(['root', 'targets']);
    } finally {
      await verifier.close();
    }
  });

  it('an idle worker stays for its idle time: the next update is checked by the same thread, then it stops', async () => {
    const { uploads, serverKeyids } = await firstUpdate('verify.example.com/idle');
    const job = () => firstJob(uploads, serverKeyids);
    // The verifier's idle timer only: the worker's messages do not go through timers.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const verifier = new UpdateVerifier({
      threshold: 0,
      memoryMb: 256,
      queue: 4,
      idleMs: 60_000,
      idleHeapMb: 1024,
    });
    try {
      await verifier.check(job(), noAsk);
      const first = verifier.workerThread;
      expect(first).toBeGreaterThan(0);
      vi.advanceTimersByTime(59_999);
      const again = await verifier.check(job(), noAsk);
      expect(again.facts.changed.map((c) => c.role)).toEqual(['root', 'targets']);
      expect(verifier.workerThread).toBe(first);
      // The idle time counts from the last check, not the first.
      vi.advanceTimersByTime(59_999);
      expect(verifier.workerThread).toBe(first);
      vi.advanceTimersByTime(1);
      expect(verifier.workerThread).toBeUndefined();
      await verifier.check(job(), noAsk);
      expect(verifier.workerThread).not.toBe(first);
      expect(verifier.workerThread).toBeGreaterThan(0);
    } finally {
      vi.useRealTimers();
      await verifier.close();
    }
  });

  it('a worker whose heap grew past idleHeapMb, or with no idle time, stops as soon as its check is answered', async () => {
    const { uploads, serverKeyids } = await firstUpdate('verify.example.com/idle-heap');
    const job = () => firstJob(uploads, serverKeyids);
    for (const idle of [
      { idleMs: 60_000, idleHeapMb: 0 },
      { idleMs: 0, idleHeapMb: 1024 },
    ]) {
      const verifier = new UpdateVerifier({ threshold: 0, memoryMb: 256, queue: 4, ...idle });
      try {
        const checked = await verifier.check(job(), noAsk);
        expect(checked.facts.changed.map((c) => c.role)).toEqual(['root', 'targets']);
        expect({ ...idle, worker: verifier.workerThread }).toEqual({ ...idle, worker: undefined });
      } finally {
        await verifier.close();
      }
    }
  });

  it("--verify-worker-idle and --verify-worker-idle-heap: the defaults are the verifier's, flags and environment set them", () => {
    const defaults = parseCommandLine([], {}).config;
    expect({ idle: defaults.verifyWorkerIdle, heap: defaults.verifyWorkerIdleHeap }).toEqual({
      idle: DEFAULT_VERIFIER.idleMs,
      heap: DEFAULT_VERIFIER.idleHeapMb! * 1024 * 1024,
    });
    expect(DEFAULT_VERIFIER.idleMs).toBe(10_000);
    const set = parseCommandLine(['--verify-worker-idle', '0'], {
      TUFA_VERIFY_WORKER_IDLE_HEAP: '64m',
    }).config;
    expect({ idle: set.verifyWorkerIdle, heap: set.verifyWorkerIdleHeap }).toEqual({
      idle: 0,
      heap: 64 * 1024 * 1024,
    });
    expect(codeOf(() => parseCommandLine(['--verify-worker-idle', 'soon'], {}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCommandLine(['--verify-worker-idle-heap', '-1'], {}))).toBe('INVALID_ARGUMENT');
  });

  it('an update whose check needs more memory than the worker has: 413 TOO_LARGE; the server goes on', async () => {
    const small = await startTestServer({
      databaseUrl: await pgServer.createDatabase(),
      bodyLimit: 32 * 1024 * 1024,
      verifyWorkerAbove: 1024 * 1024,
      verifyWorkerMemory: 64 * 1024 * 1024,
    });
    try {
      const gun = 'verify.example.com/memory';
      // 280,000 targets in about 30 MB (under the body limit), each with a field of its own: read
      // the whole way (not entry by entry), more than the worker's 64 MiB.
      const file = { length: 1, hashes: { sha256: 'ab'.repeat(32) }, extra: {} };
      const unusual = { ...file, extra: { x: 1 } };
      const targets: Record<string, typeof file> = Object.create(null);
      for (let i = 0; i < 280_000; i++) targets[`p${i}`] = unusual;
      const big = serializeMetadata(sign({ ...targetsV(2), targets }, keys.targets));
      expect(big.length).toBeLessThan(32 * 1024 * 1024);
      // Built first: a kept-alive connection left idle past the server's keep-alive would be reset.
      await publishNew(small.url, gun);
      const refused = await post(small.url, gun, { targets: big });
      expect({ status: refused.status, code: refused.json.error?.code }).toEqual({
        status: 413,
        code: 'TOO_LARGE',
      });
      expect(refused.json.error.message).toContain('more memory than this server gives one update');
      // The server answers, and the next large update is checked (and accepted) by a new worker.
      expect((await fetch(`${small.url}/_health`)).status).toBe(200);
      const fits: Record<string, typeof file> = Object.create(null);
      for (let i = 0; i < 12_000; i++) fits[`p${i}`] = file;
      const t2 = sign({ ...targetsV(2), targets: fits }, keys.targets);
      expect(serializeMetadata(t2).length).toBeGreaterThan(1024 * 1024);
      const accepted = await post(small.url, gun, { targets: t2 });
      expect({ status: accepted.status, targets: accepted.json.versions?.targets }).toEqual({
        status: 200,
        targets: 2,
      });
    } finally {
      await small.close();
    }
  });
});

describe('the worker checks against the state as the event loop loads it (issue 15)', () => {
  const binnedTargets = (version: number, binKey = keys.releases): Targets =>
    withSuccinctDelegation(newTargets({ version, expires: expiresIn(Date.now(), 90 * DAY) }), {
      keys: [binKey.key],
      bitLength: 4,
      namePrefix: 'bins',
    });
  const bin = (version: number, tags: readonly string[]) => {
    let t = newTargets({ version, expires: expiresIn(Date.now(), 90 * DAY) });
    for (const tag of tags) t = withTarget(t, tag, targetFileFor(testCrypto, utf8Encode(tag)));
    return t;
  };
  /** Root, targets in 16 bins and every bin (v1, one tag each), published through the worker. */
  const publishBinned = async (gun: string) => {
    const root = sign(await rootFor(worker.url, gun), keys.root);
    const targets = binnedTargets(1);
    const succinct = targets.delegations!.succinctRoles!;
    const tags = new Map<string, string>();
    for (let i = 0; tags.size < 16; i++) {
      const name = succinctBinNameFor(succinct, `app/v${i}`);
      if (!tags.has(name)) tags.set(name, `app/v${i}`);
    }
    const docs: Record<string, Metadata> = { root, targets: sign(targets, keys.targets) };
    for (const [name, tag] of tags) docs[name] = sign(bin(1, [tag]), keys.releases);
    expect((await post(worker.url, gun, docs)).status).toBe(200);
    return { succinct, tags };
  };

  it('a publish into one bin sends the worker no other bin: a stored bin that no longer parses does not stop it', async () => {
    const gun = 'verify.example.com/bins/one';
    const { succinct, tags } = await publishBinned(gun);
    const [damaged, target] = [...tags.keys()] as [string, string];
    await worker.store.pool.query(
      // Same length, not JSON: a parse would refuse it.
      `UPDATE metadata SET data = overlay(data PLACING convert_to('!!!!', 'UTF8') FROM 1)
       WHERE collection_id = (SELECT id FROM collections WHERE gun = $1) AND role = $2`,
      [gun, damaged],
    );
    let added = 0;
    while (succinctBinNameFor(succinct, `app/new${added}`) !== target) added++;
    const next = sign(bin(2, [tags.get(target)!, `app/new${added}`]), keys.releases);
    const res = await post(worker.url, gun, { [target]: next });
    expect({ status: res.status, versions: res.json.versions }).toEqual({
      status: 200,
      versions: { root: 1, targets: 1, [target]: 2, snapshot: 2, timestamp: 2 },
    });
    const snapshot = parseMetadata('snapshot', await bytesAt(gunUrl(inline.url, gun, 'snapshot.json')));
    expect(Object.keys(snapshot.signed.meta)).toHaveLength(17);
    expect(snapshot.signed.meta[`${target}.json`]!.version).toBe(2);
  });

  it('a targets that checks every stored bin again: the worker asks the event loop for them, and answers as it does', async () => {
    const gun = 'verify.example.com/bins/again';
    await publishBinned(gun);
    // Other keys for the bins: every stored bin is checked again, and none is signed by them.
    const rotated = { targets: sign(binnedTargets(2, keys.other), keys.targets) };
    const here = await post(inline.url, gun, rotated);
    const there = await post(worker.url, gun, rotated);
    expect(there).toEqual(here);
    expect({ status: there.status, code: there.json.error?.code }).toEqual({
      status: 400,
      code: 'THRESHOLD_NOT_MET',
    });
    // The same keys: every stored bin is read, checked again and kept.
    const same = await post(worker.url, gun, { targets: sign(binnedTargets(2), keys.targets) });
    expect({ status: same.status, versions: same.json.versions }).toEqual({
      status: 200,
      versions: { root: 1, targets: 2, snapshot: 2, timestamp: 2 },
    });
  });

  it('a client-signed snapshot: every role an entry of its row, as on the event loop', async () => {
    const gun = 'verify.example.com/offline-snapshot';
    const root = sign(
      withRootRole(await rootFor(worker.url, gun), 'snapshot', { keys: [keys.other.key] }),
      keys.root,
    );
    const snapshotOf = (version: number, roles: Record<string, Metadata<Targets>>) => {
      const meta = snapshotMetaForState(testCrypto, {
        targets: { bytes: serializeMetadata(roles.targets!), metadata: roles.targets! },
        delegated: new Map(
          Object.entries(roles)
            .filter(([name]) => name !== 'targets')
            .map(([name, md]) => [name, { bytes: serializeMetadata(md), metadata: md }]),
        ),
      });
      return sign(newSnapshot({ version, expires: expiresIn(Date.now(), DAY), meta }), keys.other);
    };
    const targets = sign(targetsV(1), keys.targets);
    const releases = sign(bin(1, ['releases/a']), keys.releases);
    const first = await post(worker.url, gun, {
      root,
      targets,
      releases,
      snapshot: snapshotOf(1, { targets, releases }),
    });
    expect(first.status).toBe(200);
    const releases2 = sign(bin(2, ['releases/a', 'releases/b']), keys.releases);
    // Listing releases v1 where the update makes it v2: the same refusal both ways.
    const stale = { releases: releases2, snapshot: snapshotOf(2, { targets, releases }) };
    const here = await post(inline.url, gun, stale);
    const there = await post(worker.url, gun, stale);
    expect(there).toEqual(here);
    expect(there.json.error?.code).toBe('VERSION_MISMATCH');
    const next = await post(worker.url, gun, {
      releases: releases2,
      snapshot: snapshotOf(2, { targets, releases: releases2 }),
    });
    expect({ status: next.status, versions: next.json.versions }).toEqual({
      status: 200,
      versions: { root: 1, targets: 1, releases: 2, snapshot: 2, timestamp: 2 },
    });
  });

  it('a root that takes the snapshot key offline, with a snapshot replacing the server-signed one: the worker asks for every row', async () => {
    const gun = 'verify.example.com/snapshot-offline';
    const { targets } = await publishNew(worker.url, gun);
    const root2 = sign(
      withRootRole(await rootFor(worker.url, gun, { version: 2 }), 'snapshot', { keys: [keys.other.key] }),
      keys.root,
    );
    const meta = snapshotMetaForState(testCrypto, {
      targets: { bytes: serializeMetadata(targets), metadata: targets },
      delegated: new Map(),
    });
    const snapshot = (version: number) =>
      sign(newSnapshot({ version, expires: expiresIn(Date.now(), DAY), meta }), keys.other);
    const skipped = { root: root2, snapshot: snapshot(3) };
    const here = await post(inline.url, gun, skipped);
    const there = await post(worker.url, gun, skipped);
    expect(there).toEqual(here);
    expect(there.json.error?.code).toBe('VERSION_MISMATCH');
    const taken = await post(worker.url, gun, { root: root2, snapshot: snapshot(2) });
    expect({ status: taken.status, versions: taken.json.versions }).toEqual({
      status: 200,
      versions: { root: 2, targets: 1, snapshot: 2, timestamp: 2 },
    });
  });
});
