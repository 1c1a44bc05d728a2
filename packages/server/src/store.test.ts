import { TufaError } from '@tufa/core';
import { testCrypto } from '@tufa/testing';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpStatusError } from './http.js';
import { Store } from './store.js';

// A pool that is never connected: the refusal comes before the database.
const pool = new pg.Pool({ host: '127.0.0.1', port: 1 });
afterAll(() => pool.end());

describe('Store', () => {
  it('refuses a document over the size limit with core code TOO_LARGE, no HTTP status, before the database', async () => {
    const store = new Store({
      crypto: testCrypto,
      pool,
      masterKey: Buffer.alloc(32),
      timestampExpiry: 1000,
      snapshotExpiry: 1000,
      maxMetadataSize: 10,
    });
    const err = await store
      .publish('example.com/app', new Map([['targets', new Uint8Array(11)]]))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TufaError);
    expect(err).not.toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ code: 'TOO_LARGE', details: { role: 'targets', limit: 10 } });
    expect(pool.totalCount).toBe(0);
  });
});
