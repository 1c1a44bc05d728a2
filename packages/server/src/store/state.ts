/**
 * A collection's state as an update needs it, loaded lazily: root, targets, snapshot, timestamp
 * and every stored role that delegates are parsed (through the document cache); every other
 * delegated role is its row's entry (version, length, sha256) until an update asks for its
 * document (core's RoleRequest). A publish into one of 16,384 hash bins parses none of the others.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type CollectionState,
  parseSignedEnvelope,
  type Root,
  type Snapshot,
  type StoredDelegatedRoles,
  type StoredRole,
  type StoredRoleEntry,
  type Targets,
  type Timestamp,
  type UpdateSteps,
} from '@tufa/core';
import type pg from 'pg';
import { LATEST_ROLES_CTE } from './collection.js';
import { type DocumentCache, TOP_LEVEL_ROLES } from './documents.js';

/** The parsed latest version of the roles an update reads, and every role's entry. */
export interface LoadedState {
  state: CollectionState;
  timestamp: StoredRole<Timestamp> | undefined;
  versions: Record<string, number>;
  /** Makes these stored roles' documents available to `state` (until the next load). */
  load(names: readonly string[]): Promise<void>;
  /** Runs an update's (or a proposal's) steps against `state`, loading what they ask for. */
  run<T>(steps: UpdateSteps<T>): Promise<T>;
}

/** The latest row of a role as the state needs it: no document bytes. */
export interface StateRow {
  role: string;
  version: number;
  sha256: string;
  length: number;
  /** Whether its document has delegations; null (a row no migration could tell): taken as true. */
  delegates: boolean | null;
}

/** The latest row of each role of collection $1, without its document. */
export const STATE_ROWS = `${LATEST_ROLES_CTE} SELECT role, version, sha256, length, delegates FROM latest`;

/** The state of a collection in this transaction (see stateFromRows). */
export async function loadState(
  client: pg.ClientBase,
  options: { id: string; documents: DocumentCache },
): Promise<LoadedState> {
  const latest = await client.query<StateRow>(STATE_ROWS, [options.id]);
  return stateFromRows(client, { ...options, latest: latest.rows });
}

/** The delegated roles of one collection in one transaction: entries for all, documents on request. */
class StoredRoles implements StoredDelegatedRoles {
  readonly entries = new Map<string, StoredRoleEntry>();
  /** The roles that delegate: held for the whole update. */
  readonly delegators = new Map<string, StoredRole<Targets>>();
  /** The latest request's documents: dropped at the next, so that checking every bin again stays bounded. */
  private requested = new Map<string, StoredRole<Targets>>();

  constructor(
    private readonly client: pg.ClientBase,
    private readonly id: string,
  ) {}

  document(name: string): StoredRole<Targets> | undefined {
    return this.delegators.get(name) ?? this.requested.get(name);
  }

  /** Parses the stored documents of `names` (never kept past the next load). */
  async load(names: readonly string[]): Promise<void> {
    this.requested = new Map();
    const rows = names.filter((name) => this.entries.has(name) && !this.delegators.has(name));
    for (const [role, stored] of await fetchParsed(
      this.client,
      this.id,
      rows.map((role) => ({ role, ...this.entries.get(role)! })),
    )) {
      this.requested.set(role, stored as StoredRole<Targets>);
    }
  }
}

/** Parses the documents of these rows, straight from the database (no cache). */
async function fetchParsed(
  client: pg.ClientBase,
  id: string,
  rows: readonly { role: string; version: number; sha256: string }[],
): Promise<Map<string, StoredRole>> {
  const out = new Map<string, StoredRole>();
  if (rows.length === 0) return out;
  const fetched = await client.query<{ role: string; data: Buffer; sha256: string }>(
    'SELECT role, data, sha256 FROM metadata WHERE collection_id = $1 AND (role, version) IN (SELECT * FROM unnest($2::text[], $3::int[]))',
    [id, rows.map((row) => row.role), rows.map((row) => row.version)],
  );
  for (const row of fetched.rows) {
    const type = (['root', 'snapshot', 'timestamp'] as const).find((t) => t === row.role) ?? 'targets';
    out.set(
      row.role,
      parseSignedEnvelope(type, new Uint8Array(row.data), { role: row.role, sha256: row.sha256 }),
    );
  }
  return out;
}

/**
 * The state from the latest row of each role: the top-level roles and the delegating ones parsed
 * (documents parsed before are reused by digest), the others left as entries.
 */
export async function stateFromRows(
  client: pg.ClientBase,
  options: { id: string; latest: readonly StateRow[]; documents: DocumentCache },
): Promise<LoadedState> {
  const { id, latest, documents } = options;
  const roles = new StoredRoles(client, id);
  const parsed = new Map<string, StoredRole>();
  const missing: StateRow[] = [];
  const versions: Record<string, number> = {};
  for (const row of latest) {
    versions[row.role] = row.version;
    const top = TOP_LEVEL_ROLES.has(row.role);
    if (!top) {
      roles.entries.set(row.role, {
        version: row.version,
        length: row.length,
        sha256: row.sha256,
        delegates: row.delegates !== false,
      });
    }
    if (!top && row.delegates === false) continue;
    const hit = documents.get(id, row.role, row.sha256);
    if (hit !== undefined) parsed.set(row.role, hit);
    else missing.push(row);
  }
  // Parsing is a pure function of the bytes: a document parsed once (by its digest) is reused.
  const digests = new Map(missing.map((row) => [row.role, row.sha256]));
  for (const [role, stored] of await fetchParsed(client, id, missing)) {
    documents.remember(id, role, digests.get(role)!, stored);
    parsed.set(role, stored);
  }
  for (const [role, stored] of parsed) {
    if (!TOP_LEVEL_ROLES.has(role)) roles.delegators.set(role, stored as StoredRole<Targets>);
  }
  return {
    state: {
      root: parsed.get('root') as StoredRole<Root> | undefined,
      targets: parsed.get('targets') as StoredRole<Targets> | undefined,
      snapshot: parsed.get('snapshot') as StoredRole<Snapshot> | undefined,
      delegated: roles,
    },
    timestamp: parsed.get('timestamp') as StoredRole<Timestamp> | undefined,
    versions,
    load: (names) => roles.load(names),
    run: (steps) => running(steps, roles),
  };
}

/**
 * Runs an update's (or a proposal's) steps to their result, loading the stored documents they ask
 * for, and letting other work run after each step: seconds of signature verification must not
 * stall the reads served beside them.
 */
async function running<T>(steps: UpdateSteps<T>, roles: StoredRoles): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (typeof step.value === 'string') await nextTurn();
    else await roles.load(step.value.load);
  }
}
