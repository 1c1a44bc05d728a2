import type { TufaError } from '@tufa/core';
import { codeOf as code } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { FailureLimiter } from './auth.js';
import { parseCommandLine } from './config.js';
import { checkTokenName, globMatches, grants, isAdmin, newToken, parseScope, splitToken } from './tokens.js';

describe('scopes', () => {
  it('parses ACTION:GLOB strictly', () => {
    expect(parseScope('push:acme/*')).toEqual({ action: 'push', glob: 'acme/*' });
    expect(parseScope('pull:*')).toEqual({ action: 'pull', glob: '*' });
    expect(parseScope('admin:*')).toEqual({ action: 'admin', glob: '*' });
    // The GUN grammar is core's: a registry host with a port, a * for a whole segment anywhere.
    expect(parseScope('push:registry.example.com:5000/*')).toEqual({
      action: 'push',
      glob: 'registry.example.com:5000/*',
    });
    expect(parseScope('pull:*/team/*')).toEqual({ action: 'pull', glob: '*/team/*' });
    for (const bad of [
      'push:Acme/*',
      'push:acme/%2e%2e',
      'push:acme/*x',
      'push',
      'write:acme/*',
      'push:',
      'push:acme*',
      'push:acme//app',
      'push:../x',
      'push:a/_trust',
      'push:acme/app/',
      `pull:${'a'.repeat(256)}`,
    ]) {
      expect(
        code(() => parseScope(bad)),
        bad,
      ).toBe('INVALID_ARGUMENT');
    }
  });

  it('acme/* matches acme/app and deeper, never acmecorp/app or acme itself', () => {
    expect(globMatches('acme/*', 'acme/app')).toBe(true);
    expect(globMatches('acme/*', 'acme/team/app')).toBe(true);
    expect(globMatches('acme/*', 'acmecorp/app')).toBe(false);
    expect(globMatches('acme/*', 'acme')).toBe(false);
    expect(globMatches('acme/app', 'acme/app')).toBe(true);
    expect(globMatches('acme/app', 'acme/app2')).toBe(false);
    expect(globMatches('acme/app', 'acme/app/x')).toBe(false);
    expect(globMatches('*', 'anything/at/all')).toBe(true);
    expect(globMatches('*/app', 'acme/app')).toBe(true);
    expect(globMatches('*/app', 'acme/web')).toBe(false);
    expect(globMatches('*/app', 'x/acme/app')).toBe(false);
  });

  it('push grants pull, admin grants everything, delete grants only delete', () => {
    const push = [parseScope('push:acme/*')];
    expect(grants(push, 'push', 'acme/app')).toBe(true);
    expect(grants(push, 'pull', 'acme/app')).toBe(true);
    expect(grants(push, 'delete', 'acme/app')).toBe(false);
    expect(grants(push, 'push', 'acmecorp/app')).toBe(false);
    const del = [parseScope('delete:acme/*')];
    expect(grants(del, 'delete', 'acme/app')).toBe(true);
    expect(grants(del, 'pull', 'acme/app')).toBe(false);
    const pull = [parseScope('pull:*')];
    expect(grants(pull, 'push', 'acme/app')).toBe(false);
    const admin = [parseScope('admin:acme/*')];
    expect(grants(admin, 'delete', 'acme/app')).toBe(true);
    expect(isAdmin(admin)).toBe(false);
    expect(isAdmin([parseScope('admin:*')])).toBe(true);
  });

  it('token names are short and plain', () => {
    expect(checkTokenName('ci-deploy.1')).toBe('ci-deploy.1');
    for (const bad of ['', '-x', 'a b', 'a/b', 'x'.repeat(65), 'é']) {
      expect(
        code(() => checkTokenName(bad)),
        bad,
      ).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('tokens', () => {
  it('a token carries a public id and a secret; only the secret hash is kept', () => {
    const made = newToken();
    expect(made.token).toMatch(/^tufa_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const split = splitToken(made.token)!;
    expect(split.tokenId).toBe(made.tokenId);
    expect(split.secretHash.equals(made.secretHash)).toBe(true);
    expect(made.secretHash.toString('hex')).not.toContain(made.token.slice(-43));
    expect(splitToken(`${made.token}x`)).toBeUndefined();
    expect(splitToken('tufa_0123_abc')).toBeUndefined();
    expect(newToken().token).not.toBe(made.token);
  });
});

describe('failed-authentication limiter', () => {
  it('allows `limit` failures per window per address, then says how long to wait', () => {
    let now = 1_000_000;
    const limiter = new FailureLimiter(3, 10_000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfter('a')).toBeUndefined();
      limiter.fail('a');
      now += 1000;
    }
    expect(limiter.retryAfter('a')).toBe(7);
    expect(limiter.retryAfter('b')).toBeUndefined();
    now += 7000;
    expect(limiter.retryAfter('a')).toBeUndefined();
  });
});

describe('configuration', () => {
  it('reads the access and TLS options, and refuses half a TLS setup', () => {
    const { config } = parseCommandLine(
      ['--require-auth-for-pull', '--auth-fail-limit', '5', '--max-delegated-roles', '7'],
      { TUFA_MAX_METADATA_SIZE: '2m', TUFA_ALLOW_ANONYMOUS_WRITES: 'no' },
    );
    expect(config.requireAuthForPull).toBe(true);
    expect(config.allowAnonymousWrites).toBe(false);
    expect(config.authFailLimit).toBe(5);
    expect(config.maxDelegatedRoles).toBe(7);
    expect(config.maxMetadataSize).toBe(2 * 1024 * 1024);
    expect(config.maxConcurrentPerAddress).toBe(64);
    const refused = (argv: string[]) => {
      try {
        parseCommandLine(argv, {});
      } catch (err) {
        return (err as TufaError).code;
      }
      return 'accepted';
    };
    expect(refused(['--tls-cert', 'c.pem'])).toBe('INVALID_ARGUMENT');
    expect(refused(['--tls-client-ca', 'ca.pem'])).toBe('INVALID_ARGUMENT');
    expect(refused(['token', 'create', '--name', 'x'])).toBe('INVALID_ARGUMENT');
    expect(refused(['token', 'revoke'])).toBe('INVALID_ARGUMENT');
    expect(refused(['audit', '--scope', 'pull:*'])).toBe('INVALID_ARGUMENT');
    expect(refused(['token', 'list', '--gun', 'x'])).toBe('INVALID_ARGUMENT');
  });

  it('parses the administration commands', () => {
    const create = parseCommandLine(
      ['token', 'create', '--name', 'ci', '--scope', 'push:acme/*', '--scope', 'pull:*'],
      {},
    );
    expect(create.command).toBe('token-create');
    expect(create.admin).toMatchObject({ name: 'ci', scopes: ['push:acme/*', 'pull:*'] });
    expect(parseCommandLine(['token', 'revoke', 'ci'], {}).admin.name).toBe('ci');
    const audit = parseCommandLine(['audit', '--gun', 'acme/app', '--since', '24h', '--json'], {});
    expect(audit).toMatchObject({ command: 'audit', admin: { gun: 'acme/app', since: '24h', json: true } });
  });
});

describe('admin routes', () => {
  it('parse strictly and never as a GUN', async () => {
    const { parseRoute } = await import('./routes.js');
    expect(parseRoute('/v2/_admin/tokens')).toEqual({ kind: 'tokens' });
    expect(parseRoute('/v2/_admin/tokens/ci-1')).toEqual({ kind: 'token', name: 'ci-1' });
    expect(parseRoute('/v2/_admin/audit')).toEqual({ kind: 'audit' });
    expect(code(() => parseRoute('/v2/_admin/tokens/a%2Fb'))).toBe('INVALID_ARGUMENT');
    expect(parseRoute('/v2/_admin/tokens/')).toBeUndefined();
    // Not a token route, and no collection either: a GUN segment never starts with '_'.
    expect(code(() => parseRoute('/v2/_admin/tokens/_trust/tuf/root.json'))).toBe('INVALID_ARGUMENT');
  });
});
