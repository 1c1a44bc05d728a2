/** The Koa application: Notary's routes over the store, access control, audit, JSON errors, request ids, metrics. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isTufaError, keyToJson, parseJson, TufaError } from '@tufa/core';
import Koa from 'koa';
import type { Logger } from 'pino';
import { type AuditAction, type AuditContext, listAudit, parseSince, recordAudit } from './audit.js';
import { type AccessAction, type AccessControl, ANONYMOUS, type Principal, remoteAddress } from './auth.js';
import {
  checkGun,
  errorBody,
  HttpStatusError,
  parseRoute,
  parseUpdateBody,
  type Route,
  readBody,
  statusOf,
} from './http.js';
import type { Metrics } from './metrics.js';
import { handlePending, PendingStore, parsePendingRoute } from './pending.js';
import type { Store } from './store.js';
import type { TokenStore } from './tokens.js';

export type Action = 'read' | 'write';

/**
 * An embedding application's own decision whether a request may read or write a collection,
 * used instead of the token scopes when given (a denial is 403). A GET of an online key
 * creates one only for writers.
 */
export type Authorizer = (request: {
  gun: string;
  action: Action;
  ctx: Koa.Context;
}) => boolean | Promise<boolean>;

export interface AppOptions {
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** Largest accepted update body, bytes. */
  bodyLimit: number;
  /** Re-sign window, as a fraction of lifetime (used when a GET finds an expired timestamp). */
  resignFraction: number;
  /** Tokens, scopes and the per-address limits. */
  access: AccessControl;
  tokens: TokenStore;
  authorize?: Authorizer;
  /** How long a pending update (threshold signing) waits for its signatures by default, ms (7 days). */
  pendingExpiry?: number;
}

/** Bodies of the routes that take none (key rotation, delete, reads) and of the admin API. */
const SMALL_BODY = 1024;
const ADMIN_BODY = 16 * 1024;

interface PendingAudit {
  action: AuditAction;
  gun: string | undefined;
  roles?: Record<string, number | string>;
  recorded: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const LATEST_CACHE = 'public, max-age=10, must-revalidate';
const VERSIONED_CACHE = 'public, max-age=31536000, immutable';

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

type MetadataRoute = Extract<Route, { kind: 'metadata' }>;

/** Whether an If-None-Match header names this ETag (or `*`). */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return false;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*');
}

/**
 * The request listener for node:http(s): the app, behind a fast path for the request a registry
 * serves most, an anonymous GET or HEAD of the latest (or a given version of) metadata held in
 * the memory cache. That path answers from node:http directly, with the same status, headers,
 * metrics and log line as the app, without Koa's per-request context (several times the
 * requests per second for timestamp.json). Anything else goes to the app: a cache miss, a
 * timestamp due for re-signing, an Authorization header, a query string, pull that needs a
 * token, an embedding application's authorizer, a path the router refuses.
 */
export function createRequestListener(
  options: AppOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createApp(options);
  const handle = app.callback();
  const { store, metrics, access, logger } = options;
  // Off when pull needs a token, when an embedding application decides, and when client
  // certificates map to tokens (a certificate whose token is revoked gets 401 from the app).
  const fastPathOn =
    options.authorize === undefined && access.may(ANONYMOUS, 'pull', '') && !access.mapsCertificates;
  const counters = new Map<string, ReturnType<typeof metrics.requests.labels>>();
  const counter = (method: string, status: number) => {
    const key = `${method} ${status}`;
    let c = counters.get(key);
    if (c === undefined) {
      c = metrics.requests.labels({ route: 'metadata', method, status: String(status) });
      counters.set(key, c);
    }
    return c;
  };
  const latency = metrics.latency.labels({ route: 'metadata' });

  /**
   * URL → its metadata route, parsed once. Only routes the fast path serves are kept, only for
   * URLs of at most 512 characters, at most 10,000 of them: about 5 MB at worst.
   */
  const routes = new Map<string, MetadataRoute>();
  const metadataRoute = (url: string): MetadataRoute | undefined => {
    const known = routes.get(url);
    if (known !== undefined) return known;
    let parsed: Route | undefined;
    try {
      parsed = parseRoute(url);
    } catch {
      return undefined; // the app answers with the router's refusal
    }
    if (parsed?.kind !== 'metadata' || (parsed.role === 'timestamp' && parsed.version !== undefined)) {
      return undefined;
    }
    if (url.length <= 512) {
      if (routes.size >= 10_000) routes.clear();
      routes.set(url, parsed);
    }
    return parsed;
  };

  const served = (req: IncomingMessage, res: ServerResponse): boolean => {
    const started = process.hrtime.bigint();
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url;
    if (url === undefined || !url.startsWith('/v2/') || url.includes('?')) return false;
    const h = req.headers;
    // A token, or a body (the app answers 413 past 1 KiB): the app's business.
    const length = h['content-length'];
    if (
      h.authorization !== undefined ||
      (length !== undefined && length !== '0') ||
      h['transfer-encoding'] !== undefined
    ) {
      return false;
    }
    const route = metadataRoute(url);
    if (route === undefined) return false;
    const file = store.cachedMetadata(route.gun, route.role, route.version);
    if (file === undefined) return false;
    // An expired timestamp is re-signed first, by the app.
    if (route.role === 'timestamp' && file.expiresAt <= store.now()) return false;
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    const etag = `"${file.sha256}"`;
    const cacheControl = route.version === undefined ? LATEST_CACHE : VERSIONED_CACHE;
    // One writeHead with every header: node:http stores them once instead of per setHeader.
    if (etagMatches(req.headers['if-none-match'], etag)) {
      res.writeHead(304, { 'X-Request-Id': requestId, ETag: etag, 'Cache-Control': cacheControl });
      res.end();
    } else {
      res.writeHead(200, {
        'X-Request-Id': requestId,
        ETag: etag,
        'Cache-Control': cacheControl,
        'Content-Type': 'application/json',
        'Content-Length': file.bytes.length,
      });
      if (method === 'HEAD') res.end();
      else res.end(file.bytes);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    counter(method, res.statusCode).inc();
    latency.observe(seconds);
    if (logger.isLevelEnabled('info')) {
      logger.info(
        {
          req_id: requestId,
          method,
          url: url.slice(0, 512),
          status: res.statusCode,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
    }
    return true;
  };

  return (req, res) => {
    if (!fastPathOn || !served(req, res)) void handle(req, res);
  };
}

export function createApp(options: AppOptions): Koa {
  const { store, metrics, access, tokens } = options;
  const pendingUpdates = new PendingStore(
    store,
    options.pendingExpiry === undefined ? {} : { defaultExpiry: options.pendingExpiry },
  );
  const authorize = options.authorize;
  const app = new Koa();
  app.silent = true;
  app.proxy = false;

  /** The caller, authenticated once per request (and only by routes that need to know). */
  const principal = (ctx: Koa.Context): Promise<Principal> => {
    ctx.state.principal ??= access.authenticate(ctx);
    return ctx.state.principal as Promise<Principal>;
  };
  const auditContext = async (ctx: Koa.Context): Promise<AuditContext> => ({
    tokenName: (await principal(ctx).catch(() => undefined))?.tokenName,
    remoteAddr: remoteAddress(ctx),
    requestId: ctx.state.requestId as string,
  });
  /** Marks the request as a write to audit: refused, it gets a row with the refusal code. */
  const auditing = (ctx: Koa.Context, action: AuditAction, gun: string | undefined): PendingAudit => {
    const pending: PendingAudit = { action, gun, recorded: false };
    ctx.state.audit = pending;
    return pending;
  };

  const allowed = async (gun: string, action: AccessAction, ctx: Koa.Context) => {
    if (authorize !== undefined && action !== 'admin') {
      const legacy: Action = action === 'pull' ? 'read' : 'write';
      if (!(await authorize({ gun, action: legacy, ctx }))) {
        throw new HttpStatusError(403, 'FORBIDDEN', `not allowed to ${action} ${gun}`);
      }
      return;
    }
    access.require(await principal(ctx), action, gun, remoteAddress(ctx));
  };
  const mayPush = async (gun: string, ctx: Koa.Context): Promise<boolean> => {
    if (authorize !== undefined) return authorize({ gun, action: 'write', ctx });
    return access.may(await principal(ctx), 'push', gun);
  };

  app.use(async (ctx) => {
    const started = process.hrtime.bigint();
    const given = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', requestId);
    ctx.state.requestId = requestId;
    // A child logger costs more than a cached GET: made only when something is logged.
    let child: Logger | undefined;
    const log = () => (child ??= options.logger.child({ req_id: requestId }));
    let route: Route | undefined;
    let release: (() => void) | undefined;
    try {
      release = access.admit(ctx);
      // Threshold signing (pending.ts): push access, bodies bounded there.
      const pendingRoute = parsePendingRoute(ctx.path);
      if (pendingRoute !== undefined) {
        ctx.state.routeName =
          pendingRoute.id === undefined
            ? 'pending'
            : pendingRoute.signatures
              ? 'pending_signatures'
              : 'pending_one';
        // Proposing, signing and dropping are writes: audited, accepted or refused.
        const action: AuditAction | undefined =
          ctx.method === 'DELETE'
            ? 'pending.drop'
            : ctx.method !== 'POST'
              ? undefined
              : pendingRoute.signatures === true
                ? 'pending.sign'
                : 'pending.propose';
        const audit = action === undefined ? undefined : auditing(ctx, action, pendingRoute.gun);
        await handlePending(ctx, pendingRoute, {
          pending: pendingUpdates,
          bodyLimit: options.bodyLimit,
          allowPush: (gun) => allowed(gun, 'push', ctx),
          audit: () => auditContext(ctx),
        });
        if (audit !== undefined) {
          audit.recorded = true;
          await recordAudit(store.pool, {
            ...(await auditContext(ctx)),
            action: audit.action,
            gun: audit.gun,
            outcome: 'accepted',
          });
        }
        return;
      }
      route = parseRoute(ctx.path);
      refuseLargeBody(ctx, route);
      await handle(ctx, route);
    } catch (err) {
      const tufa = isTufaError(err) ? err : undefined;
      if (err instanceof HttpStatusError) for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
      const pending = ctx.state.audit as PendingAudit | undefined;
      // 429s are not recorded: they are what keeps a flood of refused writes out of the table.
      if (pending !== undefined && !pending.recorded && tufa?.code !== 'RATE_LIMITED') {
        pending.recorded = true;
        await recordAudit(store.pool, {
          ...(await auditContext(ctx)),
          action: pending.action,
          gun: pending.gun,
          outcome: tufa?.code ?? 'INTERNAL',
        }).catch((auditErr: unknown) => log().error({ err: auditErr }, 'audit row not written'));
      }
      if (tufa !== undefined && statusOf(tufa) < 500) {
        ctx.status = statusOf(tufa);
        ctx.body = errorBody(tufa);
        metrics.refusals.inc({ code: tufa.code });
        log().info({ code: tufa.code, msg_detail: tufa.message }, 'refused');
      } else {
        log().error({ err }, 'request failed');
        const status = tufa !== undefined ? statusOf(tufa) : 500;
        ctx.status = status;
        ctx.body = {
          error: {
            code: tufa?.code ?? 'INTERNAL',
            message: status === 500 ? `internal error (request id ${requestId})` : tufa!.message,
            details: {},
          },
        };
        metrics.refusals.inc({ code: tufa?.code ?? 'INTERNAL' });
      }
    } finally {
      release?.();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const name = (ctx.state.routeName as string | undefined) ?? routeName(route);
      metrics.requests.inc({ route: name, method: ctx.method, status: String(ctx.status) });
      metrics.latency.observe({ route: name }, seconds);
      if (options.logger.isLevelEnabled('info')) {
        log().info(
          {
            method: ctx.method,
            url: ctx.url.slice(0, 512),
            status: ctx.status,
            ms: Math.round(seconds * 1000),
          },
          'request',
        );
      }
    }
  });

  const methodNotAllowed = (ctx: Koa.Context, allow: string) => {
    ctx.set('Allow', allow);
    throw new HttpStatusError(
      405,
      'INVALID_ARGUMENT',
      `${ctx.method} is not allowed here (allowed: ${allow})`,
    );
  };

  async function handle(ctx: Koa.Context, route: Route | undefined): Promise<void> {
    if (route === undefined) throw new TufaError('NOT_FOUND', `no such route: ${ctx.path.slice(0, 200)}`);
    const read = ctx.method === 'GET' || ctx.method === 'HEAD';
    switch (route.kind) {
      case 'health': {
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD');
        try {
          await store.pool.query('SELECT 1');
          ctx.body = { status: 'ok' };
        } catch {
          ctx.status = 503;
          ctx.body = {
            status: 'unavailable',
            error: { code: 'NETWORK', message: 'the database does not answer' },
          };
        }
        return;
      }
      case 'metrics': {
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD');
        ctx.type = metrics.registry.contentType;
        ctx.body = await metrics.registry.metrics();
        return;
      }
      case 'changefeed': {
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD');
        // The whole feed names every collection: it needs pull on all of them (pull:*).
        await allowed(route.gun ?? '*', 'pull', ctx);
        const after = decimalParam(ctx.query.change_id, 'change_id', 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = decimalParam(ctx.query.records, 'records', 1, 1000, 100);
        const records = await store.changes({ gun: route.gun, after: String(after), limit });
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { count: records.length, records };
        return;
      }
      case 'metadata': {
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD');
        await allowed(route.gun, 'pull', ctx);
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
        const etag = `"${file.sha256}"`;
        ctx.set('ETag', etag);
        ctx.set('Cache-Control', route.version === undefined ? LATEST_CACHE : VERSIONED_CACHE);
        if (etagMatches(ctx.get('if-none-match'), etag)) {
          ctx.status = 304;
          return;
        }
        ctx.body = file.bytes;
        ctx.set('Content-Type', 'application/json');
        return;
      }
      case 'key': {
        if (ctx.method === 'POST') {
          const pending = auditing(ctx, 'key.rotate', route.gun);
          await allowed(route.gun, 'push', ctx);
          const key = await store.rotateOnlineKey(route.gun, route.role, await auditContext(ctx));
          pending.recorded = true;
          ctx.body = keyToJson(key);
          return;
        }
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD, POST');
        await allowed(route.gun, 'pull', ctx);
        const mayWrite = await mayPush(route.gun, ctx);
        const key = await store.getOnlineKey(
          route.gun,
          route.role,
          mayWrite,
          mayWrite ? await auditContext(ctx) : undefined,
        );
        // Only a writer creates a collection's first key: say who may, as a write would (the
        // collection's existence is no secret from a caller who may read it).
        if (key === undefined && !mayWrite) {
          if (authorize !== undefined)
            throw new HttpStatusError(403, 'FORBIDDEN', `not allowed to push ${route.gun}`);
          access.require(await principal(ctx), 'push', route.gun);
        }
        if (key === undefined) throw new TufaError('NOT_FOUND', `${route.gun}: no ${route.role} key`);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = keyToJson(key);
        return;
      }
      case 'collection': {
        if (ctx.method === 'POST') {
          const pending = auditing(ctx, 'publish', route.gun);
          await allowed(route.gun, 'push', ctx);
          const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
          if (type !== 'application/json') {
            await readBody(ctx.req, options.bodyLimit).catch(() => undefined);
            throw new HttpStatusError(415, 'INVALID_ARGUMENT', 'an update is sent as application/json', {
              found: type || 'nothing',
            });
          }
          const body = await readBody(ctx.req, options.bodyLimit);
          const uploads = parseUpdateBody(body);
          const result = await store.publish(route.gun, uploads, await auditContext(ctx));
          pending.recorded = true;
          metrics.publishes.inc();
          ctx.body = { gun: route.gun, versions: result.versions };
          return;
        }
        if (ctx.method === 'DELETE') {
          const pending = auditing(ctx, 'delete', route.gun);
          await allowed(route.gun, 'delete', ctx);
          if (!(await store.deleteCollection(route.gun, await auditContext(ctx)))) {
            throw new TufaError('NOT_FOUND', `${route.gun}: no such collection`);
          }
          pending.recorded = true;
          ctx.body = { deleted: route.gun };
          return;
        }
        return methodNotAllowed(ctx, 'POST, DELETE');
      }
      case 'tokens': {
        if (ctx.method === 'POST') {
          const pending = auditing(ctx, 'token.create', undefined);
          await allowed('*', 'admin', ctx);
          const request = parseTokenRequest(await readJsonBody(ctx, ADMIN_BODY));
          const created = await tokens.createAudited(request.name, request.scopes, await auditContext(ctx));
          pending.recorded = true;
          ctx.status = 201;
          ctx.set('Cache-Control', 'no-store');
          ctx.body = { ...created.info, token: created.token };
          return;
        }
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD, POST');
        await allowed('*', 'admin', ctx);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { tokens: await tokens.list() };
        return;
      }
      case 'token': {
        if (ctx.method !== 'DELETE') return methodNotAllowed(ctx, 'DELETE');
        const pending = auditing(ctx, 'token.revoke', undefined);
        await allowed('*', 'admin', ctx);
        const name = route.name;
        const revoked = await tokens.revokeAudited(name, await auditContext(ctx));
        if (!revoked) throw new TufaError('NOT_FOUND', `no live token named ${name}`);
        pending.recorded = true;
        ctx.body = { revoked: name };
        return;
      }
      case 'audit': {
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD');
        await allowed('*', 'admin', ctx);
        const gun = ctx.query.gun;
        if (gun !== undefined && typeof gun !== 'string') {
          throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'gun is given once');
        }
        const since = ctx.query.since;
        if (since !== undefined && typeof since !== 'string') {
          throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'since is given once');
        }
        const after = decimalParam(ctx.query.after, 'after', 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = decimalParam(ctx.query.limit, 'limit', 1, 1000, 100);
        const rows = await listAudit(store.pool, {
          gun: gun === undefined ? undefined : checkGun(gun),
          since: since === undefined ? undefined : parseSince(since, store.now()),
          after: String(after),
          limit,
        });
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { count: rows.length, records: rows };
        return;
      }
    }
  }

  /** Routes that read no body refuse one; the others are bounded when read. */
  function refuseLargeBody(ctx: Koa.Context, route: Route | undefined): void {
    if (route?.kind === 'collection' && ctx.method === 'POST') return;
    const limit = route?.kind === 'tokens' && ctx.method === 'POST' ? ADMIN_BODY : SMALL_BODY;
    const declared = ctx.get('content-length');
    const chunked = ctx.get('transfer-encoding') !== '';
    if ((declared !== '' && Number(declared) > limit) || (chunked && limit === SMALL_BODY)) {
      throw new HttpStatusError(413, 'TOO_LARGE', `this route takes a body of at most ${limit} bytes`, {
        limit,
      });
    }
  }

  async function readJsonBody(ctx: Koa.Context, limit: number): Promise<unknown> {
    const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new HttpStatusError(415, 'INVALID_ARGUMENT', 'send application/json', {
        found: type || 'nothing',
      });
    }
    return parseJson(await readBody(ctx.req, limit), { source: 'request body' });
  }

  return app;
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
