/**
 * A collection's state as an update needs it, loaded lazily: root, targets, snapshot, timestamp
 * and every stored role that delegates are parsed (through the document cache); every other
 * delegated role is an entry (version, length, sha256) until an update asks for its document
 * (core's RoleRequest). The entries are the latest server-signed snapshot's: it lists every
 * targets role as stored, in the shape the server writes; otherwise they are read from the rows.
 * A publish into one of 16,384 hash bins reads no other bin, nor a row per bin.
 */
import {
  type CollectionState,
  parseSignedEnvelope,
  type Root,
  type Snapshot,
  type StoredRole,
  type StoredRoleEntry,
  type Targets,
  type Timestamp,
  type UpdateSteps,
} from '@tufa/core';
import type pg from 'pg';
import { prepared } from '../db.js';
import { LATEST_ROLES_CTE } from './collection.js';
import { type DocumentCache, TOP_LEVEL_ROLES } from './documents.js';
import { IndexedEntries, running, SnapshotEntries, StoredRoles } from './stored-roles.js';

/** The parsed latest version of the roles an update reads, and every role's entry. */
export interface LoadedState {
  state: CollectionState;
  timestamp: StoredRole<Timestamp> | undefined;
  /** The latest version of every role (a new record at each call: one entry per bin). */
  versions(): Record<string, number>;
  /** The latest version of one role. */
  version(role: string): number | undefined;
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
  server_signed: boolean;
}

const ROW_COLUMNS =
  'm.role, m.version, m.sha256, octet_length(m.data) AS length, m.delegates, m.server_signed';

/**
 * The latest rows of collection $1 an update parses: root, targets, snapshot, timestamp, and the
 * delegated roles whose latest document delegates (found through the partial index on
 * `delegates`, never by visiting every role).
 */
export const PARSED_ROWS_CTE = `WITH top AS (
    SELECT l.* FROM (VALUES ('root'), ('targets'), ('snapshot'), ('timestamp')) AS r (role)
    CROSS JOIN LATERAL (SELECT ${ROW_COLUMNS} FROM metadata m
                        WHERE m.collection_id = $1 AND m.role = r.role ORDER BY m.version DESC LIMIT 1) l
  ),
  delegating AS (
    SELECT l.* FROM (SELECT DISTINCT role FROM metadata
                     WHERE collection_id = $1 AND delegates AND role NOT IN ('root', 'targets', 'snapshot', 'timestamp')) r
    CROSS JOIN LATERAL (SELECT ${ROW_COLUMNS} FROM metadata m
                        WHERE m.collection_id = $1 AND m.role = r.role ORDER BY m.version DESC LIMIT 1) l
    WHERE l.delegates
  ),
  parsed AS (SELECT * FROM top UNION ALL SELECT * FROM delegating)`;

/** The latest row of every role of collection $1, without its document: when no snapshot lists them. */
export const EVERY_ROW = `${LATEST_ROLES_CTE}
  SELECT l.role, l.version, l.sha256, l.length, l.delegates, m.server_signed FROM latest l
  JOIN metadata m ON m.collection_id = $1 AND m.role = l.role AND m.version = l.version`;

/** The state of a collection in this transaction (see stateFromRows). */
export async function loadState(
  client: pg.ClientBase,
  options: { id: string; documents: DocumentCache },
): Promise<LoadedState> {
  const parsed = await client.query<StateRow>(
    prepared('parsed_rows', `${PARSED_ROWS_CTE} SELECT * FROM parsed`, [options.id]),
  );
  return stateFromRows(client, { ...options, parsed: parsed.rows });
}

/** The stored bytes and digest of these (role, version) rows of collection `id`, in one query. */
export async function fetchDocuments(
  client: pg.ClientBase,
  id: string,
  rows: readonly { role: string; version: number }[],
): Promise<{ role: string; data: Buffer; sha256: string }[]> {
  if (rows.length === 0) return [];
  const fetched = await client.query<{ role: string; data: Buffer; sha256: string }>(
    'SELECT role, data, sha256 FROM metadata WHERE collection_id = $1 AND (role, version) IN (SELECT * FROM unnest($2::text[], $3::int[]))',
    [id, rows.map((row) => row.role), rows.map((row) => row.version)],
  );
  return fetched.rows;
}

/** Parses the documents of these rows, straight from the database (no cache). */
async function fetchParsed(
  client: pg.ClientBase,
  id: string,
  rows: readonly { role: string; version: number; sha256?: string }[],
): Promise<Map<string, StoredRole>> {
  const out = new Map<string, StoredRole>();
  for (const row of await fetchDocuments(client, id, rows)) {
    const type = (['root', 'snapshot', 'timestamp'] as const).find((t) => t === row.role) ?? 'targets';
    out.set(
      row.role,
      parseSignedEnvelope(type, new Uint8Array(row.data), {
        role: row.role,
        sha256: row.sha256,
        // A server-written snapshot by one scan: its index kept for the next splice (ADR 0017 section 12).
        snapshotOnDemand: true,
      }),
    );
  }
  return out;
}

/** Parses (or finds parsed, by digest) the documents of these rows. */
async function parsedRows(
  client: pg.ClientBase,
  options: { id: string; rows: readonly StateRow[]; documents: DocumentCache },
): Promise<Map<string, StoredRole>> {
  const { id, rows, documents } = options;
  const parsed = new Map<string, StoredRole>();
  const missing: StateRow[] = [];
  for (const row of rows) {
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
  return parsed;
}

/**
 * The state from the latest rows of the roles an update parses (PARSED_ROWS_CTE): those parsed,
 * every other delegated role an entry of the latest server-signed snapshot (or of its row).
 */
export async function stateFromRows(
  client: pg.ClientBase,
  options: { id: string; parsed: readonly StateRow[]; documents: DocumentCache },
): Promise<LoadedState> {
  const { id } = options;
  const parsed = await parsedRows(client, { ...options, rows: options.parsed });
  const snapshotRow = options.parsed.find((row) => row.role === 'snapshot');
  const snapshot = parsed.get('snapshot') as StoredRole<Snapshot> | undefined;
  const fromSnapshot =
    snapshotRow?.server_signed === true
      ? (IndexedEntries.of(snapshot!) ?? SnapshotEntries.of(snapshot!.metadata.signed))
      : undefined;
  const versions: Record<string, number> = {};
  for (const row of options.parsed) versions[row.role] = row.version;
  let entries: ReadonlyMap<string, StoredRoleEntry> | undefined = fromSnapshot;
  if (entries === undefined) {
    // A client-signed snapshot may list versions only: every role's row instead.
    const every = await client.query<StateRow>(prepared('every_row', EVERY_ROW, [id]));
    const fromRows = new Map<string, StoredRoleEntry>();
    const delegating: StateRow[] = [];
    for (const row of every.rows) {
      versions[row.role] = row.version;
      if (TOP_LEVEL_ROLES.has(row.role)) continue;
      fromRows.set(row.role, { version: row.version, length: row.length, sha256: row.sha256 });
      if (row.delegates !== false && !parsed.has(row.role)) delegating.push(row);
    }
    for (const [role, stored] of await parsedRows(client, { ...options, rows: delegating })) {
      parsed.set(role, stored);
    }
    entries = fromRows;
  }
  const roles = new StoredRoles(entries, (rows) => fetchParsed(client, id, rows));
  for (const [role, stored] of parsed) {
    if (!TOP_LEVEL_ROLES.has(role)) roles.delegators.set(role, stored as StoredRole<Targets>);
  }
  return {
    state: {
      root: parsed.get('root') as StoredRole<Root> | undefined,
      targets: parsed.get('targets') as StoredRole<Targets> | undefined,
      snapshot,
      delegated: roles,
    },
    timestamp: parsed.get('timestamp') as StoredRole<Timestamp> | undefined,
    versions: () => {
      const out = { ...versions };
      fromSnapshot?.versionsInto(out);
      return out;
    },
    version: (role) => versions[role] ?? entries.get(role)?.version,
    load: (names) => roles.load(names),
    run: (steps) => running(steps, roles),
  };
}
