/** Prometheus metrics (prom-client), in a registry per server so that tests can run several. */

import type pg from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  latency: Histogram<'route'>;
  publishes: Counter;
  refusals: Counter<'code'>;
  resigns: Counter<'role'>;
}

export function createMetrics(
  pool: pg.Pool,
  options: { processMetrics?: boolean; bodyBytesInFlight?: () => number } = {},
): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'tufa_' });
  const pools = [
    ['total', () => pool.totalCount],
    ['idle', () => pool.idleCount],
    ['waiting', () => pool.waitingCount],
  ] as const;
  for (const [name, read] of pools) {
    new Gauge({
      name: `tufa_db_pool_${name}`,
      help: `Database pool clients (${name})`,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
  const inFlight = options.bodyBytesInFlight;
  if (inFlight !== undefined) {
    new Gauge({
      name: 'tufa_http_body_bytes_in_flight',
      help: 'Bytes of request bodies held now, against --body-budget',
      registers: [registry],
      collect() {
        this.set(inFlight());
      },
    });
  }
  return {
    registry,
    requests: new Counter({
      name: 'tufa_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'tufa_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    publishes: new Counter({
      name: 'tufa_publishes_total',
      help: 'Accepted updates of a collection',
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'tufa_refusals_total',
      help: 'Refused requests by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    resigns: new Counter({
      name: 'tufa_resigns_total',
      help: 'Server-signed metadata re-signed before expiry, by role',
      labelNames: ['role'],
      registers: [registry],
    }),
  };
}
