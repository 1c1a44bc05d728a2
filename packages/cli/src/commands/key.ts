/** `tufa key generate | list | import | export`. */
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

export async function keyGenerate(
  ctx: Context,
  options: { role?: string; gun?: string; type?: string },
): Promise<void> {
  const role = keyRole(options.role);
  const type = keyType(options.type);
  const passphrase = await ctx.passphrases.get(role, `the new ${role} key`, true);
  const info = await ctx.keystore.generate({ role, gun: options.gun, passphrase, type });
  ctx.out.result(
    {
      keyid: info.keyid,
      role,
      gun: info.gun ?? null,
      keytype: info.key.keytype,
      scheme: info.key.scheme,
      public: JSON.parse(publicKeyFile(info.key)),
    },
    [
      `generated ${role} key ${info.keyid} (${info.key.scheme})`,
      `export its public key with: tufa key export ${info.keyid} > ${info.keyid.slice(0, 12)}.pub`,
    ],
  );
}

export async function keyList(ctx: Context): Promise<void> {
  const keys = await ctx.keystore.list();
  ctx.out.result(
    keys.map((k) => ({ keyid: k.keyid, role: k.role, gun: k.gun ?? null, created: k.created })),
    keys.length === 0
      ? [`no keys in ${ctx.keystore.dir}`]
      : keys.map((k) => `${k.keyid}  ${k.role.padEnd(10)}  ${k.gun ?? '-'}  ${k.created}`),
  );
}

export async function keyExport(ctx: Context, keyid: string, options: { private?: boolean }): Promise<void> {
  const info = await ctx.keystore.info(keyid);
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

export async function keyImport(ctx: Context, file: string): Promise<void> {
  const bytes = await readLocalFile(file, 16 * 1024, 'key file to import');
  // Checked whole before a passphrase is asked for: a wrong file is refused with its path.
  const role = keyRole(parsePrivateKeyFile(bytes, file).role);
  const passphrase = await ctx.passphrases.get(role, `the imported ${role} key`);
  const info = await ctx.keystore.importEncrypted(bytes, passphrase, file);
  ctx.out.result({ keyid: info.keyid, role: info.role }, `imported ${info.role} key ${info.keyid}`);
}
