/**
 * Collections in PostgreSQL, the one object the app, the pending updates and the server use. It
 * holds what the jobs share (the pool, the clock, the caches) and hands it to the job modules:
 * store/keys.ts (online keys), store/collection.ts (collection state, its lock, reads, row
 * inserts, deletion; store/documents.ts keeps the state parsed), store/publish.ts (atomic
 * updates), store/resign.ts (freshness) and store/changefeed.ts.
 */
import type { CryptoProvider, Key } from '@tufa/core';
import type pg from 'pg';
import type { AuditContext } from './audit.js';
import type { CachedFile, MetadataCache } from './cache.js';
import type { BodyHold } from './http.js';
import { type ChangeRecord, listChanges } from './store/changefeed.js';
import {
  collectionId,
  deleteCollection,
  readMetadata,
  type StoredFile,
  timestampExpired,
} from './store/collection.js';
import { DocumentCache } from './store/documents.js';
import { OnlineKeys, type OnlineRole, serverKeyidsOf } from './store/keys.js';
import { type PublishContext, type PublishCounts, type PublishResult, publish } from './store/publish.js';
import { dueForResign, resign } from './store/resign.js';
import { type LoadedState, loadState } from './store/state.js';
import type { OnlineKeyToken } from './token-keys.js';
import { DEFAULT_VERIFIER, UpdateVerifier, type VerifierOptions } from './verifier.js';

export type { ChangeRecord } from './store/changefeed.js';
export type { StoredFile } from './store/collection.js';
export type { OnlineRole } from './store/keys.js';
export type { PublishResult } from './store/publish.js';

export interface StoreOptions {
  pool: pg.Pool;
  /** Signs, verifies and hashes for this store: one provider per server process (`createNodeCrypto()`). */
  crypto: CryptoProvider;
  masterKey: Buffer;
  /** Online keys on a PKCS#11 token instead of encrypted in the database (`--online-keys`). */
  onlineKeyToken?: OnlineKeyToken | undefined;
  /** Lifetimes of server-signed metadata, ms. */
  timestampExpiry: number;
  snapshotExpiry: number;
  /** How long an update waits for a collection's lock before answering 409, ms. */
  lockTimeout?: number;
  clock?: () => number;
  /** Largest metadata document a collection may hold, bytes (default: unbounded here; the body limit applies). */
  maxMetadataSize?: number;
  /** Most delegated roles a collection may declare by name (default 1000). */
  maxDelegatedRoles?: number;
  /** Most succinct hash bins (TAP 15) a collection may declare (default 65,536: bit_length 16). */
  maxHashBins?: number;
  /** Served metadata in memory, invalidated by NOTIFY from every process (none: always the database). */
  cache?: MetadataCache;
  /** Where large updates are checked: a worker thread past a size (default DEFAULT_VERIFIER). */
  verifier?: VerifierOptions;
}

/** Succinct hash bins a collection may declare unless configured: `tufa init --hash-bins`'s largest. */
export const DEFAULT_MAX_HASH_BINS = 65_536;

export class Store {
  readonly pool: pg.Pool;
  readonly now: () => number;
  readonly crypto: CryptoProvider;
  private readonly ctx: PublishContext;
  private readonly keys: OnlineKeys;

  constructor(options: StoreOptions) {
    this.pool = options.pool;
    this.now = options.clock ?? Date.now;
    this.crypto = options.crypto;
    const lockTimeout = options.lockTimeout ?? 10_000;
    this.keys = new OnlineKeys({
      pool: options.pool,
      masterKey: options.masterKey,
      lockTimeout,
      crypto: options.crypto,
      token: options.onlineKeyToken,
    });
    this.ctx = {
      pool: options.pool,
      now: this.now,
      lockTimeout,
      documents: new DocumentCache(),
      cache: options.cache,
      keys: this.keys,
      crypto: options.crypto,
      timestampExpiry: options.timestampExpiry,
      snapshotExpiry: options.snapshotExpiry,
      maxMetadataSize: options.maxMetadataSize ?? Number.POSITIVE_INFINITY,
      maxDelegatedRoles: options.maxDelegatedRoles ?? 1000,
      maxHashBins: options.maxHashBins ?? DEFAULT_MAX_HASH_BINS,
      verifier: new UpdateVerifier(options.verifier ?? DEFAULT_VERIFIER),
      counts: { checkedInWorker: 0, snapshotsSpliced: 0, snapshotsWhole: 0 },
    };
  }

  /** What this process's publishes did: checks in the worker, snapshots spliced or made whole (ADR 0017 section 12). */
  get publishCounts(): Readonly<PublishCounts> {
    return { ...this.ctx.counts };
  }

  /** An update body's hold that also counts it among the large update bodies (UpdateVerifier.holdBody). */
  holdUpdateBody(hold: BodyHold): BodyHold {
    return this.ctx.verifier.holdBody(hold);
  }

  /** Stops the verification worker (an update it was checking is refused 503). */
  close(): Promise<void> {
    return this.ctx.verifier.close();
  }

  /** Records a check value on first start; refuses a master key that cannot read it later. */
  checkMasterKey(): Promise<void> {
    return this.keys.checkMasterKey();
  }

  /** The latest version of a role, or a given version (from memory when cached). */
  getMetadata(gun: string, role: string, version?: number): Promise<StoredFile | undefined> {
    return readMetadata(this.ctx, { gun, role, version });
  }

  /** A role's latest (or given) version when the memory cache holds it; never the database. */
  cachedMetadata(gun: string, role: string, version?: number): CachedFile | undefined {
    return this.ctx.cache?.get(gun, role, version);
  }

  /** Whether the latest timestamp of a collection has expired (a GET refreshes it first). */
  timestampExpired(gun: string): Promise<boolean> {
    return timestampExpired(this.ctx, gun);
  }

  /** The newest key of a role, created (with its collection row) when `create` and none exists. */
  getOnlineKey(
    gun: string,
    role: OnlineRole,
    create: boolean,
    audit?: AuditContext,
  ): Promise<Key | undefined> {
    return this.keys.newest(gun, role, { create, audit });
  }

  /** Creates the next key of a role: it signs once a root naming it is published. */
  rotateOnlineKey(gun: string, role: OnlineRole, audit?: AuditContext): Promise<Key> {
    return this.keys.rotate(gun, role, audit);
  }

  /** The id of the collection named `gun`, or undefined. */
  collectionId(client: pg.ClientBase, gun: string): Promise<string | undefined> {
    return collectionId(client, gun);
  }

  /** The key ids the server holds for timestamp and snapshot in collection `id`. */
  async serverKeyids(
    client: pg.ClientBase,
    id: string,
  ): Promise<{ timestamp: string[]; snapshot: string[] }> {
    return serverKeyidsOf(await this.keys.rows(client, id));
  }

  /** A collection's state in this transaction (pending updates check against it), loaded lazily. */
  loadState(client: pg.ClientBase, id: string): Promise<LoadedState> {
    return loadState(client, { id, documents: this.ctx.documents });
  }

  /**
   * One atomic update: validate the would-be state with core's rules, store the uploaded roles
   * exactly as uploaded, sign snapshot and timestamp, record the change; all or nothing.
   * Refusals are core's codes (TOO_LARGE, DELEGATION_LIMIT, ROLLBACK, CONFLICT, …).
   */
  publish(
    gun: string,
    uploads: ReadonlyMap<string, Uint8Array>,
    audit?: AuditContext,
  ): Promise<PublishResult> {
    return publish(this.ctx, { gun, uploads, audit });
  }

  /** Deletes exactly this GUN (metadata and keys); false when it did not exist. */
  deleteCollection(gun: string, audit?: AuditContext): Promise<boolean> {
    return deleteCollection(this.ctx, { gun, audit });
  }

  changes(options: { gun?: string | undefined; after: string; limit: number }): Promise<ChangeRecord[]> {
    return listChanges(this.pool, options);
  }

  /**
   * Collections whose latest timestamp or server-held snapshot has entered the re-sign window
   * (the last `fraction` of its lifetime), or expired.
   */
  dueForResign(fraction: number, limit = 100): Promise<string[]> {
    return dueForResign(this.ctx, { fraction, limit });
  }

  /**
   * Re-signs a collection's timestamp (and its server-held snapshot) if, under the collection's
   * lock and with fresh data, they are still due. `wait: false` skips a collection another
   * process holds. Returns the roles re-signed.
   */
  resign(gun: string, options: { fraction: number; wait: boolean }): Promise<OnlineRole[]> {
    return resign(this.ctx, { gun, ...options });
  }
}
