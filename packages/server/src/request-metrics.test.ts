import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RequestMetrics } from './metrics.js';

describe('the request counter and latency histogram (RequestMetrics)', () => {
  it("render exactly what prom-client's own Counter and Histogram render for the same requests", async () => {
    const ours = new Registry();
    const counted = new RequestMetrics(ours);
    const theirs = new Registry();
    const requests = new Counter({
      name: 'tufa_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [theirs],
    });
    const latency = new Histogram({
      name: 'tufa_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [theirs],
    });
    const seen: [string, string, number, number][] = [];
    // Every bucket's edge, values between them and beyond the last, on several routes, methods and statuses.
    for (const seconds of [0, 0.000_02, 0.005, 0.0051, 0.01, 0.3, 1, 2.5, 9.99, 10, 10.01, 120]) {
      seen.push(['metadata', 'GET', 200, seconds], ['metadata', 'HEAD', 304, seconds / 3]);
      seen.push(['collection', 'POST', 409, seconds * 2], ['unknown', 'GET', 404, seconds]);
    }
    for (const [route, method, status, seconds] of seen) {
      counted.count(route, method, status, seconds);
      requests.inc({ route, method, status: String(status) });
      latency.observe({ route }, seconds);
    }
    const lines = async (r: Registry) => (await r.metrics()).split('\n').sort();
    expect(await lines(ours)).toEqual(await lines(theirs));
    expect(await ours.metrics()).toContain(
      'tufa_http_requests_total{route="metadata",method="HEAD",status="304"} 12',
    );
  });
});
