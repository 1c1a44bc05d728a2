/**
 * The server's online keys (timestamp, snapshot) of each collection: created on first request,
 * rotated by adding a newer key, kept encrypted under the master key (onlinekeys.ts) and
 * decrypted into signers once per process; or, with `--online-keys pkcs11:…`, made and kept on a
 * PKCS#11 token (token-keys.ts), the row's private key then empty.
 */
import {
  type CryptoProvider,
  canonicalJson,
  ed25519Signer,
  generateEd25519Key,
  type Key,
  keyToJson,
  parseJson,
  type Signer,
  TufaError,
} from '@tufa/core';
import type pg from 'pg';
import { type AuditContext, recordAudit } from '../audit.js';
import { transaction } from '../db.js';
import {
  decryptSecret,
  encryptSecret,
  keyAad,
  MASTER_KEY_CHECK_AAD,
  MASTER_KEY_CHECK_TEXT,
} from '../onlinekeys.js';
import type { OnlineKeyToken } from '../token-keys.js';
import { lockCollection } from './collection.js';

export type OnlineRole = 'timestamp' | 'snapshot';

/** A key row: its private half still encrypted, or empty when the key is on a PKCS#11 token. */
export interface OnlineKeyRow {
  role: OnlineRole;
  keyid: string;
  public_key: string;
  private_key: Buffer;
}

/** The collection's signers by role and key id (one shared token key may sign both roles). */
export type OnlineSigners = Map<string, { role: OnlineRole; signer: Signer }>;

const signerSlot = (role: OnlineRole, keyid: string) => `${role}\u0000${keyid}`;

/** Signers kept at most: a process serving more collections decrypts again. */
const MAX_SIGNERS = 4096;

export class OnlineKeys {
  private readonly pool: pg.Pool;
  private readonly masterKey: Buffer;
  private readonly lockTimeout: number;
  private readonly crypto: CryptoProvider;
  /** Where new online keys are made, when not in the database: a PKCS#11 token. */
  private readonly token: OnlineKeyToken | undefined;
  /** Signers for online keys, by key id (decrypted once; key rows are immutable). */
  private readonly signerCache = new Map<string, Signer>();

  constructor(options: {
    pool: pg.Pool;
    masterKey: Buffer;
    lockTimeout: number;
    crypto: CryptoProvider;
    token?: OnlineKeyToken | undefined;
  }) {
    this.pool = options.pool;
    this.crypto = options.crypto;
    this.token = options.token;
    this.masterKey = options.masterKey;
    this.lockTimeout = options.lockTimeout;
  }

  /** Records a check value on first start; refuses a master key that cannot read it later. */
  async checkMasterKey(): Promise<void> {
    const row = await this.pool.query<{ value: Buffer }>(
      "SELECT value FROM settings WHERE name = 'master_key_check'",
    );
    if (row.rows[0] === undefined) {
      await this.pool.query(
        "INSERT INTO settings (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING",
        [encryptSecret(this.masterKey, MASTER_KEY_CHECK_TEXT, MASTER_KEY_CHECK_AAD)],
      );
      return this.checkMasterKey();
    }
    try {
      decryptSecret(this.masterKey, row.rows[0].value, MASTER_KEY_CHECK_AAD);
    } catch (cause) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        'the master key is not the one the online keys of this database were encrypted with',
        { cause },
      );
    }
  }

  /** The newest key of a role, created (with its collection row) when `create` and none exists. */
  async newest(
    gun: string,
    role: OnlineRole,
    options: { create: boolean; audit?: AuditContext | undefined },
  ): Promise<Key | undefined> {
    const existing = await this.pool.query<{ public_key: string }>(
      `SELECT k.public_key FROM online_keys k JOIN collections c ON c.id = k.collection_id
       WHERE c.gun = $1 AND k.role = $2 ORDER BY k.seq DESC LIMIT 1`,
      [gun, role],
    );
    if (existing.rows[0] !== undefined) return parseKey(existing.rows[0].public_key);
    if (!options.create) return undefined;
    return transaction(this.pool, async (client) => {
      const id = await lockCollection(client, { gun, create: true, lockTimeout: this.lockTimeout });
      const again = await client.query<{ public_key: string }>(
        'SELECT public_key FROM online_keys WHERE collection_id = $1 AND role = $2 ORDER BY seq DESC LIMIT 1',
        [id, role],
      );
      if (again.rows[0] !== undefined) return parseKey(again.rows[0].public_key);
      const key = await this.insert(client, id!, role, { shared: true });
      if (options.audit !== undefined) {
        await recordAudit(client, {
          ...options.audit,
          action: 'key.create',
          gun,
          roles: { [role]: 'created' },
          outcome: 'accepted',
        });
      }
      return key;
    });
  }

  /** Creates the next key of a role: it signs once a root naming it is published. */
  async rotate(gun: string, role: OnlineRole, audit?: AuditContext): Promise<Key> {
    return transaction(this.pool, async (client) => {
      const id = await lockCollection(client, { gun, create: true, lockTimeout: this.lockTimeout });
      const key = await this.insert(client, id!, role, { shared: false });
      if (audit !== undefined) {
        await recordAudit(client, {
          ...audit,
          action: 'key.rotate',
          gun,
          roles: { [role]: 'created' },
          outcome: 'accepted',
        });
      }
      return key;
    });
  }

  /** The collection's online keys, newest first (their private halves still encrypted). */
  async rows(client: pg.ClientBase, id: string): Promise<OnlineKeyRow[]> {
    const r = await client.query<OnlineKeyRow>(
      'SELECT role, keyid, public_key, private_key FROM online_keys WHERE collection_id = $1 ORDER BY seq DESC',
      [id],
    );
    return r.rows;
  }

  /** The key rows of collection `id` as signers. */
  signers(id: string, rows: readonly OnlineKeyRow[]): OnlineSigners {
    const out: OnlineSigners = new Map();
    for (const row of rows) {
      // Key rows never change (a rotation adds a key): a signer made once serves every publish.
      let signer = this.signerCache.get(row.keyid);
      if (signer === undefined) {
        signer = row.private_key.length === 0 ? this.tokenSigner(row) : this.decrypted(id, row);
        if (this.signerCache.size >= MAX_SIGNERS) this.signerCache.clear();
        this.signerCache.set(row.keyid, signer);
      }
      out.set(signerSlot(row.role, row.keyid), { role: row.role, signer });
    }
    return out;
  }

  private decrypted(id: string, row: OnlineKeyRow): Signer {
    const seed = decryptSecret(this.masterKey, row.private_key, keyAad(id, row.role, row.keyid));
    return ed25519Signer(this.crypto, new Uint8Array(seed), row.keyid);
  }

  private tokenSigner(row: OnlineKeyRow): Signer {
    if (this.token === undefined) {
      throw new TufaError(
        'INTERNAL',
        `the ${row.role} key ${row.keyid.slice(0, 12)}… is on a PKCS#11 token: start the server with --online-keys`,
        { role: row.role },
      );
    }
    return this.token.signer(row.keyid, parseKey(row.public_key));
  }

  /**
   * The next key of a role. On a token: made there (the row keeps no private half); with a
   * shared token key, that key, unless `shared` is false (a rotation needs a new key).
   */
  private async insert(
    client: pg.ClientBase,
    id: string,
    role: OnlineRole,
    options: { shared: boolean },
  ): Promise<Key> {
    if (this.token !== undefined) {
      const made =
        options.shared && this.token.shared !== undefined
          ? { key: this.token.shared.key, keyid: this.token.shared.keyid }
          : await this.token.generate(`tufa ${role} ${id}`);
      await client.query(
        'INSERT INTO online_keys (collection_id, role, keyid, public_key, private_key) VALUES ($1, $2, $3, $4, $5)',
        [id, role, made.keyid, canonicalJson(keyToJson(made.key)), Buffer.alloc(0)],
      );
      return made.key;
    }
    const pair = generateEd25519Key(this.crypto);
    const sealed = encryptSecret(this.masterKey, pair.privateKey, keyAad(id, role, pair.keyid));
    await client.query(
      'INSERT INTO online_keys (collection_id, role, keyid, public_key, private_key) VALUES ($1, $2, $3, $4, $5)',
      [id, role, pair.keyid, canonicalJson(keyToJson(pair.key)), sealed],
    );
    return pair.key;
  }
}

/** The key ids the server holds for timestamp and snapshot, from a collection's key rows. */
export function serverKeyidsOf(rows: readonly { role: string; keyid: string }[]): {
  timestamp: string[];
  snapshot: string[];
} {
  return {
    timestamp: rows.filter((k) => k.role === 'timestamp').map((k) => k.keyid),
    snapshot: rows.filter((k) => k.role === 'snapshot').map((k) => k.keyid),
  };
}

/** The server's signer for an online role among `keyids` (the keys root names for it). */
export function signerFor(signers: OnlineSigners, keyids: readonly string[], role: OnlineRole): Signer {
  for (const keyid of keyids) {
    const s = signers.get(signerSlot(role, keyid));
    if (s !== undefined && s.role === role) return s.signer;
  }
  throw new TufaError('INTERNAL', `the server holds no ${role} key that root names`, { role });
}

function parseKey(text: string): Key {
  const obj = parseJson(text) as { keytype: string; scheme: string; keyval: { public: string } };
  return { keytype: obj.keytype, scheme: obj.scheme, keyval: { public: obj.keyval.public }, extra: {} };
}
