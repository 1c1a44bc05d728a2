/**
 * `tufa notary import NOTARY_URL GUN`: reads a Notary v1 collection, verifies it by Notary's own
 * rules (notary/reader.ts), and re-publishes it as a TUF 1.0 collection through the ordinary
 * paths (init, staged changes, publish), so every tufa rule applies to the result. Then every tag
 * is resolved again through tufa's client and compared with what the Notary reader found.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkGun, isTufaError, type Key, TufaError } from '@tufa/core';
import type { Context } from '../context.js';
import { readFileBounded, writeFileAtomic } from '../home.js';
import { type KeyRole, publicKeyFile } from '../keystore.js';
import { canonicalKeyId, decodeNotaryKey, type NotaryKey, parseNotaryDocument } from '../notary/format.js';
import {
  decryptNotaryKey,
  listNotaryKeys,
  type NotaryPrivateKeyFile,
  notaryPassphraseVariable,
} from '../notary/keys.js';
import { compareTags, planImport } from '../notary/plan.js';
import {
  type NotaryCollection,
  type NotaryFetch,
  type NotaryTrust,
  readNotaryCollection,
} from '../notary/reader.js';
import { fetchRoleBytes } from '../remote.js';
import { openClient, remoteOptions } from '../repo.js';
import { checkRoleName, staging } from './stage.js';

export interface NotaryImportOptions {
  trustDir?: string;
  into?: string;
  keepKeys?: boolean;
  rootCertId?: string[];
}

/** Bounded GETs of `/v2/GUN/_trust/tuf/FILE` on the Notary server. */
function notaryFetch(base: URL, gun: string): NotaryFetch {
  return async (file, maxBytes, role) => {
    const url = new URL(`v2/${gun}/_trust/tuf/${file}`, base.href.endsWith('/') ? base : `${base.href}/`);
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(60_000) });
    } catch (cause) {
      throw new TufaError(
        'NETWORK',
        `notary ${role}: cannot fetch ${url.href} (${(cause as Error).message})`,
        { role, cause },
      );
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new TufaError('NETWORK', `notary ${role}: ${url.href} answered ${res.status}`, {
        role,
        found: res.status,
      });
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel();
      throw new TufaError('TOO_LARGE', `notary ${role}: ${declared} bytes, at most ${maxBytes} expected`, {
        role,
        expected: maxBytes,
        found: declared,
      });
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += chunk.length;
      if (size > maxBytes) {
        throw new TufaError('TOO_LARGE', `notary ${role}: more than ${maxBytes} bytes`, {
          role,
          expected: maxBytes,
          found: size,
        });
      }
      chunks.push(chunk);
    }
    return new Uint8Array(Buffer.concat(chunks));
  };
}

/** What Notary's trust dir knows of the collection: its root (rotations chain from it) and versions seen. */
async function trustDirState(
  trustDir: string,
  gun: string,
  certIds: readonly string[],
): Promise<NotaryTrust> {
  const dir = join(trustDir, 'tuf', ...gun.split('/'), 'metadata');
  const read = (file: string) =>
    readFileBounded(join(dir, file), 5 * 1024 * 1024, 'notary trust dir metadata');
  const trustedRoot = await read('root.json');
  const seenVersions: Record<string, number> = {};
  for (const role of ['timestamp', 'snapshot', 'targets']) {
    const bytes = await read(`${role}.json`);
    if (bytes !== undefined) seenVersions[role] = parseNotaryDocument(role, bytes).signed.version;
  }
  return { trustedRoot, seenVersions, ...(certIds.length > 0 ? { certIds } : {}) };
}

interface KeptKey {
  readonly notaryId: string;
  readonly keyid: string;
  readonly key: Key;
}

/** Decrypts Notary's key with NOTARY_*_PASSPHRASE (or a prompt) and stores it in tufa's keystore under a tufa passphrase. */
async function keepKey(
  ctx: Context,
  file: NotaryPrivateKeyFile,
  role: KeyRole,
  gun: string,
): Promise<KeptKey> {
  const variable = notaryPassphraseVariable(file.role);
  let passphrase = ctx.env[variable];
  if (passphrase === undefined || passphrase === '') {
    if (process.stdin.isTTY !== true) {
      throw new TufaError(
        'PASSPHRASE_REQUIRED',
        `notary ${file.role} key ${file.id.slice(0, 12)}…: set ${variable} or run on a terminal`,
        {
          role: file.role,
          details: { variable },
        },
      );
    }
    const { promptHidden } = await import('../passphrase.js');
    passphrase = await promptHidden(`Notary passphrase for the ${file.role} key ${file.id.slice(0, 12)}…: `);
  }
  const decrypted = decryptNotaryKey(file, passphrase);
  if (decrypted.privateKey.asymmetricKeyType !== 'ec') {
    throw new TufaError(
      'UNSUPPORTED_KEY',
      `notary ${file.role} key ${file.id.slice(0, 12)}…: tufa signs with ed25519 and P-256 keys only`,
      {
        role: file.role,
      },
    );
  }
  const tufaPass = await ctx.passphrases.get(role, `the ${role} key kept from Notary (${file.role})`, true);
  const info = await ctx.keystore.store({
    role,
    gun,
    passphrase: tufaPass,
    privateKey: decrypted.pkcs8,
    p256: true,
  });
  return { notaryId: file.id, keyid: info.keyid, key: info.key };
}

/** A context whose command output is kept for the report instead of printed. */
function quiet(ctx: Context, notes: string[]): Context {
  return { ...ctx, out: { json: true, result() {}, note: (text) => notes.push(text) } };
}

export async function notaryImport(
  ctx: Context,
  notaryUrl: string,
  gun: string,
  options: NotaryImportOptions,
): Promise<void> {
  let base: URL;
  try {
    base = new URL(notaryUrl);
  } catch {
    throw new TufaError('INVALID_ARGUMENT', `not a URL: ${notaryUrl.slice(0, 80)}`, {
      found: notaryUrl.slice(0, 80),
    });
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new TufaError('INVALID_ARGUMENT', 'the Notary server is an http or https URL', {
      found: base.protocol,
    });
  }
  const into = checkGun(options.into ?? gun);
  const certIds = options.rootCertId ?? [];
  for (const id of certIds) {
    if (!/^[0-9a-f]{64}$/.test(id))
      throw new TufaError('INVALID_ARGUMENT', `--root-cert-id takes a 64-digit hex id: ${id.slice(0, 80)}`);
  }
  // The import publishes exactly what Notary holds: changes staged here before would ride along.
  const staged = await staging(ctx).list(into);
  if (staged.length > 0) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${staged.length} changes are staged for ${into}: tufa reset ${into} first`,
      {
        found: staged.length,
      },
    );
  }
  // A collection that exists already is refused before any key is decrypted or stored (init would refuse it later).
  const remote = await remoteOptions(ctx);
  const exists = await fetchRoleBytes(remote, into, 'root.json').then(
    () => true,
    (err) => {
      if (isTufaError(err, 'NOT_FOUND')) return false;
      throw err;
    },
  );
  if (exists) {
    throw new TufaError(
      'CONFLICT',
      `${into} already exists on ${remote.server}: import into a new collection (--into GUN2)`,
      {
        details: { exists: true },
      },
    );
  }
  const trustDir = options.trustDir ?? join(ctx.env.HOME ?? homedir(), '.notary');
  const trust = await trustDirState(trustDir, gun, certIds);

  // 1. Read and verify by Notary's rules: nothing is written before this passes.
  const collection = await readNotaryCollection({
    gun,
    fetch: notaryFetch(base, gun),
    crypto: ctx.crypto,
    now: Date.now(),
    trust,
  });
  const plan = planImport(collection);

  // 2. Keys: new ones (init makes them) or Notary's, re-encrypted into tufa's keystore.
  const notCarried: { what: string; why: string }[] = [...plan.notCarried];
  const notes: string[] = [];
  const q = quiet(ctx, notes);
  const kept = new Map<string, KeptKey>();
  let rootFile: string | undefined;
  let targetsFile: string | undefined;
  const scratch = await mkdtemp(join(tmpdir(), 'tufa-notary-'));
  try {
    const files = options.keepKeys === true ? await listNotaryKeys(trustDir) : [];
    const fileFor = (key: NotaryKey) => files.find((f) => f.id === canonicalKeyId(key));
    if (options.keepKeys === true) {
      const root = collection.root.signed;
      const rootKey = root.roles.root.keyids
        .map((id) => root.keys[id]!)
        .find((k) => fileFor(k) !== undefined);
      const targetsKey = root.roles.targets.keyids
        .map((id) => root.keys[id]!)
        .find((k) => fileFor(k) !== undefined);
      for (const [role, key] of [
        ['root', rootKey],
        ['targets', targetsKey],
      ] as const) {
        if (key === undefined) {
          throw new TufaError(
            'NOT_FOUND',
            `--keep-keys: no private key of the Notary ${role} role in ${join(trustDir, 'private')}`,
            { role },
          );
        }
        const k = await keepKey(ctx, fileFor(key)!, role, into);
        kept.set(role, k);
        const file = join(scratch, `${role}.pub`);
        await writeFileAtomic(file, publicKeyFile(k.key));
        if (role === 'root') rootFile = file;
        else targetsFile = file;
      }
    }
    const { init } = await import('./init.js');
    await init(
      q,
      into,
      kept.size === 0 ? {} : { localKey: false, rootKeyFile: [rootFile!], targetsKey: [targetsFile!] },
    );

    // 3. Delegations level by level (a role is staged into once its delegation is published), then the tags.
    const stage = staging(q);
    const { publish } = await import('./publish.js');
    const delegations: DelegationReport[] = [];
    // One Notary key may sign for several roles: decrypted and stored once.
    const keptDelegation = new Map<string, KeptKey>();
    for (const level of plan.levels) {
      for (const d of level.delegations) {
        const keys: Key[] = [];
        let keptHere = 0;
        for (const id of d.notary.keyids) {
          const notaryKey = d.keys[id]!;
          const file = fileFor(notaryKey);
          if (file !== undefined && decodeNotaryKey(notaryKey, d.notaryName).key.keytype === 'ecdsa') {
            const k = keptDelegation.get(file.id) ?? (await keepKey(ctx, file, 'delegation', into));
            keptDelegation.set(file.id, k);
            keys.push(k.key);
            keptHere++;
          }
        }
        if (keys.length < d.notary.threshold) {
          // Default, or Notary's key is not here: a new tufa key signs the role from now on.
          keys.length = 0;
          const pass = await ctx.passphrases.get('delegation', `the new key of ${d.name}`, true);
          keys.push((await ctx.keystore.generate({ role: 'delegation', gun: into, passphrase: pass })).key);
          if (options.keepKeys === true)
            notCarried.push({
              what: `the keys of ${d.notaryName}`,
              why: 'no private key of this role in the trust dir: a new tufa key signs it',
            });
        }
        if (keptHere >= d.notary.threshold && keptHere < d.notary.keyids.length) {
          notCarried.push({
            what: `${d.notary.keyids.length - keptHere} of the ${d.notary.keyids.length} keys of ${d.notaryName}`,
            why: 'their private keys are not in the trust dir: their holders need tufa keys (tufa key add)',
          });
        }
        checkRoleName(d.name);
        await stage.add(into, {
          op: 'delegation-add',
          role: d.parent,
          name: d.name,
          keys,
          threshold: keptHere >= d.notary.threshold ? d.notary.threshold : 1,
          terminating: false,
          paths: d.patterns,
        });
        delegations.push({
          notary: d.notaryName,
          role: d.name,
          parent: d.parent,
          prefixes: d.notary.paths,
          paths: d.patterns,
          keys: keptHere >= d.notary.threshold ? 'kept' : 'new',
          tags: d.tags,
        });
      }
      for (const tag of level.tags) {
        await stage.putTarget(
          into,
          { role: tag.role, path: tag.path },
          { op: 'add', role: tag.role, path: tag.path, target: tag.target },
        );
      }
      if ((await stage.list(into)).length > 0) await publish(q, into);
    }

    // 4. Every tag again, through tufa's client pinned to the root just published: the same digests, or a refusal.
    const { pinnedRoot, check } = await checkImport(ctx, into, collection);
    const rootKeyId = pinnedRoot;
    const report = {
      source: {
        notary: base.href,
        gun,
        rootVersion: collection.root.signed.version,
        rotations: collection.rotations,
        trustedOnFirstUse: collection.trustedOnFirstUse,
        rootCertIds: collection.rootKeyIds,
      },
      gun: into,
      tags: [...collection.tags.values()].map((t) => ({
        tag: t.path,
        role: plan.roleNames.get(t.role)!,
        notaryRole: t.role,
        digest: `sha256:${t.target.hashes.sha256 ?? '-'}`,
        length: t.target.length,
      })),
      delegations,
      keys: {
        root: kept.has('root') ? 'kept' : 'new',
        targets: kept.has('targets') ? 'kept' : 'new',
        ...(kept.size > 0
          ? {
              notice:
                "Notary's key files used PBKDF2 with few iterations; the kept keys are now encrypted in tufa's keystore (scrypt): delete or re-protect the Notary copies",
            }
          : {}),
      },
      notCarried,
      rootKeyId,
      check,
    };
    if (check.mismatches.length > 0) {
      throw new TufaError(
        'IMPORT_MISMATCH',
        `${into}: ${check.mismatches.length} tag${check.mismatches.length === 1 ? '' : 's'} resolve differently through tufa than through Notary (${check.mismatches
          .slice(0, 3)
          .map((m) => m.tag)
          .join(', ')}); the collection is published: compare with tufa list ${into}`,
        {
          details: { report },
        },
      );
    }
    ctx.out.result(report, [
      `imported ${gun} from ${base.href} into ${into}: ${report.tags.length} tag${report.tags.length === 1 ? '' : 's'}, ${delegations.length} delegation${delegations.length === 1 ? '' : 's'}`,
      `notary root v${collection.root.signed.version} (${collection.trustedOnFirstUse ? 'trusted on first use' : certIds.length > 0 ? 'pinned by certificate id' : "from the trust dir's root"}${collection.rotations > 0 ? `, ${collection.rotations} rotation${collection.rotations === 1 ? '' : 's'} verified` : ''}), certificates ${collection.rootKeyIds.map((id) => id.slice(0, 12)).join(', ')}`,
      ...report.tags.map((t) => `  ${t.tag}\t${t.digest}\t${t.length}\t${t.role}`),
      ...delegations.map(
        (d) =>
          `delegation ${d.notary} -> ${d.role} (by ${d.parent}, ${d.keys} keys): prefixes ${d.prefixes.map((p) => JSON.stringify(p)).join(', ')} -> paths ${d.paths.join(', ')}`,
      ),
      `keys: root ${report.keys.root}, targets ${report.keys.targets}${report.keys.notice === undefined ? '' : `; ${report.keys.notice}`}`,
      ...notCarried.map((n) => `not carried: ${n.what}: ${n.why}`),
      `check: all ${check.tags} tags resolve through tufa to the digests Notary signed`,
      `deploy scripts pin the new root with: --root-key ${rootKeyId}`,
    ]);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface DelegationReport {
  notary: string;
  role: string;
  parent: string;
  prefixes: readonly string[];
  paths: readonly string[];
  keys: 'kept' | 'new';
  tags: number;
}

/** Resolves every tag through tufa's client (this home pins the root init published) and compares. */
async function checkImport(
  ctx: Context,
  gun: string,
  collection: NotaryCollection,
): Promise<{ pinnedRoot: string; check: { tags: number; mismatches: ReturnType<typeof compareTags> } }> {
  const client = await openClient(ctx, gun);
  const listed = await client.listTargets();
  const tufa = new Map<string, { length: number; hashes: Record<string, string> }>();
  for (const t of listed) {
    try {
      const resolved = await client.getTarget(t.name);
      tufa.set(t.name, { length: resolved.length, hashes: resolved.hashes });
    } catch (err) {
      if (!isTufaError(err)) throw err;
    }
  }
  const notary = new Map(
    [...collection.tags].map(([path, t]) => [path, { length: t.target.length, hashes: t.target.hashes }]),
  );
  const root = (await client.trustedMetadata()).root;
  return {
    pinnedRoot: root.signed.roles.root.keyids[0]!,
    check: { tags: notary.size, mismatches: compareTags(notary, tufa) },
  };
}
