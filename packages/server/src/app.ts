/** The Koa application: Notary's routes over the store, JSON errors, request ids, metrics. */
import { randomUUID } from 'node:crypto';
import { isTufaError, keyToJson, TufaError } from '@tufa/core';
import Koa from 'koa';
import type { Logger } from 'pino';
import {
  errorBody,
  HttpStatusError,
  parseRoute,
  parseUpdateBody,
  type Route,
  readBody,
  statusOf,
} from './http.js';
import type { Metrics } from './metrics.js';
import type { Store } from './store.js';

export type Action = 'read' | 'write';

/**
 * Decides whether a request may read or write a collection. The default allows everything;
 * the access-control layer replaces it. A GET of an online key creates one only for writers.
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
  authorize?: Authorizer;
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

export function createApp(options: AppOptions): Koa {
  const { store, metrics } = options;
  const authorize: Authorizer = options.authorize ?? (() => true);
  const app = new Koa();
  app.silent = true;
  app.proxy = false;

  const allowed = async (gun: string, action: Action, ctx: Koa.Context) => {
    if (!(await authorize({ gun, action, ctx }))) {
      throw new HttpStatusError(403, 'INVALID_ARGUMENT', `not allowed to ${action} ${gun}`);
    }
  };

  app.use(async (ctx) => {
    const started = process.hrtime.bigint();
    const given = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', requestId);
    const log = options.logger.child({ req_id: requestId });
    let route: Route | undefined;
    try {
      route = parseRoute(ctx.path);
      await handle(ctx, route);
    } catch (err) {
      const tufa = isTufaError(err) ? err : undefined;
      if (tufa !== undefined && statusOf(tufa) < 500) {
        ctx.status = statusOf(tufa);
        ctx.body = errorBody(tufa);
        metrics.refusals.inc({ code: tufa.code });
        log.info({ code: tufa.code, msg_detail: tufa.message }, 'refused');
      } else {
        log.error({ err }, 'request failed');
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
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const name = routeName(route);
      metrics.requests.inc({ route: name, method: ctx.method, status: String(ctx.status) });
      metrics.latency.observe({ route: name }, seconds);
      log.info(
        {
          method: ctx.method,
          url: ctx.url.slice(0, 512),
          status: ctx.status,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
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
        if (route.gun !== undefined) await allowed(route.gun, 'read', ctx);
        const after = decimalParam(ctx.query.change_id, 'change_id', 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = decimalParam(ctx.query.records, 'records', 1, 1000, 100);
        const records = await store.changes({ gun: route.gun, after: String(after), limit });
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { count: records.length, records };
        return;
      }
      case 'metadata': {
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD');
        await allowed(route.gun, 'read', ctx);
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
        const match = ctx.get('if-none-match');
        if (
          match !== '' &&
          match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*')
        ) {
          ctx.status = 304;
          return;
        }
        ctx.body = file.bytes;
        ctx.set('Content-Type', 'application/json');
        return;
      }
      case 'key': {
        if (ctx.method === 'POST') {
          await allowed(route.gun, 'write', ctx);
          const key = await store.rotateOnlineKey(route.gun, route.role);
          ctx.body = keyToJson(key);
          return;
        }
        if (!read) return methodNotAllowed(ctx, 'GET, HEAD, POST');
        await allowed(route.gun, 'read', ctx);
        const mayWrite = await authorize({ gun: route.gun, action: 'write', ctx });
        const key = await store.getOnlineKey(route.gun, route.role, mayWrite);
        if (key === undefined) throw new TufaError('NOT_FOUND', `${route.gun}: no ${route.role} key`);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = keyToJson(key);
        return;
      }
      case 'collection': {
        if (ctx.method === 'POST') {
          await allowed(route.gun, 'write', ctx);
          const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
          if (type !== 'application/json') {
            await readBody(ctx.req, options.bodyLimit).catch(() => undefined);
            throw new HttpStatusError(415, 'INVALID_ARGUMENT', 'an update is sent as application/json', {
              found: type || 'nothing',
            });
          }
          const body = await readBody(ctx.req, options.bodyLimit);
          const uploads = parseUpdateBody(body);
          const result = await store.publish(route.gun, uploads);
          metrics.publishes.inc();
          ctx.body = { gun: route.gun, versions: result.versions };
          return;
        }
        if (ctx.method === 'DELETE') {
          await allowed(route.gun, 'write', ctx);
          if (!(await store.deleteCollection(route.gun))) {
            throw new TufaError('NOT_FOUND', `${route.gun}: no such collection`);
          }
          ctx.body = { deleted: route.gun };
          return;
        }
        return methodNotAllowed(ctx, 'POST, DELETE');
      }
    }
  }

  return app;
}
