/**
 * The request listener: every route of routes.ts answered one way, with access control, audit,
 * JSON errors, request ids, metrics and a log line. A metadata read held in memory that needs no
 * database to authorize is answered before the listener returns: no promise, no context object.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ParsedUrlQuery, parse as parseQuery } from 'node:querystring';
import { isTufaError, keyToJson, parseJson, TufaError } from '@tufa/core';
import type { Logger } from 'pino';
import { type AuditAction, type AuditContext, listAudit, parseSince, recordAudit } from './audit.js';
import type { AccessAction, AccessControl, Principal } from './auth.js';
import { isDatabaseUnavailable } from './db.js';
import {
  BodyBudget,
  type BodyHold,
  checkGun,
  describeRequest,
  errorBody,
  HttpStatusError,
  mediaTypeOf,
  parseUpdateBody,
  type RequestInfo,
  readBody,
  requireJson,
  settleHttpShapes,
  statusOf,
} from './http.js';
import { CollectionMetrics, DEFAULT_METRICS_COLLECTIONS, type Metrics } from './metrics.js';
import { PendingOverview, SharedExpiries } from './overview.js';
import { PendingRoutes, PendingStore } from './pending.js';
import type { TrustedProxies } from './proxies.js';
import { CompressedCopies, metadataResponse } from './responder.js';
import { parseRoute, type Route, type RouteKind } from './routes.js';
import type { Store } from './store.js';
import type { TokenStore } from './tokens.js';
import { StatusPage, UI_SECURITY_HEADERS, type Viewer } from './ui/page.js';

export type Action = 'read' | 'write';

/**
 * An embedding application's own decision whether a request may read or write a collection,
 * used instead of the token scopes when given (a denial is 403). A GET of an online key
 * creates one only for writers.
 */
export type Authorizer = (request: {
  gun: string;
  action: Action;
  request: RequestInfo;
}) => boolean | Promise<boolean>;

export interface AppOptions {
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** Largest accepted update body, bytes. */
  bodyLimit: number;
  /** Proxies whose forwarded client addresses are believed (`--trusted-proxy`); none by default. */
  trustedProxies?: TrustedProxies;
  /** The bytes of request bodies the whole process may hold at once (default: 2 × bodyLimit). */
  bodyBudget?: BodyBudget;
  /** Re-sign window, as a fraction of lifetime (used when a GET finds an expired timestamp). */
  resignFraction: number;
  /** Tokens, scopes and the per-address limits. */
  access: AccessControl;
  tokens: TokenStore;
  authorize?: Authorizer;
  /** How long a pending update (threshold signing) waits for its signatures by default, ms (7 days). */
  pendingExpiry?: number;
  /** The status page at /ui/ (default on; `--no-ui`). */
  ui?: boolean;
  /** Most collections in the per-collection series of /metrics (`--metrics-collections`; 0: none). */
  metricsCollections?: number;
}

/** Bodies of the routes that take none (key rotation, delete, reads) and of the admin API. */
const SMALL_BODY = 1024;
const ADMIN_BODY = 16 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const JSON_TYPE = 'application/json; charset=utf-8';
/** Statuses that carry no body (RFC 9110). */
const EMPTY = new Set([204, 205, 304]);

/** An answer before it is written: an object is sent as JSON; a HEAD keeps the Content-Length and drops the body. */
interface Reply {
  status?: number;
  headers?: Readonly<Record<string, string>>;
  /**
   * The same headers as a flat list, Content-Length included, made once for a stored file
   * (responder.ts): written as they are when the call added none of its own.
   */
  rawHeaders?: readonly string[];
  body: Buffer | string | object | undefined;
}

interface PendingAudit {
  action: AuditAction;
  gun: string | undefined;
  recorded: boolean;
}

/** One request on its way: what it asked, who asks (authenticated once, when first needed), what is set so far. */
class Call {
  /**
   * Response headers so far, besides the request id (always the first); a refusal keeps them (a
   * pending route's Cache-Control, for one).
   */
  readonly headers: Record<string, string | number> = {};
  audit: PendingAudit | undefined;
  /** Who is asking, for the audit rows of a pending route's publish. */
  auditContext: AuditContext | undefined;
  private who: Principal | Promise<Principal> | undefined;
  private parsedQuery: ParsedUrlQuery | undefined;
  private heldBody: BodyHold | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly request: RequestInfo,
    readonly requestId: string,
    private readonly access: AccessControl,
    private readonly budget: BodyBudget,
  ) {}

  /** This request's share of the process-wide body budget, held until its answer is written. */
  get hold(): BodyHold {
    this.heldBody ??= this.budget.open();
    return this.heldBody;
  }

  releaseBody(): void {
    this.heldBody?.release();
  }

  principal(): Principal | Promise<Principal> {
    this.who ??= this.access.authenticate(this.request);
    return this.who;
  }

  get query(): ParsedUrlQuery {
    this.parsedQuery ??= parseQuery(this.request.query);
    return this.parsedQuery;
  }
}

type RouteOf<K extends RouteKind> = Extract<Route, { kind: K }>;
type Handler<K extends RouteKind> = (call: Call, route: RouteOf<K>) => Reply | Promise<Reply>;

/** What a route answers to each method; anything else is 405 with the methods it has. */
interface Endpoint<K extends RouteKind> {
  /** Runs before the method is looked at (the pending routes: push access comes first). */
  before?: (call: Call, route: RouteOf<K>) => Promise<void>;
  /** GET and HEAD. */
  read?: Handler<K>;
  post?: Handler<K>;
  delete?: Handler<K>;
}

function routeName(route: Route | undefined): string {
  if (route === undefined) return 'unknown';
  if (route.kind === 'metadata') return route.version === undefined ? 'metadata' : 'metadata_versioned';
  return route.kind;
}

function decimalParam(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new HttpStatusError(400, 'INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

/** Routes that read no body refuse one; the others are bounded when read. */
function refuseLargeBody(request: RequestInfo, route: Route | undefined): void {
  if (route?.kind === 'collection' && request.method === 'POST') return;
  const limit = route?.kind === 'tokens' && request.method === 'POST' ? ADMIN_BODY : SMALL_BODY;
  const declared = request.headers['content-length'];
  const chunked = request.headers['transfer-encoding'] !== undefined;
  if ((declared !== undefined && Number(declared) > limit) || (chunked && limit === SMALL_BODY)) {
    // The body is never read: the connection closes after the answer (see bodyTooLarge).
    throw new HttpStatusError(
      413,
      'TOO_LARGE',
      `this route takes a body of at most ${limit} bytes`,
      { limit },
      { Connection: 'close' },
    );
  }
}

function isPending(route: Route | undefined): boolean {
  return route?.kind === 'pending' || route?.kind === 'pending_one' || route?.kind === 'pending_signatures';
}

function parseTokenRequest(doc: unknown): { name: string; scopes: string[] } {
  const o = doc as Record<string, unknown> | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    Array.isArray(o) ||
    typeof o.name !== 'string' ||
    !Array.isArray(o.scopes) ||
    !o.scopes.every((x) => typeof x === 'string') ||
    Object.keys(o).some((k) => k !== 'name' && k !== 'scopes')
  ) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'a token request is {"name": NAME, "scopes": ["push:acme/*", …]}',
    );
  }
  return { name: o.name, scopes: o.scopes as string[] };
}

/** Whether an object has no own key (the call added no header of its own). */
function isEmpty(headers: Record<string, unknown>): boolean {
  for (const _ in headers) return false;
  return true;
}

/**
 * Writes a reply in one writeHead (node:http then stores the headers once) and one end: headers
 * and body go out in one writev. A stored file's headers are written as the responder made them.
 */
function write(res: ServerResponse, method: string, status: number, reply: Reply, call: Call): void {
  const raw = reply.rawHeaders;
  if (raw !== undefined && isEmpty(call.headers)) {
    // A spread, not concat: concat of the frozen list takes V8's C++ path (176 against 103 ns).
    res.writeHead(status, ['X-Request-Id', call.requestId, ...raw]);
    const body = reply.body as Buffer | undefined;
    if (body === undefined || method === 'HEAD') res.end();
    else res.end(body);
    return;
  }
  const headers: Record<string, string | number> = { 'X-Request-Id': call.requestId, ...call.headers };
  if (reply.headers !== undefined) Object.assign(headers, reply.headers);
  let body: Buffer | string | undefined;
  if (reply.body !== undefined && !EMPTY.has(status)) {
    if (Buffer.isBuffer(reply.body)) body = reply.body;
    else if (typeof reply.body === 'string') body = reply.body;
    else {
      body = JSON.stringify(reply.body);
      headers['Content-Type'] = JSON_TYPE;
    }
    headers['Content-Length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  }
  res.writeHead(status, headers);
  if (body === undefined || method === 'HEAD') res.end();
  else res.end(body);
}

export function createRequestListener(
  options: AppOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, metrics, access, tokens, logger } = options;
  // Before any request reaches node:http in this process: see settleHttpShapes.
  settleHttpShapes();
  // gzip copies of the metadata this listener serves (Accept-Encoding), by content.
  const compressed = new CompressedCopies();
  const bodyBudget = options.bodyBudget ?? new BodyBudget(2 * options.bodyLimit);
  const pendingStore = new PendingStore(
    store,
    options.pendingExpiry === undefined ? {} : { defaultExpiry: options.pendingExpiry },
  );
  const pending = new PendingRoutes(pendingStore, options.bodyLimit);
  const authorize = options.authorize;
  const overview = new PendingOverview(pendingStore, store.pool, store.now);
  const expiries = new SharedExpiries(store.pool, store.now);
  const collectionMetrics = new CollectionMetrics({
    pool: store.pool,
    pending: overview,
    limit: options.metricsCollections ?? DEFAULT_METRICS_COLLECTIONS,
    now: store.now,
    expiries,
  });
  const statusPage =
    options.ui === false ? undefined : new StatusPage({ store, pending: overview, expiries });

  /**
   * Path → its route, parsed once: only paths of at most 512 characters that name a route, at
   * most 10,000 of them (about 5 MB at worst). A refused path is parsed (and refused) every time.
   */
  const routes = new Map<string, Route>();
  const routeOf = (path: string): Route | undefined => {
    const known = routes.get(path);
    if (known !== undefined) return known;
    const route = parseRoute(path);
    if (route !== undefined && path.length <= 512) {
      if (routes.size >= 10_000) routes.clear();
      routes.set(path, Object.freeze(route));
    }
    return route;
  };

  const count = (route: string, method: string, status: number, seconds: number) =>
    metrics.requests.count(route, method, status, seconds);

  const auditContext = async (call: Call): Promise<AuditContext> => {
    let who: Principal | undefined;
    try {
      who = await call.principal();
    } catch {
      who = undefined;
    }
    return { tokenName: who?.tokenName, remoteAddr: call.request.remoteAddress, requestId: call.requestId };
  };
  /** Marks the request as a write to audit: refused, it gets a row with the refusal code. */
  const auditing = (call: Call, action: AuditAction, gun: string | undefined): PendingAudit => {
    call.audit = { action, gun, recorded: false };
    return call.audit;
  };
  const recordAccepted = async (call: Call): Promise<void> => {
    const audit = call.audit;
    if (audit === undefined) return;
    audit.recorded = true;
    await recordAudit(store.pool, {
      ...(await auditContext(call)),
      action: audit.action,
      gun: audit.gun,
      outcome: 'accepted',
    });
  };

  /** Refuses unless the caller may; at once when the caller is known without the database. */
  const allowed = (call: Call, gun: string, action: AccessAction): void | Promise<void> => {
    if (authorize !== undefined && action !== 'admin') {
      const legacy: Action = action === 'pull' ? 'read' : 'write';
      return Promise.resolve(authorize({ gun, action: legacy, request: call.request })).then((ok) => {
        if (!ok) throw new HttpStatusError(403, 'FORBIDDEN', `not allowed to ${action} ${gun}`);
      });
    }
    const who = call.principal();
    const address = call.request.remoteAddress;
    if (who instanceof Promise) return who.then((p) => access.require(p, action, gun, address));
    access.require(who, action, gun, address);
  };
  /** What the status page and the per-collection metrics may show this caller: what it may pull. */
  const viewer = (call: Call): Viewer => ({
    admit: async () => {
      if (authorize !== undefined) return;
      const who = await call.principal();
      if (who.via === 'anonymous') access.require(who, 'pull', '*', call.request.remoteAddress);
    },
    mayPull: async (gun) =>
      authorize !== undefined
        ? authorize({ gun, action: 'read', request: call.request })
        : access.may(await call.principal(), 'pull', gun),
    requirePull: async (gun) => allowed(call, gun, 'pull'),
    mayPush: (gun) => mayPush(call, gun),
  });
  const mayPush = async (call: Call, gun: string): Promise<boolean> => {
    if (authorize !== undefined) return authorize({ gun, action: 'write', request: call.request });
    return access.may(await call.principal(), 'push', gun);
  };

  const readJsonBody = async (call: Call, limit: number): Promise<unknown> => {
    requireJson(call.request.headers);
    return parseJson(await readBody(call.req, limit, call.hold), { source: 'request body' });
  };

  /** A metadata file held in memory, when it may be served as it is (a timestamp not yet expired). */
  const fromMemory = (route: RouteOf<'metadata'>, call: Call): Reply | undefined => {
    if (route.role === 'timestamp' && route.version !== undefined) return undefined;
    const file = store.cachedMetadata(route.gun, route.role, route.version);
    if (file === undefined || (route.role === 'timestamp' && file.expiresAt <= store.now())) return undefined;
    return metadataResponse(route, file, call.request.headers, compressed);
  };

  const readMetadata = async (call: Call, route: RouteOf<'metadata'>): Promise<Reply> => {
    await allowed(call, route.gun, 'pull');
    if (route.role === 'timestamp' && route.version !== undefined) {
      throw new TufaError('NOT_FOUND', 'timestamp is only served as timestamp.json');
    }
    if (route.role === 'timestamp' && (await store.timestampExpired(route.gun))) {
      const roles = await store.resign(route.gun, { fraction: options.resignFraction, wait: true });
      for (const role of roles) metrics.resigns.inc({ role });
    }
    const file = await store.getMetadata(route.gun, route.role, route.version);
    if (file === undefined) {
      throw new TufaError(
        'NOT_FOUND',
        `${route.gun}: no ${route.version === undefined ? '' : `version ${route.version} of `}${route.role}`,
        { role: route.role },
      );
    }
    return metadataResponse(route, file, call.request.headers, compressed);
  };

  /** Push access, then the audit and cache rules every pending route shares. */
  const pendingFirst = async (
    call: Call,
    route: RouteOf<'pending' | 'pending_one' | 'pending_signatures'>,
  ) => {
    // Proposing, signing and dropping are writes: audited, accepted or refused.
    const method = call.request.method;
    const action: AuditAction | undefined =
      method === 'DELETE'
        ? 'pending.drop'
        : method !== 'POST'
          ? undefined
          : route.kind === 'pending_signatures'
            ? 'pending.sign'
            : 'pending.propose';
    if (action !== undefined) auditing(call, action, route.gun);
    await allowed(call, route.gun, 'push');
    call.headers['Cache-Control'] = 'no-store';
    call.auditContext = await auditContext(call);
  };

  const endpoints: { [K in RouteKind]: Endpoint<K> } = {
    health: {
      read: async () => {
        try {
          await store.pool.query('SELECT 1');
          return { body: { status: 'ok' } };
        } catch {
          return {
            status: 503,
            body: {
              status: 'unavailable',
              error: { code: 'NETWORK', message: 'the database does not answer' },
            },
          };
        }
      },
    },
    metrics: {
      read: async (call) => {
        const own = viewer(call);
        // A scraper that sends a token is authenticated even when no collection is there to filter.
        if (authorize === undefined) await call.principal();
        return {
          headers: { 'Content-Type': metrics.registry.contentType },
          body: (await metrics.registry.metrics()) + (await collectionMetrics.render(own.mayPull)),
        };
      },
    },
    ui: {
      read: (call, route) => {
        if (statusPage === undefined) throw new TufaError('NOT_FOUND', 'the status page is off (--no-ui)');
        return statusPage.answer(route.path, call.query, call.request.headers, viewer(call));
      },
    },
    changefeed: {
      read: async (call, route) => {
        // The whole feed names every collection: it needs pull on all of them (pull:*).
        await allowed(call, route.gun ?? '*', 'pull');
        const after = decimalParam(call.query.change_id, 'change_id', 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = decimalParam(call.query.records, 'records', 1, 1000, 100);
        const records = await store.changes({ gun: route.gun, after: String(after), limit });
        return { headers: { 'Cache-Control': 'no-store' }, body: { count: records.length, records } };
      },
    },
    metadata: {
      read: (call, route) => {
        // The request a registry serves most: answered before any await when nothing needs the database.
        if (authorize === undefined && !(call.principal() instanceof Promise)) {
          allowed(call, route.gun, 'pull');
          const held = fromMemory(route, call);
          if (held !== undefined) return held;
        }
        return readMetadata(call, route);
      },
    },
    key: {
      read: async (call, route) => {
        await allowed(call, route.gun, 'pull');
        const mayWrite = await mayPush(call, route.gun);
        const key = await store.getOnlineKey(
          route.gun,
          route.role,
          mayWrite,
          mayWrite ? await auditContext(call) : undefined,
        );
        // Only a writer creates a collection's first key: say who may, as a write would (the
        // collection's existence is no secret from a caller who may read it).
        if (key === undefined && !mayWrite) {
          if (authorize !== undefined)
            throw new HttpStatusError(403, 'FORBIDDEN', `not allowed to push ${route.gun}`);
          access.require(await call.principal(), 'push', route.gun);
        }
        if (key === undefined) throw new TufaError('NOT_FOUND', `${route.gun}: no ${route.role} key`);
        return { headers: { 'Cache-Control': 'no-store' }, body: keyToJson(key) };
      },
      post: async (call, route) => {
        const audit = auditing(call, 'key.rotate', route.gun);
        await allowed(call, route.gun, 'push');
        const key = await store.rotateOnlineKey(route.gun, route.role, await auditContext(call));
        audit.recorded = true;
        return { body: keyToJson(key) };
      },
    },
    collection: {
      post: async (call, route) => {
        const audit = auditing(call, 'publish', route.gun);
        await allowed(call, route.gun, 'push');
        const type = mediaTypeOf(call.request.headers);
        if (type !== 'application/json') {
          await readBody(call.req, options.bodyLimit, call.hold).catch(() => undefined);
          throw new HttpStatusError(415, 'INVALID_ARGUMENT', 'an update is sent as application/json', {
            found: type || 'nothing',
          });
        }
        // Counted among the large update bodies too, from the byte that makes it one, until checked.
        const large = store.holdUpdateBody(call.hold);
        let result: Awaited<ReturnType<typeof store.publish>>;
        try {
          const uploads = parseUpdateBody(await readBody(call.req, options.bodyLimit, large));
          result = await store.publish(route.gun, uploads, await auditContext(call));
        } finally {
          large.release();
        }
        audit.recorded = true;
        metrics.publishes.inc();
        return { body: { gun: route.gun, versions: result.versions } };
      },
      delete: async (call, route) => {
        const audit = auditing(call, 'delete', route.gun);
        await allowed(call, route.gun, 'delete');
        if (!(await store.deleteCollection(route.gun, await auditContext(call)))) {
          throw new TufaError('NOT_FOUND', `${route.gun}: no such collection`);
        }
        audit.recorded = true;
        return { body: { deleted: route.gun } };
      },
    },
    pending: {
      before: pendingFirst,
      read: (_, route) => pending.list(route.gun),
      post: async (call, route) => {
        const reply = await pending.propose(route.gun, call.req, call.query, call.auditContext, call.hold);
        await recordAccepted(call);
        return reply;
      },
    },
    pending_one: {
      before: pendingFirst,
      read: (_, route) => pending.get(route.gun, route.id),
      delete: async (call, route) => {
        const reply = await pending.drop(route.gun, route.id);
        await recordAccepted(call);
        return reply;
      },
    },
    pending_signatures: {
      before: pendingFirst,
      post: async (call, route) => {
        const reply = await pending.sign(route.gun, route.id, call.req, call.auditContext, call.hold);
        await recordAccepted(call);
        return reply;
      },
    },
    tokens: {
      read: async (call) => {
        await allowed(call, '*', 'admin');
        return { headers: { 'Cache-Control': 'no-store' }, body: { tokens: await tokens.list() } };
      },
      post: async (call) => {
        const audit = auditing(call, 'token.create', undefined);
        await allowed(call, '*', 'admin');
        const request = parseTokenRequest(await readJsonBody(call, ADMIN_BODY));
        const created = await tokens.createAudited(request.name, request.scopes, await auditContext(call));
        audit.recorded = true;
        return {
          status: 201,
          headers: { 'Cache-Control': 'no-store' },
          body: { ...created.info, token: created.token },
        };
      },
    },
    token: {
      delete: async (call, route) => {
        const audit = auditing(call, 'token.revoke', undefined);
        await allowed(call, '*', 'admin');
        const revoked = await tokens.revokeAudited(route.name, await auditContext(call));
        if (!revoked) throw new TufaError('NOT_FOUND', `no live token named ${route.name}`);
        audit.recorded = true;
        return { body: { revoked: route.name } };
      },
    },
    audit: {
      read: async (call) => {
        await allowed(call, '*', 'admin');
        const { gun, since } = call.query;
        if (gun !== undefined && typeof gun !== 'string') {
          throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'gun is given once');
        }
        if (since !== undefined && typeof since !== 'string') {
          throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'since is given once');
        }
        const after = decimalParam(call.query.after, 'after', 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = decimalParam(call.query.limit, 'limit', 1, 1000, 100);
        const rows = await listAudit(store.pool, {
          gun: gun === undefined ? undefined : checkGun(gun),
          since: since === undefined ? undefined : parseSince(since, store.now()),
          after: String(after),
          limit,
        });
        return { headers: { 'Cache-Control': 'no-store' }, body: { count: rows.length, records: rows } };
      },
    },
  };

  // Each endpoint takes its own route kind; looked up by that kind, it gets a route of that kind.
  const endpointOf = (route: Route) => endpoints[route.kind] as unknown as Endpoint<RouteKind>;

  const answer = (call: Call, route: Route): Reply | Promise<Reply> => {
    const endpoint = endpointOf(route);
    const method = call.request.method;
    const handler =
      method === 'GET' || method === 'HEAD'
        ? endpoint.read
        : method === 'POST'
          ? endpoint.post
          : method === 'DELETE'
            ? endpoint.delete
            : undefined;
    if (handler === undefined) {
      const allow = [
        endpoint.read && 'GET, HEAD',
        endpoint.post && 'POST',
        endpoint.delete && 'DELETE',
      ].filter(Boolean);
      throw new HttpStatusError(
        405,
        'INVALID_ARGUMENT',
        `${method} is not allowed here (allowed: ${allow.join(', ')})`,
        undefined,
        { Allow: allow.join(', ') },
      );
    }
    return handler(call, route);
  };

  /** The refusal (or failure) as an answer, after its audit row when the request was an audited write. */
  const refusal = async (call: Call, err: unknown): Promise<Reply> => {
    const tufa = isTufaError(err) ? err : undefined;
    if (err instanceof HttpStatusError) Object.assign(call.headers, err.headers);
    const audit = call.audit;
    // 429s are not recorded: they are what keeps a flood of refused writes out of the table.
    if (audit !== undefined && !audit.recorded && tufa?.code !== 'RATE_LIMITED') {
      audit.recorded = true;
      await recordAudit(store.pool, {
        ...(await auditContext(call)),
        action: audit.action,
        gun: audit.gun,
        outcome: tufa?.code ?? 'INTERNAL',
      }).catch((auditErr: unknown) =>
        logger.error({ req_id: call.requestId, err: auditErr }, 'audit row not written'),
      );
    }
    // A 5xx of our own choosing (the body budget's 503) is a refusal too, not a failure.
    if (tufa !== undefined && (statusOf(tufa) < 500 || err instanceof HttpStatusError)) {
      metrics.refusals.inc({ code: tufa.code });
      logger.info({ req_id: call.requestId, code: tufa.code, msg_detail: tufa.message }, 'refused');
      return { status: statusOf(tufa), body: errorBody(tufa) };
    }
    if (tufa === undefined && isDatabaseUnavailable(err)) {
      // The database is down or restarting: a transient failure, said as one (503, retry soon).
      logger.warn({ req_id: call.requestId, err: (err as Error).message }, 'database unavailable');
      metrics.refusals.inc({ code: 'NETWORK' });
      call.headers['Retry-After'] = '1';
      return {
        status: 503,
        body: {
          error: { code: 'NETWORK', message: 'the database is unavailable: retry shortly', details: {} },
        },
      };
    }
    logger.error({ req_id: call.requestId, err }, 'request failed');
    const status = tufa !== undefined ? statusOf(tufa) : 500;
    metrics.refusals.inc({ code: tufa?.code ?? 'INTERNAL' });
    return {
      status,
      body: {
        error: {
          code: tufa?.code ?? 'INTERNAL',
          message: status === 500 ? `internal error (request id ${call.requestId})` : tufa!.message,
          details: {},
        },
      },
    };
  };

  return (req, res) => {
    const started = process.hrtime.bigint();
    const request = describeRequest(req, options.trustedProxies);
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    const call = new Call(req, request, requestId, access, bodyBudget);
    // Refusals, redirects and 404s under /ui/ are the page's answers too: the same CSP and headers.
    if (request.path === '/ui' || request.path.startsWith('/ui/'))
      Object.assign(call.headers, UI_SECURITY_HEADERS);
    let route: Route | undefined;
    let release: (() => void) | undefined;

    const finish = (reply: Reply): void => {
      release?.();
      call.releaseBody();
      const status = reply.status ?? 200;
      try {
        write(res, request.method, status, reply, call);
      } catch (err) {
        logger.error({ req_id: requestId, err }, 'response not written');
        res.destroy();
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      count(routeName(route), request.method, status, seconds);
      if (logger.isLevelEnabled('info')) {
        logger.info(
          {
            req_id: requestId,
            method: request.method,
            url: (req.url ?? '').slice(0, 512),
            status,
            ms: Math.round(seconds * 1000),
          },
          'request',
        );
      }
    };
    const fail = (err: unknown): void => {
      refusal(call, err).then(finish, (failed: unknown) => {
        logger.error({ req_id: requestId, err: failed }, 'request failed');
        finish({
          status: 500,
          body: {
            error: { code: 'INTERNAL', message: `internal error (request id ${requestId})`, details: {} },
          },
        });
      });
    };

    try {
      access.admit(request.remoteAddress);
    } catch (err) {
      fail(err);
      return;
    }
    try {
      route = routeOf(request.path);
      // The pending routes bound their bodies as they read them.
      if (!isPending(route)) refuseLargeBody(request, route);
      if (route === undefined) {
        throw new TufaError('NOT_FOUND', `no such route: ${request.path.slice(0, 200)}`);
      }
      const known = route;
      const before = endpointOf(known).before;
      const reply =
        before === undefined ? answer(call, known) : before(call, known).then(() => answer(call, known));
      if (reply instanceof Promise) {
        release = access.hold(request.remoteAddress);
        reply.then(finish, fail);
      } else finish(reply);
    } catch (err) {
      release = access.hold(request.remoteAddress);
      fail(err);
    }
  };
}
