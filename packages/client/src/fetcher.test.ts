import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS, download, type FetchLike } from './fetcher.js';

const base = { role: 'timestamp', timeouts: { ...DEFAULT_TIMEOUTS }, total: true };

function respond(body: ConstructorParameters<typeof Response>[0], init: ResponseInit = {}): FetchLike {
  return async () => new Response(body, init);
}

describe('download', () => {
  it('returns the body within the bound', async () => {
    const bytes = await download('http://127.0.0.1/x', { ...base, maxBytes: 5, fetch: respond('hello') });
    expect(new TextDecoder().decode(bytes)).toBe('hello');
  });

  it('refuses a declared length above the bound before reading', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(10));
      },
    });
    const fetch = respond(body, { headers: { 'content-length': '1000000' } });
    await expect(download('http://127.0.0.1/x', { ...base, maxBytes: 100, fetch })).rejects.toMatchObject({
      code: 'TOO_LARGE',
      found: 1000000,
    });
    expect(pulled).toBeLessThanOrEqual(2);
  });

  it('cuts an undeclared endless body at the bound', async () => {
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1024));
      },
    });
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 4096, fetch: respond(body) }),
    ).rejects.toMatchObject({ code: 'TOO_LARGE', role: 'timestamp' });
  });

  it('maps 404 and 403 to NOT_FOUND, other statuses and failures to NETWORK', async () => {
    for (const status of [404, 403]) {
      await expect(
        download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: respond(null, { status }) }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND', details: { status } });
    }
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: respond('no', { status: 500 }) }),
    ).rejects.toMatchObject({ code: 'NETWORK', details: { status: 500 } });
    const failing: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') });
    };
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: failing }),
    ).rejects.toMatchObject({
      code: 'NETWORK',
      message: expect.stringContaining('ECONNREFUSED'),
    });
  });

  it('times out waiting for headers, between chunks, and on a slow average rate', async () => {
    const never: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) =>
        init.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    const timeouts = {
      ...DEFAULT_TIMEOUTS,
      connectMs: 50,
      idleMs: 50,
      rateGraceMs: 100,
      minBytesPerSecond: 1000,
    };
    await expect(
      download('http://127.0.0.1/x', { ...base, timeouts, maxBytes: 10, fetch: never }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', details: { guard: 'connect timeout (ms)' } });
    const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    await expect(
      download('http://127.0.0.1/x', { ...base, timeouts, maxBytes: 10, fetch: respond(stalled) }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', details: { guard: 'idle time between chunks (ms)' } });
    let cancelled = false;
    const trickle = new ReadableStream<Uint8Array>({
      pull: (controller) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            if (!cancelled) controller.enqueue(new Uint8Array(1));
            resolve();
          }, 20),
        ),
      cancel: () => {
        cancelled = true;
      },
    });
    await expect(
      download('http://127.0.0.1/x', { ...base, timeouts, maxBytes: 1000, fetch: respond(trickle) }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', details: { guard: 'minimum average rate (bytes/s)' } });
  });
});
