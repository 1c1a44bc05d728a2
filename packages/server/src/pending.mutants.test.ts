/** The pending routes' paths, parsed strictly (by the one route table): the cases mutation testing found unchecked. */
import { TufaError } from '@tufa/core';
import { describe, expect, it } from 'vitest';
import { HttpStatusError } from './http.js';
import { parseRoute } from './routes.js';

const id = 'ab'.repeat(32);

function refusal(path: string): { code: string; message: string; status?: number } {
  try {
    parseRoute(path);
  } catch (err) {
    if (!(err instanceof TufaError)) throw err;
    return err instanceof HttpStatusError
      ? { code: err.code, message: err.message, status: err.status }
      : { code: err.code, message: err.message };
  }
  throw new Error(`${path}: accepted`);
}

describe('the pending routes', () => {
  it('only under /v2/', () => {
    expect(parseRoute('/v1/example.com/app/_trust/pending/')).toBeUndefined();
    expect(parseRoute('/v2/example.com/app/_trust/tuf/')).toEqual({
      kind: 'collection',
      gun: 'example.com/app',
    });
  });

  it('the list with or without its trailing slash', () => {
    // A GUN of another length than '/_trust/pending'.
    expect(parseRoute('/v2/example.com/team/app/_trust/pending')).toEqual({
      kind: 'pending',
      gun: 'example.com/team/app',
    });
    expect(parseRoute('/v2/example.com/app/_trust/pending/')).toEqual({
      kind: 'pending',
      gun: 'example.com/app',
    });
  });

  it('an empty GUN is refused, not ignored', () => {
    expect(refusal('/v2//_trust/pending/').code).toBe('INVALID_ARGUMENT');
  });

  it('one proposal and its signatures, named by exactly 64 hex digits', () => {
    expect(parseRoute(`/v2/example.com/app/_trust/pending/${id}`)).toEqual({
      kind: 'pending_one',
      gun: 'example.com/app',
      id,
    });
    expect(parseRoute(`/v2/example.com/app/_trust/pending/${id}/signatures`)).toEqual({
      kind: 'pending_signatures',
      gun: 'example.com/app',
      id,
    });
    for (const tail of [`x${id}`, `${id}/other`, `${id}/signatures/x`, id.slice(1)]) {
      expect(refusal(`/v2/example.com/app/_trust/pending/${tail}`)).toEqual({
        code: 'NOT_FOUND',
        message: 'a pending update is named by its 64-digit id',
        status: 404,
      });
    }
  });
});
