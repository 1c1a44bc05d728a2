/**
 * Online keys on a PKCS#11 token (`--online-keys pkcs11:…`, issue 18): the timestamp and snapshot
 * keys are made and used on the token, and the database keeps only their public keys (a key row's
 * `private_key` is empty). A key made here gets its TUF key id as CKA_ID, so the key id alone finds
 * it again in every server process. `--online-keys-shared`: the one key pair the URI names signs
 * timestamp and snapshot of every collection (a rotation then makes the collection a key of its own).
 */
import {
  formatPkcs11Uri,
  type Key,
  type Pkcs11Uri,
  parsePkcs11Uri,
  type Signer,
  TufaError,
} from '@tufa/core';
import type { Pkcs11Tokens } from '@tufa/core/pkcs11';
import { readSecretFile } from './database-config.js';

export interface OnlineKeyToken {
  /** The token, as the URI names it (its key, for the shared mode, left out). */
  readonly uri: Pkcs11Uri;
  readonly modulePath: string;
  /** The shared key pair's signer, in the shared mode. */
  readonly shared: Signer | undefined;
  /** Makes a key pair on the token for a collection's role. */
  generate(label: string): Promise<{ key: Key; keyid: string }>;
  /** A signer for a key the token holds under CKA_ID = its key id (or the shared key). */
  signer(keyid: string, key: Key): Signer;
}

export interface OnlineKeyTokenConfig {
  onlineKeys: string;
  onlineKeysShared?: boolean | undefined;
  /** TUFA_ONLINE_KEYS_PIN's value. */
  pin?: string | undefined;
  pinFile?: string | undefined;
}

/** Checks the settings alone (before anything starts): the URI, its module, where the PIN comes from. */
export function checkOnlineKeyToken(config: OnlineKeyTokenConfig): { uri: Pkcs11Uri; modulePath: string } {
  const shared = config.onlineKeysShared === true;
  const uri = parsePkcs11Uri(config.onlineKeys, { token: !shared });
  if (uri.modulePath === undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      '--online-keys: name the PKCS#11 module in the URI: pkcs11:token=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so',
      { found: config.onlineKeys.slice(0, 200) },
    );
  }
  if (!shared && (uri.id !== undefined || uri.object !== undefined)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      '--online-keys names a key (id= or object=): add --online-keys-shared to sign every collection with it, or name the token alone to make one key per collection',
      { found: config.onlineKeys.slice(0, 200) },
    );
  }
  if ((config.pin ?? '') === '' && config.pinFile === undefined) {
    throw new TufaError(
      'PIN_REQUIRED',
      '--online-keys: the token PIN is needed: TUFA_ONLINE_KEYS_PIN_FILE (or --online-keys-pin-file), or TUFA_ONLINE_KEYS_PIN',
    );
  }
  return { uri, modulePath: uri.modulePath };
}

/** Opens the token and logs in at once: a wrong PIN stops the server before it serves anything. */
export async function openOnlineKeyToken(config: OnlineKeyTokenConfig): Promise<OnlineKeyToken> {
  const { uri, modulePath } = checkOnlineKeyToken(config);
  let pin = config.pin ?? '';
  if (pin === '') {
    const file = readSecretFile(config.pinFile!, 'online keys PIN file');
    // Whoever reads it can sign for every collection: refused, as the master key file is.
    if ((file.mode & 0o077) !== 0) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `online keys PIN file ${config.pinFile} can be read or written by group or others (mode 0${file.mode.toString(8)}): chmod 600 ${config.pinFile}`,
      );
    }
    if (file.text === '')
      throw new TufaError('PIN_REQUIRED', `online keys PIN file ${config.pinFile} is empty`);
    pin = file.text;
  }
  const { Pkcs11Tokens: Tokens } = await import('@tufa/core/pkcs11');
  const tokens: Pkcs11Tokens = new Tokens({ get: async () => pin });
  const { id: _id, object: _object, ...tokenOnly } = uri;
  await tokens.login(modulePath, tokenOnly);
  const shared = config.onlineKeysShared === true ? await tokens.signer({ uri, modulePath }) : undefined;
  const opened = new Map<string, Promise<Signer>>();
  return {
    uri: tokenOnly,
    modulePath,
    shared,
    async generate(label) {
      const made = await tokens.generate({ modulePath, token: uri.token, label, idFromKeyid: true });
      return { key: made.key, keyid: made.keyid };
    },
    signer(keyid, key) {
      if (shared !== undefined && shared.keyid === keyid) return shared;
      const at: Pkcs11Uri = { ...tokenOnly, id: Buffer.from(keyid, 'hex') };
      return {
        keyid,
        key,
        async sign(message) {
          let signer = opened.get(keyid);
          if (signer === undefined) {
            const opening = tokens.signer({ uri: at, modulePath, keyid });
            opened.set(keyid, opening);
            opening.catch(() => opened.delete(keyid));
            signer = opening;
          }
          return (await signer).sign(message);
        },
      };
    },
  };
}

/** How the token and the key are named in logs (never the PIN). */
export function describeOnlineKeyToken(token: OnlineKeyToken): string {
  return formatPkcs11Uri({ ...token.uri, modulePath: token.modulePath });
}
