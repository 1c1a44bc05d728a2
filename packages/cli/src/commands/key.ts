/** `tufa key generate | list | import | export`: keys in the keystore, or on a PKCS#11 token. */
import { TufaError } from '@tufa/core';
import type { Context } from '../context.js';
import { readLocalFile } from '../home.js';
import {
  KEY_ROLES,
  KEY_TYPES,
  type KeyRole,
  type KeyType,
  parsePrivateKeyFile,
  publicKeyFile,
  type StoredKeyInfo,
} from '../keystore.js';

function keyRole(value: string | undefined): KeyRole {
  const role = (value ?? 'targets') as KeyRole;
  if (!KEY_ROLES.includes(role)) {
    throw new TufaError('INVALID_ARGUMENT', `--role must be one of ${KEY_ROLES.join(', ')}`, {
      found: value,
    });
  }
  return role;
}

function keyType(value: string | undefined): KeyType {
  const type = (value ?? 'ed25519') as KeyType;
  if (!KEY_TYPES.includes(type)) {
    throw new TufaError('INVALID_ARGUMENT', `--type must be one of ${KEY_TYPES.join(', ')}`, {
      found: value,
    });
  }
  return type;
}

/** A key's CKA_ID from `--id HEX` (YubiKey PIV: 02 is slot 9c). */
function tokenId(value: string | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (!/^([0-9a-fA-F]{2}){1,64}$/.test(value)) {
    throw new TufaError('INVALID_ARGUMENT', '--id is the key id on the token in hex, e.g. 02', {
      found: value.slice(0, 80),
    });
  }
  return Uint8Array.from(Buffer.from(value, 'hex'));
}

export interface KeyGenerateOptions {
  role?: string;
  gun?: string;
  type?: string;
  /** On a PKCS#11 token instead of the keystore. */
  pkcs11?: boolean;
  module?: string;
  tokenLabel?: string;
  label?: string;
  id?: string;
}

export async function keyGenerate(ctx: Context, options: KeyGenerateOptions): Promise<void> {
  const role = keyRole(options.role);
  const type = keyType(options.pkcs11 === true ? (options.type ?? 'ecdsa') : options.type);
  let info: StoredKeyInfo;
  if (options.pkcs11 === true) {
    const { modulePathFor, tokensOf } = await import('../pkcs11.js');
    const made = await tokensOf(ctx).generate({
      modulePath: modulePathFor(ctx.env, options.module),
      token: options.tokenLabel,
      label: options.label ?? `tufa ${role}`,
      id: tokenId(options.id),
      type,
    });
    info = await ctx.keystore.storeReference({ role, gun: options.gun, key: made.key, pkcs11: made.uri });
  } else {
    for (const [flag, name] of [
      ['module', 'module'],
      ['tokenLabel', 'token-label'],
      ['label', 'label'],
      ['id', 'id'],
    ] as const) {
      if (options[flag] !== undefined) {
        throw new TufaError('INVALID_ARGUMENT', `--${name} is for a key on a PKCS#11 token: add --pkcs11`);
      }
    }
    const passphrase = await ctx.passphrases.get(role, `the new ${role} key`, true);
    info = await ctx.keystore.generate({ role, gun: options.gun, passphrase, type });
  }
  ctx.out.result(
    {
      keyid: info.keyid,
      role,
      gun: info.gun ?? null,
      keytype: info.key.keytype,
      scheme: info.key.scheme,
      location: info.pkcs11 ?? 'keystore',
      public: JSON.parse(publicKeyFile(info.key)),
    },
    [
      `generated ${role} key ${info.keyid} (${info.key.scheme})${info.pkcs11 === undefined ? '' : ` on the token: ${info.pkcs11}`}`,
      `export its public key with: tufa key export ${info.keyid} > ${info.keyid.slice(0, 12)}.pub`,
    ],
  );
}

export async function keyList(ctx: Context): Promise<void> {
  const keys = await ctx.keystore.list();
  ctx.out.result(
    keys.map((k) => ({
      keyid: k.keyid,
      role: k.role,
      gun: k.gun ?? null,
      created: k.created,
      scheme: k.key.scheme,
      location: k.pkcs11 ?? 'keystore',
    })),
    keys.length === 0
      ? [`no keys in ${ctx.keystore.dir}`]
      : keys.map(
          (k) =>
            `${k.keyid}  ${k.role.padEnd(10)}  ${k.gun ?? '-'}  ${k.created}  ${k.key.scheme}  ${k.pkcs11 ?? 'keystore'}`,
        ),
  );
}

export async function keyExport(ctx: Context, keyid: string, options: { private?: boolean }): Promise<void> {
  const info = await ctx.keystore.info(keyid);
  if (options.private && info.pkcs11 !== undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `key ${keyid.slice(0, 12)}… lives on a PKCS#11 token (${info.pkcs11}): its private key never leaves it`,
      { found: info.pkcs11 },
    );
  }
  if (options.private) {
    // Proves the holder knows the passphrase before handing out the (still encrypted) key.
    await ctx.keystore.unlock(
      keyid,
      await ctx.passphrases.get(info.role, `${info.role} key ${keyid.slice(0, 12)}…`),
    );
    process.stdout.write(await ctx.keystore.exportEncrypted(keyid));
    return;
  }
  process.stdout.write(publicKeyFile(info.key));
}

export async function keyImport(
  ctx: Context,
  file: string | undefined,
  options: { pkcs11Uri?: string; role?: string; gun?: string; module?: string } = {},
): Promise<void> {
  if (options.pkcs11Uri !== undefined) {
    if (file !== undefined) {
      throw new TufaError('INVALID_ARGUMENT', 'give a key file or --pkcs11-uri, not both');
    }
    const role = keyRole(options.role);
    const { tokensOf } = await import('../pkcs11.js');
    const found = await tokensOf(ctx).adopt(options.pkcs11Uri, options.module);
    const info = await ctx.keystore.storeReference({
      role,
      gun: options.gun,
      key: found.key,
      pkcs11: found.uri,
    });
    ctx.out.result(
      { keyid: info.keyid, role, gun: info.gun ?? null, location: found.uri },
      `imported ${role} key ${info.keyid} (${info.key.scheme}) on the token: ${found.uri}`,
    );
    return;
  }
  if (file === undefined) throw new TufaError('INVALID_ARGUMENT', 'give a key file or --pkcs11-uri URI');
  if (options.role !== undefined || options.module !== undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      '--role and --module are for --pkcs11-uri (a key file names its role)',
    );
  }
  const bytes = await readLocalFile(file, 16 * 1024, 'key file to import');
  // Checked whole before a passphrase is asked for: a wrong file is refused with its path.
  const role = keyRole(parsePrivateKeyFile(bytes, file).role);
  const passphrase = await ctx.passphrases.get(role, `the imported ${role} key`);
  const info = await ctx.keystore.importEncrypted(bytes, passphrase, file);
  ctx.out.result({ keyid: info.keyid, role: info.role }, `imported ${info.role} key ${info.keyid}`);
}
