/**
 * The `tufa` binary's first line of defence: one GUN grammar checked before any disk or network
 * work, local files that cannot be read (FILE_UNREADABLE, exit 5), and bad key files (exit 2)
 * that name the path and the format expected. Against a real tufa-server (embedded database).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const SHA_A = `sha256:${'a'.repeat(64)}`;

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

describe('GUNs, local files and key files (tufa against tufa-server, embedded)', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let url: string;
  /** A server URL nothing listens on: a command that reached the network would exit 3. */
  let deadUrl: string;
  const homes: Home[] = [];
  const home = (
    server = url,
    env: Record<string, string> = { ...PASSPHRASES, TUFA_TOKEN: backend.token },
  ) => {
    const h = new Home(server, env);
    homes.push(h);
    return h;
  };

  beforeAll(async () => {
    backend = await startBackend('embedded');
    url = backend.server.url;
    deadUrl = `http://127.0.0.1:${await freePort()}`;
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backend?.stop();
  });

  it('every command taking a GUN refuses one outside the grammar before any disk or network work', async () => {
    const h = home(deadUrl);
    const keyFile = join(h.dir, 'absent.pub');
    const commands = (g: string): string[][] => [
      ['init', g],
      ['add', g, 'v1', '--digest', SHA_A, '--length', '1'],
      ['remove', g, 'v1'],
      ['reset', g],
      ['lookup', g, 'v1'],
      ['verify', g, 'v1', '--digest', SHA_A],
      ['list', g],
      ['publish', g],
      ['status', g],
      ['renew', g],
      ['delegation', 'add', g, 'releases', '--key', keyFile, '--paths', 'releases/*'],
      ['delegation', 'remove', g, 'releases'],
      ['delegation', 'list', g],
      ['key', 'generate', '--gun', g],
      ['key', 'rotate', g, 'targets'],
      ['key', 'add', g, 'targets', keyFile],
      ['key', 'remove', g, 'targets', 'a'.repeat(64)],
      ['threshold', 'set', g, 'targets', '1'],
      ['pending', 'list', g],
      ['pending', 'drop', g, 'targets'],
      ['sign', g, 'targets'],
    ];
    const refusals: [string, RegExp][] = [
      ['example.com/../x', /dot segment \.\./],
      ['example.com//x', /empty segment/],
      ['Example.com/App', /uppercase/],
      ['%2e%2e/x', /percent-encoded/],
      ['example.com/app:latest', /no tag/],
    ];
    for (const [gun, reason] of refusals) {
      for (const args of commands(gun)) {
        const r = await h.run(args);
        expect(r.code, `tufa ${args.join(' ')}\n${r.stderr}`).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(/^tufa: INVALID_ARGUMENT: invalid GUN "/);
        expect(r.stderr, args.join(' ')).toMatch(reason);
      }
    }
    const json = await h.run(['list', 'example.com/../x', '--json']);
    expect(JSON.parse(json.stdout).error).toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { gun: 'example.com/../x', reason: 'dot segment ..' },
    });
    // Nothing was written: no key, no staged change, no cache, no pinned root.
    expect(readdirSync(h.dir)).toEqual([]);
  });

  it("`tufa init 'example.com/../x'` creates no collection x on the server (the name is never normalised)", async () => {
    const h = home();
    const r = await h.run(['init', 'example.com/../x']);
    expect(r.code).toBe(2);
    for (const gun of ['x', 'example.com/x', 'example.com/../x']) {
      expect((await fetch(`${url}/v2/${gun}/_trust/tuf/root.json`)).status, gun).not.toBe(200);
    }
    expect((await fetch(`${url}/v2/x/_trust/tuf/root.json`)).status).toBe(404);
    expect(readdirSync(h.dir)).toEqual([]);
  });

  it('a registry host with a port is an ordinary GUN: init, add, publish, list, lookup, verify, status', async () => {
    const gun = 'registry.example.com:5000/team/app';
    const pub = home();
    const init = await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '42']);
    await pub.ok(['publish', gun]);
    expect((await pub.json(['status', gun])).gun).toBe(gun);
    const reader = home(url, {});
    const pin = ['--root-key', init.root.keyid, '--no-tofu'];
    expect((await reader.json(['list', gun, ...pin])).map((t: { tag: string }) => t.tag)).toEqual(['v1']);
    expect((await reader.ok(['lookup', gun, 'v1', ...pin])).trim()).toBe(SHA_A);
    expect((await reader.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin])).code).toBe(0);
    // The server holds it under exactly that name, not percent-encoded.
    expect((await fetch(`${url}/v2/${gun}/_trust/tuf/root.json`)).status).toBe(200);
  });

  it('a local file that cannot be read is FILE_UNREADABLE (exit 5) with its path, never NOT_FOUND or INTERNAL', async () => {
    const h = home(deadUrl);
    const missing = join(h.dir, 'nonexistent');
    const cases: string[][] = [
      ['key', 'import', missing],
      // The file is opened first: the dead server is never asked.
      ['verify', 'example.com/app', 'v1', '--file', missing],
      ['add', 'example.com/app', 'v1', missing],
      ['lookup', 'example.com/app', 'v1', '--trust-root', missing],
      ['lookup', 'example.com/app', 'v1', '--ca-file', missing],
      ['delegation', 'add', 'example.com/app', 'releases', '--key', missing, '--paths', 'releases/*'],
    ];
    for (const args of cases) {
      const r = await h.run([...args, '--json']);
      expect(r.code, `tufa ${args.join(' ')}\n${r.stderr}`).toBe(5);
      expect(JSON.parse(r.stdout).error, args.join(' ')).toMatchObject({
        code: 'FILE_UNREADABLE',
        details: { path: missing, reason: 'ENOENT' },
      });
      expect(r.stderr).toContain(`cannot read ${missing}: no such file`);
    }
    const folder = join(h.dir, 'a-folder');
    mkdirSync(folder);
    const dir = await h.run(['key', 'import', folder]);
    expect(dir.code).toBe(5);
    expect(dir.stderr).toMatch(/FILE_UNREADABLE: .*a-folder: a directory, not a file/);
  });

  it('a bad key file is INVALID_KEY (exit 2): the message names the path and the format expected', async () => {
    const h = home();
    const notJson = join(h.dir, 'notjson.key');
    writeFileSync(notJson, 'this is not a key\n');
    const imported = await h.run(['key', 'import', notJson]);
    expect(imported.code, imported.stderr).toBe(2);
    expect(imported.stderr).toMatch(
      new RegExp(`^tufa: INVALID_KEY: ${notJson}: not JSON .*expected a private key file written by`),
    );
    const delegated = await h.run([
      'delegation',
      'add',
      'example.com/app',
      'r',
      '--key',
      notJson,
      '--paths',
      'r/*',
    ]);
    expect(delegated.code, delegated.stderr).toBe(2);
    expect(delegated.stderr).toMatch(
      new RegExp(`INVALID_KEY: ${notJson}: not JSON .*expected a public key file`),
    );

    // A public key given to key import: said so, with the path; no literal ellipsis for a key id.
    const generated = await h.json(['key', 'generate', '--role', 'delegation']);
    const pubFile = join(h.dir, 'badkey.pub');
    writeFileSync(pubFile, await h.ok(['key', 'export', generated.keyid]));
    const pub = await h.run(['key', 'import', pubFile]);
    expect(pub.code).toBe(2);
    expect(pub.stderr).toMatch(
      new RegExp(`^tufa: INVALID_KEY: ${pubFile}: a public key, not a private key file`),
    );
    expect(pub.stderr).toContain('tufa key export KEYID --private');
    expect(pub.stderr).not.toContain('…');
    const other = join(h.dir, 'other.json');
    writeFileSync(other, '{"hello": "world"}');
    const odd = await h.run(['key', 'import', other]);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(
      new RegExp(`^tufa: INVALID_KEY: ${other}: no "tufa_key": 1; expected a private key file`),
    );
    expect(odd.stderr).not.toContain('…');
  });
});
