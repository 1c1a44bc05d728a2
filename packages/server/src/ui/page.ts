/**
 * The read-only status page at /ui/: the static page (ui/assets, served with a strict
 * Content-Security-Policy) and the JSON it reads, built from the same stored metadata the clients
 * read. It signs nothing and changes nothing; every answer about a collection needs pull access.
 *
 *   GET /ui/                          the page (no data in it)
 *   GET /ui/{app.js,style.css}        its script and style
 *   GET /ui/api/collections?q=&page=  collections the caller may pull, nearest expiry first
 *   GET /ui/api/collection?gun=       one collection: roles, keys, delegations, pending updates
 *   GET /ui/api/targets?gun=&q=&page= its targets (tags) with digests, searched and paged
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ParsedUrlQuery } from 'node:querystring';
import {
  checkGun,
  type DelegatedRole,
  type Delegations,
  isSnapshotOnline,
  type Key,
  type StoredDelegatedRoles,
  type StoredRole,
  succinctBinCount,
  succinctBinIndexOf,
  type Targets,
  TufaError,
} from '@tufa/core';
import { HttpStatusError } from '../http.js';
import { type PendingOverview, roleExpiries, SharedExpiries } from '../overview.js';
import type { PendingSummary } from '../pending.js';
import { etagMatches } from '../responder.js';
import type { LoadedState } from '../store/state.js';
import type { Store } from '../store.js';
import { type Asset, loadAssets } from './assets.js';

/** What the page may know of its caller: the same decisions as a metadata read. */
export interface Viewer {
  /** Refuses (401) a caller who may pull nothing: anonymous, where pulls need a token. */
  admit(): Promise<void>;
  mayPull(gun: string): Promise<boolean>;
  /** 401 or 403 as a read of `gun` would be. */
  requirePull(gun: string): Promise<void>;
  /** Whether the caller may push `gun`: the pending list (GET …/pending/) is a writer's. */
  mayPush(gun: string): Promise<boolean>;
}

export interface UiReply {
  status?: number;
  headers: Record<string, string>;
  body: Buffer | string | object | undefined;
}

/** How near an expiry is, as the page colours it. */
export type ExpiryState = 'expired' | 'week' | 'month' | 'fine';

const DAY = 86_400_000;

/** A role the server signs (timestamp, a server-held snapshot) is re-signed in time: only its expiry is news. */
export function expiryState(expiresAt: number, now: number, serverSigned = false): ExpiryState {
  if (expiresAt <= now) return 'expired';
  if (serverSigned) return 'fine';
  if (expiresAt - now <= 7 * DAY) return 'week';
  if (expiresAt - now <= 30 * DAY) return 'month';
  return 'fine';
}

/** No script, style, image, frame or connection but this server's own; no inline anything. */
export const UI_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Sent with every answer under /ui/: the page's files, its JSON, and refusals, redirects and 404s. */
export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': UI_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

const COLLECTIONS_PAGE = 50;
const TARGETS_PAGE = 50;
/** Roles per collection the list and the timeline show besides the top-level four. */
const LIST_DELEGATED_ROLES = 8;
/** Nodes of a delegation tree shown (a tree can hold --max-delegated-roles roles). */
const TREE_NODES = 500;
/** Paths or hash prefixes shown per delegation. */
const PATHS_SHOWN = 20;
const MAX_QUERY = 256;

function one(query: ParsedUrlQuery, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HttpStatusError(400, 'INVALID_ARGUMENT', `${name} is given once`);
  if (value.length > MAX_QUERY) {
    throw new HttpStatusError(400, 'INVALID_ARGUMENT', `${name} is at most ${MAX_QUERY} characters`);
  }
  return value;
}

function pageParam(query: ParsedUrlQuery): number {
  const text = one(query, 'page');
  if (text === undefined) return 1;
  if (!/^[1-9]\d{0,6}$/.test(text)) {
    throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'page is a positive integer');
  }
  return Number(text);
}

function gunParam(query: ParsedUrlQuery): string {
  const gun = one(query, 'gun');
  if (gun === undefined) throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'gun is required');
  return checkGun(gun);
}

interface KeyView {
  keyid: string;
  keytype: string;
  scheme: string;
}

function keysOf(keyids: readonly string[], keys: Readonly<Record<string, Key>>): KeyView[] {
  return keyids.map((keyid) => {
    const key = Object.hasOwn(keys, keyid) ? keys[keyid] : undefined;
    return { keyid, keytype: key?.keytype ?? '?', scheme: key?.scheme ?? '?' };
  });
}

function expiryView(
  metadata: { signed: { version: number; expires: string; expiresAt: number } },
  now: number,
  serverSigned = false,
) {
  const s = metadata.signed;
  return {
    version: s.version,
    expires: s.expires,
    state: expiryState(s.expiresAt, now, serverSigned),
    serverSigned,
  };
}

function listed(values: readonly string[] | undefined): { shown: string[]; total: number } | undefined {
  return values === undefined ? undefined : { shown: values.slice(0, PATHS_SHOWN), total: values.length };
}

interface TreeNode {
  name: string;
  threshold: number;
  keys: KeyView[];
  terminating: boolean;
  paths?: { shown: string[]; total: number } | undefined;
  pathHashPrefixes?: { shown: string[]; total: number } | undefined;
  stored?: { version: number; expires: string; state: ExpiryState } | undefined;
  /** TAP 15 hash bins, one node for all of them. */
  bins?: {
    namePrefix: string;
    bitLength: number;
    count: number;
    published: number;
    versions?: [number, number] | undefined;
    nearest?: { role: string; expires: string; state: ExpiryState } | undefined;
  };
  children: TreeNode[];
  /** Delegations below this node that are not shown (cycle, or the node budget spent). */
  cut?: number;
}

/**
 * Every delegated role parsed, in batches: the page shows them all, where the store's state parses
 * only the roles an update reads (the rest are entries until asked for).
 */
export async function everyDelegatedRole(
  loaded: LoadedState,
): Promise<ReadonlyMap<string, StoredRole<Targets>>> {
  const delegated = loaded.state.delegated;
  if (delegated instanceof Map) return delegated;
  const stored = delegated as StoredDelegatedRoles;
  const names = [...stored.entries.keys()];
  const out = new Map<string, StoredRole<Targets>>();
  for (let i = 0; i < names.length; i += 256) {
    const batch = names.slice(i, i + 256);
    await loaded.load(batch);
    for (const name of batch) {
      const document = stored.document(name);
      if (document !== undefined) out.set(name, document);
    }
  }
  return out;
}

/** The parts of a collection's parsed state the page shows. */
export interface Loaded {
  targets: StoredRole<Targets> | undefined;
  delegated: ReadonlyMap<string, StoredRole<Targets>>;
}

/** The delegation tree under `delegations`, bounded by TREE_NODES; a role met twice on a path is cut. */
function tree(loaded: Loaded, delegations: Delegations | undefined, now: number): TreeNode[] {
  let budget = TREE_NODES;
  const walk = (d: Delegations | undefined, above: ReadonlySet<string>): TreeNode[] => {
    if (d === undefined) return [];
    const nodes: TreeNode[] = [];
    const succinct = d.succinctRoles;
    if (succinct !== undefined) {
      budget--;
      let published = 0;
      let low = Number.POSITIVE_INFINITY;
      let high = 0;
      let nearest: { role: string; at: number; expires: string } | undefined;
      for (const [name, stored] of loaded.delegated) {
        if (succinctBinIndexOf(succinct, name) === undefined) continue;
        published++;
        const s = stored.metadata.signed;
        low = Math.min(low, s.version);
        high = Math.max(high, s.version);
        if (nearest === undefined || s.expiresAt < nearest.at) {
          nearest = { role: name, at: s.expiresAt, expires: s.expires };
        }
      }
      nodes.push({
        name: `${succinct.namePrefix}-*`,
        threshold: succinct.threshold,
        keys: keysOf(succinct.keyids, d.keys),
        terminating: true,
        bins: {
          namePrefix: succinct.namePrefix,
          bitLength: succinct.bitLength,
          count: succinctBinCount(succinct),
          published,
          versions: published === 0 ? undefined : [low, high],
          nearest:
            nearest === undefined
              ? undefined
              : { role: nearest.role, expires: nearest.expires, state: expiryState(nearest.at, now) },
        },
        children: [],
      });
    }
    for (const role of d.roles) {
      if (budget <= 0) {
        nodes.push(cutNode(role, d, d.roles.length - nodes.length));
        break;
      }
      budget--;
      const stored = loaded.delegated.get(role.name);
      const node: TreeNode = {
        name: role.name,
        threshold: role.threshold,
        keys: keysOf(role.keyids, d.keys),
        terminating: role.terminating,
        paths: listed(role.paths),
        pathHashPrefixes: listed(role.pathHashPrefixes),
        stored: stored === undefined ? undefined : expiryView(stored.metadata, now),
        children: [],
      };
      const below = stored?.metadata.signed.delegations;
      if (above.has(role.name)) node.cut = below === undefined ? 0 : below.roles.length;
      else node.children = walk(below, new Set([...above, role.name]));
      nodes.push(node);
    }
    return nodes;
  };
  return walk(delegations, new Set(['targets']));
}

function cutNode(role: DelegatedRole, d: Delegations, left: number): TreeNode {
  return {
    name: role.name,
    threshold: role.threshold,
    keys: keysOf(role.keyids, d.keys),
    terminating: role.terminating,
    children: [],
    cut: left,
  };
}

/** Each delegated role's delegator (the first that names it) and its entry there. */
function delegators(
  loaded: Loaded,
): Map<string, { by: string; role: DelegatedRole; keys: Delegations['keys'] }> {
  const out = new Map<string, { by: string; role: DelegatedRole; keys: Delegations['keys'] }>();
  const visit = (by: string, d: Delegations | undefined) => {
    for (const role of d?.roles ?? []) {
      if (!out.has(role.name)) out.set(role.name, { by, role, keys: d!.keys });
    }
  };
  visit('targets', loaded.targets?.metadata.signed.delegations);
  for (const [name, stored] of loaded.delegated) visit(name, stored.metadata.signed.delegations);
  return out;
}

function pendingView(summaries: readonly PendingSummary[]) {
  return summaries.map((s) => ({
    id: s.id,
    state: s.state,
    created: s.created,
    expires: s.expires,
    roles: s.roles,
    error: s.error,
    changes: s.changes,
    status:
      s.status === undefined
        ? undefined
        : {
            needed: s.status.needed,
            roles: s.status.roles.map((r) => ({
              role: r.role,
              version: r.version,
              complete: r.complete,
              oneOf: r.oneOf === true,
              kept: r.kept === true,
              thresholds: r.thresholds.map((t) => ({
                by: t.by,
                threshold: t.threshold,
                signed: t.signed,
                missing: t.missing,
                needed: t.needed,
              })),
            })),
          },
  }));
}

/** Collections whose parsed delegated roles the page keeps between views. */
const HELD_COLLECTIONS = 4;

export class StatusPage {
  private readonly assets: ReadonlyMap<string, Asset> = loadAssets();
  private readonly expiries: SharedExpiries;
  private readonly targetIndex = new TargetIndex();
  /** Every delegated role of the collections viewed last, by collection and snapshot version (a few). */
  private readonly delegatedHeld = new Map<
    string,
    { at: string; delegated: ReadonlyMap<string, StoredRole<Targets>> }
  >();

  constructor(
    private readonly options: { store: Store; pending: PendingOverview; expiries?: SharedExpiries },
  ) {
    this.expiries = options.expiries ?? new SharedExpiries(options.store.pool, options.store.now);
  }

  /** The answer to GET `/ui/{path}` (`path` undefined: `/ui` itself). */
  async answer(
    path: string | undefined,
    query: ParsedUrlQuery,
    headers: IncomingHttpHeaders,
    viewer: Viewer,
  ): Promise<UiReply> {
    if (path === undefined) return { status: 308, headers: { Location: '/ui/' }, body: undefined };
    const asset = this.assets.get(path === '' ? 'index.html' : path);
    if (asset !== undefined) {
      const common = {
        ...UI_SECURITY_HEADERS,
        'Content-Type': asset.type,
        'Cache-Control': 'no-cache',
        ETag: asset.etag,
      };
      if (etagMatches(headers['if-none-match'], asset.etag))
        return { status: 304, headers: common, body: undefined };
      return { headers: common, body: asset.bytes };
    }
    const api: Record<string, () => Promise<object>> = {
      'api/collections': () => this.collections(query, viewer),
      'api/collection': () => this.collection(query, viewer),
      'api/targets': () => this.targets(query, viewer),
    };
    const handler = Object.hasOwn(api, path) ? api[path] : undefined;
    if (handler === undefined) throw new TufaError('NOT_FOUND', `no such page: /ui/${path.slice(0, 200)}`);
    return { headers: { ...UI_SECURITY_HEADERS, 'Cache-Control': 'no-store' }, body: await handler() };
  }

  private async collections(query: ParsedUrlQuery, viewer: Viewer): Promise<object> {
    await viewer.admit();
    const { store } = this.options;
    const search = (one(query, 'q') ?? '').toLowerCase();
    const page = pageParam(query);
    const now = store.now();
    const counts: Record<ExpiryState, number> = { expired: 0, week: 0, month: 0, fine: 0 };
    const visible = [];
    for (const c of await this.expiries.get()) {
      if (search !== '' && !c.gun.toLowerCase().includes(search)) continue;
      if (!(await viewer.mayPull(c.gun))) continue;
      counts[expiryState(c.nearest, now)]++;
      visible.push(c);
    }
    const shown = visible.slice((page - 1) * COLLECTIONS_PAGE, page * COLLECTIONS_PAGE);
    const roles = await roleExpiries(
      store.pool,
      shown.map((c) => c.gun),
      LIST_DELEGATED_ROLES,
    );
    return {
      now: new Date(now).toISOString(),
      total: visible.length,
      page,
      pageSize: COLLECTIONS_PAGE,
      counts,
      collections: shown.map((c) => ({
        gun: c.gun,
        nearest: Number.isFinite(c.nearest) ? new Date(c.nearest).toISOString() : null,
        state: expiryState(c.nearest, now),
        roleCount: c.roleCount,
        roles: (roles.get(c.gun) ?? []).map((r) => ({
          role: r.role,
          version: r.version,
          expires: new Date(r.expiresAt).toISOString(),
          state: expiryState(r.expiresAt, now, r.serverSigned),
          serverSigned: r.serverSigned,
        })),
      })),
    };
  }

  /** The collection's parsed latest state (core's parse, cached by digest in the store). */
  private async load(gun: string) {
    const { store } = this.options;
    const client = await store.pool.connect();
    try {
      const id = await store.collectionId(client, gun);
      const loaded = id === undefined ? undefined : await store.loadState(client, id);
      if (id === undefined || loaded?.state.root === undefined) {
        throw new TufaError('NOT_FOUND', `${gun}: no such collection`, { details: { gun } });
      }
      // A new snapshot version is the only way any delegated role changes: until then, reuse the parse.
      const at = `${id}/${loaded.state.snapshot?.metadata.signed.version ?? 0}`;
      const held = this.delegatedHeld.get(gun);
      this.delegatedHeld.delete(gun);
      const delegated = held?.at === at ? held.delegated : await everyDelegatedRole(loaded);
      if (this.delegatedHeld.size >= HELD_COLLECTIONS) {
        this.delegatedHeld.delete(this.delegatedHeld.keys().next().value!);
      }
      this.delegatedHeld.set(gun, { at, delegated });
      return {
        ...loaded,
        state: { ...loaded.state, delegated },
        serverKeyids: await store.serverKeyids(client, id),
      };
    } finally {
      client.release();
    }
  }

  private async collection(query: ParsedUrlQuery, viewer: Viewer): Promise<object> {
    const gun = gunParam(query);
    await viewer.requirePull(gun);
    const now = this.options.store.now();
    const { state, timestamp, serverKeyids } = await this.load(gun);
    const root = state.root!.metadata.signed;
    const online = { timestamp: true, snapshot: isSnapshotOnline(root, serverKeyids.snapshot) } as Record<
      string,
      boolean
    >;
    const loaded: Loaded = { targets: state.targets, delegated: state.delegated };
    const top = { root: state.root, targets: state.targets, snapshot: state.snapshot, timestamp };
    const roles: object[] = [];
    for (const [role, stored] of Object.entries(top)) {
      const spec = root.roles[role as keyof typeof root.roles];
      roles.push({
        role,
        ...(stored === undefined
          ? { version: null }
          : expiryView(stored.metadata, now, online[role] === true)),
        delegator: 'root',
        threshold: spec.threshold,
        keys: keysOf(spec.keyids, root.keys),
      });
    }
    const by = delegators(loaded);
    const bins = loaded.targets === undefined ? [] : allSuccinct(loaded);
    let binRoles = 0;
    for (const [name, stored] of loaded.delegated) {
      if (bins.some((s) => succinctBinIndexOf(s, name) !== undefined)) {
        binRoles++;
        continue;
      }
      const d = by.get(name);
      roles.push({
        role: name,
        ...expiryView(stored.metadata, now),
        delegator: d?.by ?? null,
        threshold: d?.role.threshold ?? null,
        keys: d === undefined ? [] : keysOf(d.role.keyids, d.keys),
      });
    }
    // Proposals name targets not yet published: shown only to whom GET …/pending/ would show them.
    const pending = (await viewer.mayPush(gun))
      ? pendingView((await this.options.pending.summaries([gun])).get(gun) ?? [])
      : null;
    let targetCount = 0;
    for (const t of targetsOf(loaded)) targetCount += Object.keys(t.targets).length;
    return {
      gun,
      now: new Date(now).toISOString(),
      consistentSnapshot: root.consistentSnapshot ?? false,
      roles,
      binRoles,
      delegations: tree(loaded, loaded.targets?.metadata.signed.delegations, now),
      pending,
      targetCount,
    };
  }

  private async targets(query: ParsedUrlQuery, viewer: Viewer): Promise<object> {
    const gun = gunParam(query);
    await viewer.requirePull(gun);
    const search = (one(query, 'q') ?? '').toLowerCase();
    const page = pageParam(query);
    const { state } = await this.load(gun);
    const all = this.targetIndex.entries(gun, { targets: state.targets, delegated: state.delegated });
    const found = search === '' ? all : all.filter((t) => t.lowered.includes(search));
    return {
      gun,
      total: found.length,
      page,
      pageSize: TARGETS_PAGE,
      targets: found
        .slice((page - 1) * TARGETS_PAGE, page * TARGETS_PAGE)
        .map((t) => ({ name: t.name, role: t.role, length: t.file.length, hashes: { ...t.file.hashes } })),
    };
  }
}

export interface TargetEntry {
  readonly name: string;
  /** The name in lower case, as the search compares it. */
  readonly lowered: string;
  readonly role: string;
  readonly file: Targets['targets'][string];
}

/**
 * The targets of the collections listed last, sorted by name (then role), kept while their stored
 * documents are the same objects (the store reuses a parsed document by digest): a page of a
 * collection of 100,000 targets is a slice, not a sort of all of them on the event loop.
 */
export class TargetIndex {
  private readonly held = new Map<string, { documents: readonly object[]; entries: TargetEntry[] }>();

  constructor(private readonly collections = 16) {}

  entries(gun: string, loaded: Loaded): readonly TargetEntry[] {
    const documents: object[] = [];
    if (loaded.targets !== undefined) documents.push(loaded.targets);
    for (const stored of loaded.delegated.values()) documents.push(stored);
    const held = this.held.get(gun);
    this.held.delete(gun);
    if (
      held !== undefined &&
      held.documents.length === documents.length &&
      held.documents.every((d, i) => d === documents[i])
    ) {
      this.held.set(gun, held);
      return held.entries;
    }
    const entries: TargetEntry[] = [];
    for (const t of targetsOf(loaded)) {
      for (const [name, file] of Object.entries(t.targets)) {
        entries.push({ name, lowered: name.toLowerCase(), role: t.role, file });
      }
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.role < b.role ? -1 : 1));
    if (this.held.size >= this.collections) this.held.delete(this.held.keys().next().value!);
    this.held.set(gun, { documents, entries });
    return entries;
  }
}

/** The succinct delegations of the targets role and of every delegated role. */
function allSuccinct(loaded: Loaded) {
  const out = [];
  const top = loaded.targets?.metadata.signed.delegations?.succinctRoles;
  if (top !== undefined) out.push(top);
  for (const stored of loaded.delegated.values()) {
    const s = stored.metadata.signed.delegations?.succinctRoles;
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** Every stored targets document: the top-level one, then the delegated ones. */
function* targetsOf(loaded: Loaded): Generator<{ role: string; targets: Targets['targets'] }> {
  if (loaded.targets !== undefined)
    yield { role: 'targets', targets: loaded.targets.metadata.signed.targets };
  for (const [role, stored] of loaded.delegated) yield { role, targets: stored.metadata.signed.targets };
}
