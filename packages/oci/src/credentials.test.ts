import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dockerConfigKey, dockerCredentials, staticCredentials, withoutTufaSecrets } from './credentials.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A DOCKER_CONFIG folder with this config.json, and a helper `docker-credential-t` answering for `answers`. */
function dockerConfig(config: unknown, answers: Record<string, [string, string]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-docker-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const script = Object.entries(answers)
    .map(
      ([url, [u, s]]) =>
        `[ "$url" = '${url}' ] && { printf '{"Username":"%s","Secret":"%s"}' '${u}' '${s}'; exit 0; }`,
    )
    .join('\n');
  writeFileSync(
    join(bin, 'docker-credential-t'),
    `#!/bin/sh\nurl=$(cat)\n${script}\necho 'credentials not found in native keychain'; exit 1\n`,
  );
  chmodSync(join(bin, 'docker-credential-t'), 0o755);
  return dockerCredentials({ env: { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH ?? ''}` } });
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe("Docker's credentials", () => {
  it('auths: by host, with or without a scheme; Docker Hub under its index URL', async () => {
    const auth = (u: string, p: string) => ({ auth: Buffer.from(`${u}:${p}`).toString('base64') });
    const source = dockerConfig({
      auths: {
        'https://reg.example.com': auth('a', 'pa:ss'),
        'https://index.docker.io/v1/': auth('hub', 'hubpw'),
        'other.example.com': { username: 'o', password: 'op' },
      },
    });
    expect(await source('reg.example.com')).toEqual({
      username: 'a',
      password: 'pa:ss',
      source: expect.any(String),
    });
    expect(await source('docker.io')).toMatchObject({ username: 'hub', password: 'hubpw' });
    expect(await source('other.example.com')).toMatchObject({ username: 'o', password: 'op' });
    expect(await source('none.example.com')).toBeUndefined();
    expect(dockerConfigKey('docker.io')).toBe('https://index.docker.io/v1/');
  });

  it('credHelpers before credsStore before auths; a helper with nothing is anonymous', async () => {
    const source = dockerConfig(
      {
        credsStore: 't',
        credHelpers: { 'pinned.example.com': 't' },
        auths: { 'store.example.com': { username: 'never', password: 'used' } },
      },
      {
        'pinned.example.com': ['p', 'pp'],
        'store.example.com': ['s', 'sp'],
        'https://index.docker.io/v1/': ['h', 'hp'],
      },
    );
    expect(await source('pinned.example.com')).toMatchObject({
      username: 'p',
      password: 'pp',
      source: 'docker-credential-t',
    });
    expect(await source('store.example.com')).toMatchObject({ username: 's', password: 'sp' });
    expect(await source('docker.io')).toMatchObject({ username: 'h' });
    expect(await source('unknown.example.com')).toBeUndefined();
  });

  it('refuses what it cannot use, never quoting a secret: identity tokens, a missing helper, a bad auth', async () => {
    const token = dockerConfig({ auths: { 'reg.example.com': { identitytoken: 'refresh-secret' } } });
    const err = await token('reg.example.com').catch((e: Error) => e);
    expect((err as { code?: string }).code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).not.toContain('refresh-secret');
    expect(await codeOf(dockerConfig({ credsStore: 'missing' })('reg.example.com'))).toBe('INVALID_ARGUMENT');
    expect(
      await codeOf(
        dockerConfig({ auths: { 'reg.example.com': { auth: 'bm9jb2xvbg==' } } })('reg.example.com'),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(await dockerCredentials({ env: {} })('reg.example.com')).toBeUndefined();
    expect(() => staticCredentials('a:b', 'x', 'flag')).toThrow(/user name/);
  });
});

describe('the environment of a program tufa runs', () => {
  it('holds none of tufa’s secrets: passphrases, passwords, tokens, a token PIN, a master key', () => {
    const env = {
      PATH: '/usr/bin',
      TUFA_ROOT_PASSPHRASE: 'p',
      TUFA_REGISTRY_PASSWORD: 'p',
      TUFA_TOKEN: 't',
      TUFA_PKCS11_PIN: '123456',
      TUFA_ONLINE_KEYS_PIN: '123456',
      TUFA_MASTER_KEY: 'k',
      TUFA_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      TUFA_HOME: '/home/a/.tufa',
    };
    expect(withoutTufaSecrets(env)).toEqual({
      PATH: '/usr/bin',
      TUFA_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      TUFA_HOME: '/home/a/.tufa',
    });
  });
});
