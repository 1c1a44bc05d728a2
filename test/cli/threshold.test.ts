import {
  addSignatures,
  ed25519Signer,
  generateEd25519Key,
  parseMetadata,
  serializeMetadata,
  signMetadata,
  type Targets,
  utf8Decode,
  withTarget,
} from '@tufa/core';
import { testCrypto } from '@tufa/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const SHA_A = `sha256:${'a'.repeat(64)}`;
const SHA_B = `sha256:${'b'.repeat(64)}`;

describe('threshold signing through the tufa CLI and tufa-server', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let url: string;
  const homes: Home[] = [];
  // Signers get the operator's token (proposing and signing are writes); readers need none.
  const home = (env?: Record<string, string>) => {
    const h = new Home(url, env ?? { ...PASSPHRASES, TUFA_TOKEN: backend.token });
    homes.push(h);
    return h;
  };
  const pendingUrl = (gun: string, rest = '') => `${url}/v2/${gun}/_trust/pending/${rest}`;
  /** Each role of a pending answer, and whether its thresholds are met. */
  const completeness = (answer: any) =>
    answer.pending.status.roles.map((r: { role: string; complete: boolean }) => [r.role, r.complete]);

  beforeAll(async () => {
    backend = await startBackend('embedded', { clockStepMs: 61_000 });
    url = backend.server.url;
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backend?.stop();
  });

  it('2-of-3 targets: pending after one signer, published by the second; foreign and altered signatures refused', async () => {
    const gun = 'example.com/threshold/targets';
    const [alice, bob, carol, mallory] = [home(), home(), home(), home()];
    const bobKey = await bob.newKeyFile('targets');
    const carolKey = await carol.newKeyFile('targets');
    await mallory.newKeyFile('targets');

    const init = await alice.json([
      'init',
      gun,
      '--targets-threshold',
      '2',
      '--targets-key',
      bobKey.file,
      '--targets-key',
      carolKey.file,
    ]);
    expect(init.published).toBe(false);
    expect(init.targets.threshold).toBe(2);
    expect(init.pending.needed).toBe(1);
    const first = await bob.json(['sign', gun, 'targets', '--yes']);
    expect(first.published).toBe(true);
    expect(first.versions).toMatchObject({ root: 1, targets: 1 });

    const client = home({});
    const pin = ['--root-key', init.root.keyid];
    expect(await client.json(['list', gun, ...pin])).toEqual([]);

    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '10']);
    const published = await alice.json(['publish', gun]);
    expect(published.published).toBe(false);
    expect(published.pending.needed).toBe(1);
    const id = published.pending.id as string;
    // The client still sees the published version: pending metadata is never served.
    expect((await client.run(['lookup', gun, 'v1', ...pin])).code).toBe(4);

    const listed = await carol.json(['pending', 'list', gun]);
    expect(listed.pending).toHaveLength(1);
    expect(listed.pending[0]).toMatchObject({
      id,
      state: 'pending',
      roles: [{ role: 'targets', version: 2 }],
    });
    expect(listed.pending[0].status.roles[0].thresholds[0]).toMatchObject({ threshold: 2, needed: 1 });
    expect(listed.pending[0].changes[0].targets.added).toEqual(['v1']);
    const human = await carol.ok(['pending', 'list', gun]);
    expect(human).toMatch(/targets v2: 1 of 2 signatures/);
    expect(human).toMatch(/\+ v1/);

    // A key outside the role: the CLI finds nothing to sign with; the server refuses such a signature.
    const outsider = await mallory.run(['sign', gun, 'targets', '--yes']);
    expect(outsider.code).toBe(4);
    expect(outsider.stderr).toMatch(/NOT_FOUND: targets: this home holds no key of the role/);
    const auth = { authorization: `Bearer ${backend.token}` };
    const doc = (await (await fetch(pendingUrl(gun, id), { headers: auth })).json()) as {
      documents: { targets: string };
    };
    const bytes = new Uint8Array(Buffer.from(doc.documents.targets, 'base64'));
    const pendingTargets = parseMetadata('targets', bytes);
    const foreignKey = generateEd25519Key(testCrypto);
    const foreign = (
      await addSignatures(pendingTargets, [ed25519Signer(testCrypto, foreignKey.privateKey)])
    ).signatures.at(-1)!;
    const refused = await fetch(pendingUrl(gun, `${id}/signatures`), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ signatures: { targets: [{ keyid: foreign.keyid, sig: foreign.sig }] } }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('BAD_SIGNATURE');
    // The pending version altered after the first signature (alice's kept): it fails verification.
    const altered: Targets = withTarget(pendingTargets.signed, 'evil', pendingTargets.signed.targets.v1!);
    const tampered = serializeMetadata({
      ...(await signMetadata(altered, [])),
      signatures: pendingTargets.signatures,
    });
    const alteredAnswer = await fetch(pendingUrl(gun), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: `{"targets":${utf8Decode(tampered)}}`,
    });
    expect(alteredAnswer.status).toBe(400);
    expect(((await alteredAnswer.json()) as { error: { code: string } }).error.code).toBe('BAD_SIGNATURE');

    // A co-signer never signs without reading: no terminal and no --yes shows the summary and stops.
    const unread = await carol.run(['sign', gun, 'targets']);
    expect(unread.code).toBe(2);
    expect(unread.stderr).toMatch(/\+ v1/);
    const signed = await carol.json(['sign', gun, 'targets', '--yes']);
    expect(signed.published).toBe(true);
    expect(signed.versions.targets).toBe(2);
    expect(signed.changes[0].targets).toEqual({ added: ['v1'], removed: [], changed: [] });
    expect((await client.ok(['lookup', gun, 'v1', ...pin])).trim()).toBe(SHA_A);
    expect((await alice.json(['pending', 'list', gun])).pending).toEqual([]);
  });

  it('root 2-of-3 → 3-of-5, collected over three signers; a client that trusted the old root follows', async () => {
    const gun = 'example.com/threshold/root';
    const [alice, bob, carol, keysmith] = [home(), home(), home(), home()];
    const bobKey = await bob.newKeyFile('root');
    const carolKey = await carol.newKeyFile('root');
    const dave = await keysmith.newKeyFile('root');
    const erin = await keysmith.newKeyFile('root');

    const init = await alice.json([
      'init',
      gun,
      '--root-threshold',
      '2',
      '--root-key-file',
      bobKey.file,
      '--root-key-file',
      carolKey.file,
    ]);
    expect(completeness(init)).toEqual([
      ['root', false],
      ['targets', true],
    ]);
    expect((await bob.json(['sign', gun, 'root', '--yes'])).published).toBe(true);
    // bob reviewed root v1 and completed it: his home pins it (no trust on first use needed);
    // alice made it: her home pinned its root keys at init.
    expect((await bob.run(['list', gun, '--no-tofu'])).code).toBe(0);
    expect((await alice.run(['list', gun, '--no-tofu'])).code).toBe(0);
    await alice.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    await alice.ok(['publish', gun]); // targets stays 1-of-1: published at once
    const client = home({});
    const pin = ['--root-key', init.root.keyid, '--no-tofu'];
    expect((await client.ok(['lookup', gun, 'v1', ...pin])).trim()).toBe(SHA_A); // trusts root v1

    const proposed = await alice.json(['key', 'add', gun, 'root', dave.file, erin.file, '--threshold', '3']);
    expect(proposed.published).toBe(false);
    const thresholds = (status: { roles: { thresholds: { by: string; needed: number }[] }[] }) =>
      status.roles[0]!.thresholds.map((t) => [t.by, t.needed]);
    expect(thresholds(proposed.pending.status)).toEqual([
      ['root v1', 1],
      ['root v2', 2],
    ]);
    const view = await bob.json(['pending', 'list', gun]);
    expect(view.pending[0].changes[0].keys).toEqual([
      { role: 'root', added: [dave.keyid, erin.keyid], removed: [], threshold: { from: 2, to: 3 } },
    ]);
    const second = await bob.json(['sign', gun, 'root', '--yes']);
    expect(second.published).toBe(false);
    expect(thresholds(second.status)).toEqual([
      ['root v1', 0],
      ['root v2', 1],
    ]);
    expect((await client.run(['lookup', gun, 'v1', ...pin])).code).toBe(0); // still root v1
    const third = await carol.json(['sign', gun, 'root', '--yes']);
    expect(third.published).toBe(true);
    expect(third.versions.root).toBe(2);

    // The client follows to root v2 (signed by 2 of v1's keys and 3 of its own) and keeps verifying.
    await alice.ok(['add', gun, 'v2', '--digest', SHA_B, '--length', '2']);
    await alice.ok(['publish', gun]);
    expect((await client.ok(['lookup', gun, 'v2', ...pin])).trim()).toBe(SHA_B);
    const fresh = home({});
    expect((await fresh.ok(['lookup', gun, 'v2', ...pin])).trim()).toBe(SHA_B);
  });

  it('a 2-of-2 delegated role: competing proposals, a superseded one dropped, and expiry of a pending version', async () => {
    const gun = 'example.com/threshold/delegated';
    const [owner, dana, eve] = [home(), home(), home()];
    await owner.json(['init', gun]);
    const danaKey = await dana.newKeyFile('delegation');
    const eveKey = await eve.newKeyFile('delegation');
    await owner.ok([
      'delegation',
      'add',
      gun,
      'releases',
      '--key',
      danaKey.file,
      '--key',
      eveKey.file,
      '--threshold',
      '2',
      '--paths',
      'releases/*',
    ]);
    await owner.ok(['publish', gun]);
    const reader = home({});

    await dana.ok(['add', gun, 'releases/1', '--digest', SHA_A, '--length', '1', '--role', 'releases']);
    expect((await dana.json(['publish', gun])).published).toBe(false);
    expect((await reader.run(['lookup', gun, 'releases/1'])).code).toBe(4);
    const cosigned = await eve.json(['sign', gun, 'releases', '--yes']);
    expect(cosigned.published).toBe(true);
    expect(cosigned.changes).toEqual([
      expect.objectContaining({
        role: 'releases',
        from: null,
        to: 1,
        targets: { added: ['releases/1'], removed: [], changed: [] },
      }),
    ]);
    expect((await reader.ok(['lookup', gun, 'releases/1'])).trim()).toBe(SHA_A);

    // Two competing proposals for releases v2.
    await dana.ok(['add', gun, 'releases/a', '--digest', SHA_A, '--length', '2', '--role', 'releases']);
    const a = await dana.json(['publish', gun]);
    await eve.ok(['add', gun, 'releases/b', '--digest', SHA_B, '--length', '3', '--role', 'releases']);
    const b = await eve.json(['publish', gun]);
    expect(a.pending.id).not.toBe(b.pending.id);
    expect((await owner.json(['pending', 'list', gun])).pending).toHaveLength(2);
    const ambiguous = await dana.run(['sign', gun, 'releases', '--yes']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/choose one with --id/);
    const won = await dana.json(['sign', gun, 'releases', '--id', b.pending.id.slice(0, 12), '--yes']);
    expect(won.published).toBe(true);
    expect(won.changes[0].targets).toEqual({ added: ['releases/b'], removed: [], changed: [] });
    const after = await owner.json(['pending', 'list', gun]);
    expect(after.pending).toEqual([expect.objectContaining({ id: a.pending.id, state: 'superseded' })]);
    expect(await owner.ok(['pending', 'list', gun])).toMatch(/superseded/);
    expect((await eve.run(['sign', gun, 'releases', '--yes'])).code).toBe(4); // nothing left to sign
    await owner.ok(['pending', 'drop', gun, 'releases', '--id', a.pending.id.slice(0, 12)]);
    expect((await owner.json(['pending', 'list', gun])).pending).toEqual([]);
    expect((await reader.ok(['lookup', gun, 'releases/b'])).trim()).toBe(SHA_B);
    expect((await reader.run(['lookup', gun, 'releases/a'])).code).toBe(4);

    // A pending version expires.
    await dana.ok(['add', gun, 'releases/c', '--digest', SHA_A, '--length', '4', '--role', 'releases']);
    expect((await dana.json(['publish', gun, '--pending-expires', '1m'])).published).toBe(false);
    expect((await owner.json(['pending', 'list', gun])).pending).toHaveLength(1);
    await backend.server.advanceClock(); // 61 s later for the server, which decides expiry
    expect((await owner.json(['pending', 'list', gun])).pending).toEqual([]);
    const late = await eve.run(['sign', gun, 'releases', '--yes']);
    expect(late.code).toBe(4);
    expect(late.stderr).toMatch(/NOT_FOUND/);

    // The delegator lowers the threshold (its own next version, signed by its key alone): one signer is enough.
    const lowered = await owner.json(['threshold', 'set', gun, 'releases', '1']);
    expect(lowered.published).toBe(true);
    expect((await owner.json(['delegation', 'list', gun]))[0]).toMatchObject({
      role: 'releases',
      threshold: 1,
    });
    // The expired proposal took dana's staged change with it: staged again, published alone now.
    await dana.ok(['add', gun, 'releases/c', '--digest', SHA_A, '--length', '4', '--role', 'releases']);
    expect((await dana.json(['publish', gun])).published).toBe(true);
    expect((await reader.ok(['lookup', gun, 'releases/c'])).trim()).toBe(SHA_A);
  });

  it('a key added to a published delegated role at a higher threshold: the role is re-signed and co-signed with its delegator', async () => {
    const gun = 'example.com/threshold/kept';
    const [owner, eve] = [home(), home()];
    await owner.json(['init', gun]);
    const ownKey = await owner.newKeyFile('delegation');
    const eveKey = await eve.newKeyFile('delegation');
    await owner.ok(['delegation', 'add', gun, 'releases', '--key', ownKey.file, '--paths', 'releases/*']);
    await owner.ok(['publish', gun]);
    await owner.ok(['add', gun, 'releases/1', '--digest', SHA_A, '--length', '1', '--role', 'releases']);
    await owner.ok(['publish', gun]);
    // releases 1-of-1 → 2-of-2: the published releases v1 (one signature) would be trusted no more.
    const added = await owner.json(['key', 'add', gun, 'releases', eveKey.file, '--threshold', '2']);
    expect(added.published).toBe(false);
    expect(completeness(added)).toEqual([
      ['targets', true],
      ['releases', false],
    ]);
    expect((await eve.json(['sign', gun, 'releases', '--yes'])).published).toBe(true);
    const reader = home({});
    expect((await reader.ok(['lookup', gun, 'releases/1'])).trim()).toBe(SHA_A);
    expect((await owner.json(['delegation', 'list', gun]))[0]).toMatchObject({
      role: 'releases',
      threshold: 2,
    });
  });

  it('a role that two delegators name: proposed through one, its status and co-signing through it as the server has it', async () => {
    const gun = 'example.com/threshold/two-delegators';
    const [owner, dana, eve] = [home(), home(), home()];
    await owner.json(['init', gun]);
    const [b, a, x] = [
      await owner.newKeyFile('delegation'),
      await owner.newKeyFile('delegation'),
      await owner.newKeyFile('delegation'),
    ];
    const danaKey = await dana.newKeyFile('delegation');
    const eveKey = await eve.newKeyFile('delegation');
    // targets delegates b, then a; b gives `shared` to dana and eve (2 of 2), a to x alone.
    await owner.ok(['delegation', 'add', gun, 'b', '--key', b.file, '--paths', 'shared/*']);
    await owner.ok(['delegation', 'add', gun, 'a', '--key', a.file, '--paths', 'shared/*']);
    await owner.ok(['publish', gun]);
    const shared = (parent: string, keys: string[], threshold: string) => [
      'delegation',
      'add',
      gun,
      'shared',
      '--parent',
      parent,
      ...keys.flatMap((k) => ['--key', k]),
      '--threshold',
      threshold,
      '--paths',
      'shared/*',
    ];
    await owner.ok(shared('b', [danaKey.file, eveKey.file], '2'));
    await owner.ok(shared('a', [x.file], '1'));
    await owner.ok(['publish', gun]);

    await dana.ok(['add', gun, 'shared/1', '--digest', SHA_A, '--length', '1', '--role', 'shared']);
    const proposed = await dana.json(['publish', gun]);
    expect(proposed.published).toBe(false);
    expect(proposed.pending.status.roles[0]).toMatchObject({ role: 'shared', complete: false, oneOf: true });
    const human = await eve.ok(['pending', 'list', gun]);
    expect(human).toMatch(/shared v1: one of these thresholds is enough/);
    expect(human).toMatch(/shared v1: 1 of 2 signatures by keys of b/);
    expect(human).toMatch(/shared v1: 0 of 1 signatures by keys of a/);
    // eve's CLI checks the proposal against its own trusted state, both delegators loaded.
    const signed = await eve.json(['sign', gun, 'shared', '--yes']);
    expect(signed.published).toBe(true);
    expect(signed.status.complete).toBe(true);
    expect((await home({}).ok(['lookup', gun, 'shared/1'])).trim()).toBe(SHA_A);
  });

  it('threshold set and key remove make new roots that need the required signatures', async () => {
    const gun = 'example.com/threshold/settings';
    const [alice, bob] = [home(), home()];
    const bobKey = await bob.newKeyFile('targets');
    await alice.json(['init', gun]);
    // targets 1-of-1 (alice) → 1-of-2 (alice, bob): alice's root key alone signs it.
    const added = await alice.json(['key', 'add', gun, 'targets', bobKey.file]);
    expect(added.published).toBe(true);
    // → 2-of-2: targets must be re-signed by two keys: alice signs, bob co-signs.
    const raised = await alice.json(['threshold', 'set', gun, 'targets', '2']);
    expect(raised.published).toBe(false);
    expect(raised.pending.status.roles.map((r: { role: string }) => r.role)).toEqual(['root', 'targets']);
    expect((await bob.json(['sign', gun, 'targets', '--yes'])).published).toBe(true);
    const impossible = await alice.run(['threshold', 'set', gun, 'targets', '3']);
    expect(impossible.code).toBe(2);
    expect(impossible.stderr).toMatch(/could never be met/);
    const unknown = await alice.run(['key', 'remove', gun, 'targets', 'f'.repeat(64)]);
    expect(unknown.code).toBe(4);
  });
});
