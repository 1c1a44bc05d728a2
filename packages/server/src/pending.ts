/**
 * Pending updates (threshold signing): proposals whose signatures do not meet every threshold
 * yet, stored apart from published metadata and never served to clients. Core's checkProposal
 * holds the rules; the moment a proposal meets every threshold it is published through the
 * store's ordinary atomic update (validateUpdate, new snapshot and timestamp, the changefeed).
 *
 * Routes (all need push access to the collection):
 *   POST   /v2/{gun}/_trust/pending/                 propose (the body of an update); ?expires_in=SECONDS
 *   GET    /v2/{gun}/_trust/pending/                 list, with signature status and changes
 *   GET    /v2/{gun}/_trust/pending/{id}             one, with its documents (base64 of the exact bytes)
 *   POST   /v2/{gun}/_trust/pending/{id}/signatures  add signatures: {"signatures": {"ROLE": [{keyid, sig}]}}
 *   DELETE /v2/{gun}/_trust/pending/{id}             drop
 */

import type { IncomingMessage } from 'node:http';
import type { ParsedUrlQuery } from 'node:querystring';
import {
  checkingProposal,
  describeProposal,
  mergeSignatures,
  type ProposalStatus,
  parseJson,
  proposalDocuments,
  type RoleChanges,
  signaturesFromJson,
  TufaError,
} from '@tufa/core';
import type pg from 'pg';
import type { AuditContext } from './audit.js';
import { transaction } from './db.js';
import { type BodyHold, HttpStatusError, parseUpdateBody, readBody, requireJson } from './http.js';
import type { LoadedState } from './store/state.js';
import type { Store } from './store.js';

/** How long a proposal waits for its signatures unless the proposer asks for less. */
export const DEFAULT_PENDING_EXPIRY = 7 * 24 * 3600 * 1000;
/** The longest a proposer may ask for. */
export const MAX_PENDING_EXPIRY = 90 * 24 * 3600 * 1000;
/** Most live proposals one collection may hold: bounds what a push-scoped caller can store. */
export const MAX_PENDING_PER_COLLECTION = 100;
const SIGNATURES_BODY = 256 * 1024;

export type PendingState = 'pending' | 'superseded' | 'invalid';

export interface PendingSummary {
  id: string;
  /** pending: waiting for signatures; superseded: a version it proposes was published meanwhile; invalid: it no longer fits the collection. */
  state: PendingState;
  created: string;
  updated: string;
  expires: string;
  roles: { role: string; version: number }[];
  /** Signature status (absent unless state is pending). */
  status?: ProposalStatus;
  /** Why it is invalid (a core error code and message). */
  error?: { code: string; message: string };
  changes: RoleChanges[];
}

interface Row {
  id: string;
  documents: Record<string, string>;
  created_at: Date;
  updated_at: Date;
  expires_at: Date;
}

function decodeDocuments(documents: Record<string, string>): Map<string, Uint8Array> {
  return new Map(
    Object.entries(documents).map(([role, b64]) => [role, new Uint8Array(Buffer.from(b64, 'base64'))]),
  );
}

function encodeDocuments(documents: ReadonlyMap<string, Uint8Array>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [role, bytes] of documents) out[role] = Buffer.from(bytes).toString('base64');
  return out;
}

export interface ProposeResult {
  id: string;
  published: boolean;
  versions?: Record<string, number>;
  status: ProposalStatus;
}

export class PendingStore {
  /** How long a proposal waits when its proposer does not say (ms). */
  readonly defaultExpiry: number;

  constructor(
    private readonly store: Store,
    options: { defaultExpiry?: number } = {},
  ) {
    this.defaultExpiry = Math.min(options.defaultExpiry ?? DEFAULT_PENDING_EXPIRY, MAX_PENDING_EXPIRY);
  }

  private async collection(client: pg.ClientBase, gun: string): Promise<string> {
    const id = await this.store.collectionId(client, gun);
    if (id === undefined)
      throw new TufaError('NOT_FOUND', `${gun}: no such collection`, { details: { gun } });
    return id;
  }

  private async context(
    client: pg.ClientBase,
    id: string,
  ): Promise<{
    loaded: LoadedState;
    versions: Record<string, number>;
    serverKeyids: { timestamp: string[]; snapshot: string[] };
  }> {
    const loaded = await this.store.loadState(client, id);
    return { loaded, versions: loaded.versions(), serverKeyids: await this.store.serverKeyids(client, id) };
  }

  private async purgeExpired(client: pg.ClientBase, id: string, now: number): Promise<void> {
    await client.query(
      'DELETE FROM pending_updates WHERE collection_id = $1 AND expires_at <= to_timestamp($2::double precision / 1000)',
      [id, now],
    );
  }

  /** Publishes a complete proposal through the ordinary atomic update; ROLLBACK/CONFLICT mean it lost a race. */
  private async publish(
    gun: string,
    documents: ReadonlyMap<string, Uint8Array>,
    audit: AuditContext | undefined,
  ): Promise<Record<string, number>> {
    return (await this.store.publish(gun, documents, audit)).versions;
  }

  /**
   * A new proposal (or more signatures for one with the same content). Published at once when it
   * already meets every threshold; otherwise stored for `expiresIn` ms.
   */
  async propose(
    gun: string,
    uploads: ReadonlyMap<string, Uint8Array>,
    options: { expiresIn?: number; audit?: AuditContext } = {},
  ): Promise<ProposeResult> {
    const expiresIn = options.expiresIn ?? this.defaultExpiry;
    return transaction(this.store.pool, async (client) => {
      const id = await this.collection(client, gun);
      const now = this.store.now();
      await this.purgeExpired(client, id, now);
      const { loaded, serverKeyids } = await this.context(client, id);
      const state = loaded.state;
      let documents = uploads;
      let status = await loaded.run(
        checkingProposal({ current: state, crypto: this.store.crypto, uploads, now, serverKeyids }),
      );
      const existing = await client.query<Row>(
        'SELECT * FROM pending_updates WHERE collection_id = $1 AND id = $2 FOR UPDATE',
        [id, status.id],
      );
      if (existing.rows[0] !== undefined) {
        // The same content proposed again: its signatures join those already collected.
        const held = decodeDocuments(existing.rows[0].documents);
        const merged = new Map<string, Uint8Array>();
        for (const [role, md] of proposalDocuments(uploads)) {
          merged.set(role, mergeSignatures(held.get(role)!, role, md.signatures));
        }
        documents = merged;
        status = await loaded.run(
          checkingProposal({
            current: state,
            crypto: this.store.crypto,
            uploads: documents,
            now,
            serverKeyids,
          }),
        );
      }
      if (status.complete) {
        const versions = await this.publish(gun, documents, options.audit);
        await client.query('DELETE FROM pending_updates WHERE collection_id = $1 AND id = $2', [
          id,
          status.id,
        ]);
        return { id: status.id, published: true, versions, status };
      }
      if (existing.rows[0] !== undefined) {
        await client.query(
          `UPDATE pending_updates SET documents = $3, updated_at = to_timestamp($4::double precision / 1000)
           WHERE collection_id = $1 AND id = $2`,
          [id, status.id, JSON.stringify(encodeDocuments(documents)), now],
        );
      } else {
        const count = await client.query<{ n: string }>(
          'SELECT count(*) AS n FROM pending_updates WHERE collection_id = $1',
          [id],
        );
        if (Number(count.rows[0]!.n) >= MAX_PENDING_PER_COLLECTION) {
          throw new HttpStatusError(
            409,
            'CONFLICT',
            `${gun}: ${MAX_PENDING_PER_COLLECTION} pending updates already; drop some first`,
            { limit: MAX_PENDING_PER_COLLECTION },
          );
        }
        await client.query(
          `INSERT INTO pending_updates (collection_id, id, documents, created_at, updated_at, expires_at)
           VALUES ($1, $2, $3, to_timestamp($4::double precision / 1000), to_timestamp($4::double precision / 1000),
                   to_timestamp($5::double precision / 1000))`,
          [id, status.id, JSON.stringify(encodeDocuments(documents)), now, now + expiresIn],
        );
      }
      return { id: status.id, published: false, status };
    });
  }

  private async summarize(
    row: Row,
    loaded: LoadedState,
    versions: Record<string, number>,
    now: number,
    serverKeyids: { timestamp: string[]; snapshot: string[] },
  ): Promise<PendingSummary> {
    const documents = decodeDocuments(row.documents);
    const state = loaded.state;
    // What the proposal changes is told against the current documents of the roles it carries.
    await loaded.load([...documents.keys()]);
    const roles: { role: string; version: number }[] = [];
    for (const [role, bytes] of documents) {
      const doc = parseJson(bytes, { source: role }) as { signed: { version: number } };
      roles.push({ role, version: doc.signed.version });
    }
    const base = {
      id: row.id,
      created: row.created_at.toISOString(),
      updated: row.updated_at.toISOString(),
      expires: row.expires_at.toISOString(),
      roles,
      changes: describeProposal(state, documents),
    };
    if (roles.some((r) => r.version <= (versions[r.role] ?? 0))) return { ...base, state: 'superseded' };
    try {
      return {
        ...base,
        state: 'pending',
        status: await loaded.run(
          checkingProposal({
            current: state,
            crypto: this.store.crypto,
            uploads: documents,
            now,
            serverKeyids,
          }),
        ),
      };
    } catch (err) {
      if (!(err instanceof TufaError)) throw err;
      return { ...base, state: 'invalid', error: { code: err.code, message: err.message } };
    }
  }

  /** `purge: false` (the status page, the metrics): expired ones are left out but not deleted. */
  async list(gun: string, options: { purge?: boolean } = {}): Promise<PendingSummary[]> {
    return transaction(this.store.pool, async (client) => {
      const id = await this.collection(client, gun);
      const now = this.store.now();
      if (options.purge !== false) await this.purgeExpired(client, id, now);
      const { loaded, versions, serverKeyids } = await this.context(client, id);
      const rows = await client.query<Row>(
        `SELECT * FROM pending_updates WHERE collection_id = $1
         AND expires_at > to_timestamp($2::double precision / 1000) ORDER BY created_at, id`,
        [id, now],
      );
      const out: PendingSummary[] = [];
      for (const row of rows.rows) out.push(await this.summarize(row, loaded, versions, now, serverKeyids));
      return out;
    });
  }

  async get(gun: string, proposal: string): Promise<PendingSummary & { documents: Record<string, string> }> {
    return transaction(this.store.pool, async (client) => {
      const id = await this.collection(client, gun);
      const now = this.store.now();
      await this.purgeExpired(client, id, now);
      const row = await this.row(client, id, gun, proposal, false);
      const { loaded, versions, serverKeyids } = await this.context(client, id);
      return {
        ...(await this.summarize(row, loaded, versions, now, serverKeyids)),
        documents: row.documents,
      };
    });
  }

  private async row(
    client: pg.ClientBase,
    id: string,
    gun: string,
    proposal: string,
    lock: boolean,
  ): Promise<Row> {
    const r = await client.query<Row>(
      `SELECT * FROM pending_updates WHERE collection_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`,
      [id, proposal],
    );
    const row = r.rows[0];
    if (row === undefined) {
      throw new TufaError(
        'NOT_FOUND',
        `${gun}: no pending update ${proposal} (published, dropped or expired)`,
        {
          details: { gun, id: proposal },
        },
      );
    }
    return row;
  }

  /**
   * Merges signatures into a proposal; every signature must verify and be by a key of its role.
   * When every threshold is met, publishes it in the same request and removes it.
   */
  async addSignatures(
    gun: string,
    proposal: string,
    body: Uint8Array,
    options: { audit?: AuditContext } = {},
  ): Promise<ProposeResult> {
    const signatures = signaturesFromJson(parseJson(body, { source: 'signatures' }));
    return transaction(this.store.pool, async (client) => {
      const id = await this.collection(client, gun);
      const now = this.store.now();
      await this.purgeExpired(client, id, now);
      const row = await this.row(client, id, gun, proposal, true);
      const { loaded, versions, serverKeyids } = await this.context(client, id);
      const documents = decodeDocuments(row.documents);
      for (const [role, doc] of documents) {
        const version = (parseJson(doc, { source: role }) as { signed: { version: number } }).signed.version;
        if (version <= (versions[role] ?? 0)) {
          throw new TufaError(
            'ROLLBACK',
            `${role}: version ${version} has been published meanwhile: this proposal is superseded`,
            {
              role,
              expected: (versions[role] ?? 0) + 1,
              found: version,
              details: { state: 'superseded' },
            },
          );
        }
      }
      for (const [role, list] of signatures) {
        const held = documents.get(role);
        if (held === undefined) {
          throw new TufaError('INVALID_ARGUMENT', `${role}: not a role of this pending update`, {
            role: role.slice(0, 300),
          });
        }
        documents.set(role, mergeSignatures(held, role, list));
      }
      const status = await loaded.run(
        checkingProposal({
          current: loaded.state,
          crypto: this.store.crypto,
          uploads: documents,
          now,
          serverKeyids,
        }),
      );
      if (status.id !== proposal) throw new TufaError('INTERNAL', 'a pending update changed its identity');
      if (status.complete) {
        const published = await this.publish(gun, documents, options.audit);
        await client.query('DELETE FROM pending_updates WHERE collection_id = $1 AND id = $2', [
          id,
          proposal,
        ]);
        return { id: proposal, published: true, versions: published, status };
      }
      await client.query(
        `UPDATE pending_updates SET documents = $3, updated_at = to_timestamp($4::double precision / 1000)
         WHERE collection_id = $1 AND id = $2`,
        [id, proposal, JSON.stringify(encodeDocuments(documents)), now],
      );
      return { id: proposal, published: false, status };
    });
  }

  async drop(gun: string, proposal: string): Promise<void> {
    await transaction(this.store.pool, async (client) => {
      const id = await this.collection(client, gun);
      const r = await client.query('DELETE FROM pending_updates WHERE collection_id = $1 AND id = $2', [
        id,
        proposal,
      ]);
      if (r.rowCount === 0) {
        throw new TufaError('NOT_FOUND', `${gun}: no pending update ${proposal}`, {
          details: { gun, id: proposal },
        });
      }
    });
  }
}

function expiresInParam(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'string' ||
    !/^\d{1,9}$/.test(value) ||
    Number(value) < 1 ||
    Number(value) * 1000 > MAX_PENDING_EXPIRY
  ) {
    throw new HttpStatusError(
      400,
      'INVALID_ARGUMENT',
      `expires_in is a number of seconds from 1 to ${MAX_PENDING_EXPIRY / 1000}`,
    );
  }
  return Number(value) * 1000;
}

/** The pending routes' answers (push access is checked before, by the app). */
export class PendingRoutes {
  constructor(
    private readonly pending: PendingStore,
    private readonly bodyLimit: number,
  ) {}

  /** POST …/_trust/pending/: 202 while signatures are missing, 200 when it was published at once. */
  async propose(
    gun: string,
    req: IncomingMessage,
    query: ParsedUrlQuery,
    audit: AuditContext | undefined,
    hold?: BodyHold,
  ): Promise<{ status: number; body: object }> {
    requireJson(req.headers);
    const expiresIn = expiresInParam(query.expires_in);
    const uploads = parseUpdateBody(await readBody(req, this.bodyLimit, hold));
    const result = await this.pending.propose(gun, uploads, {
      ...(expiresIn === undefined ? {} : { expiresIn }),
      ...(audit === undefined ? {} : { audit }),
    });
    return { status: result.published ? 200 : 202, body: { gun, ...result } };
  }

  async list(gun: string): Promise<{ body: object }> {
    return { body: { gun, pending: await this.pending.list(gun) } };
  }

  async sign(
    gun: string,
    id: string,
    req: IncomingMessage,
    audit: AuditContext | undefined,
    hold?: BodyHold,
  ): Promise<{ body: object }> {
    requireJson(req.headers);
    const result = await this.pending.addSignatures(
      gun,
      id,
      await readBody(req, Math.min(this.bodyLimit, SIGNATURES_BODY), hold),
      audit === undefined ? {} : { audit },
    );
    return { body: { gun, ...result } };
  }

  async drop(gun: string, id: string): Promise<{ body: object }> {
    await this.pending.drop(gun, id);
    return { body: { gun, dropped: id } };
  }

  async get(gun: string, id: string): Promise<{ body: object }> {
    return { body: { gun, ...(await this.pending.get(gun, id)) } };
  }
}
