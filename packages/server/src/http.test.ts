import { execFileSync } from 'node:child_process';
import { ERROR_CODES, ERROR_TABLE, TufaError, utf8Encode } from '@tufa/core';
import { codeOf } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommandLine, parseDuration, parseSize } from './config.js';
import { checkGun, errorBody, HttpStatusError, parseUpdateBody, statusOf } from './http.js';
import { decryptSecret, encryptSecret, keyAad, loadMasterKey, parseMasterKey } from './onlinekeys.js';
import { parseRoute } from './routes.js';

describe('GUNs and routes', () => {
  it('accepts registry-style GUNs and refuses the rest with 400', () => {
    for (const ok of [
      'registry.example.com/team/app',
      'registry.example.com:5000/team/app',
      'a',
      'a-b_c.d/e',
      'x'.repeat(255),
    ]) {
      expect(checkGun(ok)).toBe(ok);
    }
    for (const bad of [
      '',
      '../x',
      'a//b',
      'a/./b',
      'a/',
      '/a',
      'x'.repeat(256),
      'café',
      'a b',
      'a%2Fb',
      'a/_trust',
      '_admin/tokens',
      'A-b/c',
      '%2e%2e/x',
      'a\\b',
    ]) {
      let status = 0;
      try {
        checkGun(bad);
      } catch (err) {
        status = statusOf(err as HttpStatusError);
        expect((err as HttpStatusError).code).toBe('INVALID_ARGUMENT');
      }
      expect(status, bad).toBe(400);
    }
  });

  it('parses Notary routes', () => {
    expect(parseRoute('/v2/a/b/_trust/tuf/root.json')).toEqual({
      kind: 'metadata',
      gun: 'a/b',
      role: 'root',
    });
    expect(parseRoute('/v2/a/_trust/tuf/3.targets.json')).toEqual({
      kind: 'metadata',
      gun: 'a',
      role: 'targets',
      version: 3,
    });
    expect(parseRoute('/v2/a/_trust/tuf/targets%2Freleases.json')).toEqual({
      kind: 'metadata',
      gun: 'a',
      role: 'targets/releases',
    });
    expect(parseRoute('/v2/a/_trust/tuf/timestamp.key')).toEqual({
      kind: 'key',
      gun: 'a',
      role: 'timestamp',
    });
    expect(parseRoute('/v2/registry.example.com:5000/team/app/_trust/tuf/root.json')).toEqual({
      kind: 'metadata',
      gun: 'registry.example.com:5000/team/app',
      role: 'root',
    });
    expect(codeOf(() => parseRoute('/v2/registry.example.com%3A5000/app/_trust/tuf/root.json'))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(parseRoute('/v2/a/_trust/tuf/')).toEqual({ kind: 'collection', gun: 'a' });
    expect(parseRoute('/v2/a/_trust/tuf')).toEqual({ kind: 'collection', gun: 'a' });
    expect(parseRoute('/v2/_trust/changefeed')).toEqual({ kind: 'changefeed' });
    expect(parseRoute('/v2/a/b/_trust/changefeed')).toEqual({ kind: 'changefeed', gun: 'a/b' });
    expect(parseRoute('/_health')).toEqual({ kind: 'health' });
    expect(parseRoute('/elsewhere')).toBeUndefined();
    expect(codeOf(() => parseRoute('/v2/a/_trust/tuf/root.key'))).toBe('NOT_FOUND');
    expect(codeOf(() => parseRoute('/v2/a/_trust/tuf/%E0%A4%A.json'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseRoute('/v2/a/_trust/tuf/..%2Fx.json'))).toBe('INVALID_ARGUMENT');
  });
});

describe('update bodies', () => {
  it('cuts each document out of the body byte for byte', () => {
    const a = '{"signed":{"x":"\\"}{","y":"\\\\","z":"\\\\\\"}"},"signatures":[]}';
    const b = '{"signed":{"y":[1,{"z":"é"}]},"signatures":[]}';
    const uploads = parseUpdateBody(utf8Encode(` {"root": ${a} ,\n "targets/r":${b}}`));
    expect([...uploads.keys()]).toEqual(['root', 'targets/r']);
    expect(new TextDecoder().decode(uploads.get('root'))).toBe(a);
    expect(new TextDecoder().decode(uploads.get('targets/r'))).toBe(b);
  });

  it('property: any documents, any whitespace between members, come back byte for byte', () => {
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.string({ unit: 'grapheme' }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 }),
      ),
    }));
    const space = fc.constantFrom('', ' ', '\n', '\t ', '\r\n');
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1 }), fc.tuple(value, space, space), { minKeys: 1 }),
        (docs) => {
          const members = Object.entries(docs).map(
            ([role, [doc, a, b]]) => `${a}${JSON.stringify(role)}${b}:${a}${JSON.stringify(doc)}${b}`,
          );
          const uploads = parseUpdateBody(utf8Encode(`{${members.join(',')}}`));
          expect([...uploads.keys()]).toEqual(Object.keys(docs));
          for (const [role, [doc]] of Object.entries(docs)) {
            expect(new TextDecoder().decode(uploads.get(role))).toBe(JSON.stringify(doc));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses bad JSON, duplicate roles and non-objects', () => {
    expect(codeOf(() => parseUpdateBody(utf8Encode('{"root":')))).toBe('INVALID_JSON');
    expect(codeOf(() => parseUpdateBody(utf8Encode('{"root":{},"root":{}}')))).toBe('INVALID_JSON');
    expect(codeOf(() => parseUpdateBody(utf8Encode('[{}]')))).toBe('INVALID_ARGUMENT');
    for (const bad of [
      '',
      '{',
      '{"root"}',
      '{"root" {}}',
      '{"root":{} "targets":{}}',
      '{"root":{},}',
      '{"root":{}} x',
      '{"root":{}}{}',
      '{"ro\\qt":{}}',
      '{"root":{"a":"unterminated}}',
      '{"root":{"a":[1,2}',
      '{"root":}',
      '{root:{}}',
    ]) {
      expect(
        codeOf(() => parseUpdateBody(utf8Encode(bad))),
        bad,
      ).toBe('INVALID_JSON');
    }
    expect(
      codeOf(() => parseUpdateBody(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x7b, 0x7d, 0x7d]))),
    ).toBe('INVALID_JSON');
  });

  it('hands each document over as the bytes sent, without copying or parsing it', () => {
    const body = utf8Encode('{"targets":{"signed":{"x":"é}{"}},"root":[1,{"a":"]"}]}');
    const uploads = parseUpdateBody(body);
    expect(new TextDecoder().decode(uploads.get('targets'))).toBe('{"signed":{"x":"é}{"}}');
    expect(new TextDecoder().decode(uploads.get('root'))).toBe('[1,{"a":"]"}]');
    expect(uploads.get('targets')!.buffer).toBe(body.buffer);
  });

  it('error bodies carry code, message and details, never a stack', () => {
    const body = errorBody(
      new HttpStatusError(415, 'INVALID_ARGUMENT', 'wrong type', { found: 'text/plain' }),
    );
    expect(body).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: 'wrong type', details: { found: 'text/plain' } },
    });
    expect(JSON.stringify(body)).not.toContain('at ');
  });

  it("a storage refusal's status comes from its core code, decided here at the edge", () => {
    // The store throws core's codes, never an HTTP status: the size limits are 413 …
    expect(statusOf(new TufaError('TOO_LARGE', 'a document over the limit'))).toBe(413);
    expect(statusOf(new TufaError('DELEGATION_LIMIT', 'too many delegated roles'))).toBe(413);
    // … and every other code keeps core's table.
    for (const code of ERROR_CODES.filter((c) => c !== 'DELEGATION_LIMIT')) {
      expect(statusOf(new TufaError(code, 'x')), code).toBe(ERROR_TABLE[code].httpStatus);
    }
    expect(statusOf(new HttpStatusError(415, 'INVALID_ARGUMENT', 'wrong type'))).toBe(415);
  });
});

describe('configuration', () => {
  it('reads flags over environment over defaults', () => {
    const { command, config } = parseCommandLine(['--port', '8080', 'migrate'], {
      TUFA_PORT: '9090',
      TUFA_HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://x@h/db',
    });
    expect(command).toBe('migrate');
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgres://x@h/db',
      dataDir: './tufa-data',
    });
    expect(config.timestampExpiry).toBe(14 * 86_400_000);
    expect(config.pendingExpiry).toBe(7 * 86_400_000);
    expect(parseCommandLine(['--pending-expiry', '2h'], {}).config.pendingExpiry).toBe(2 * 3_600_000);
    expect(parseCommandLine([], { TUFA_PENDING_EXPIRY: '1d' }).config.pendingExpiry).toBe(86_400_000);
    expect(codeOf(() => parseCommandLine(['--pending-expiry', '91d'], {}))).toBe('INVALID_ARGUMENT');
    expect(parseCommandLine([], {}).config.bodyBudget).toBe(64 * 1024 * 1024);
    expect(parseCommandLine([], { TUFA_BODY_BUDGET: '128m' }).config.bodyBudget).toBe(128 * 1024 * 1024);
    expect(parseCommandLine(['--trusted-proxy', '10.0.0.0/8,::1'], {}).config.trustedProxies).toBe(
      '10.0.0.0/8,::1',
    );
    expect(codeOf(() => parseCommandLine([], { TUFA_TRUSTED_PROXY: '10.0.0.0/40' }))).toBe(
      'INVALID_ARGUMENT',
    );
    // A budget below the body limit would refuse the largest body forever.
    expect(codeOf(() => parseCommandLine(['--body-budget', '1m', '--body-limit', '2m'], {}))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(parseCommandLine(['--help'], {}).command).toBe('help');
  });

  it('refuses unknown flags, bad numbers and bad durations', () => {
    expect(codeOf(() => parseCommandLine(['--nope'], {}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCommandLine(['--port', '70000'], {}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCommandLine(['serve', 'x'], {}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCommandLine(['--resign-fraction', '2'], {}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseDuration('5 weeks', 'x'))).toBe('INVALID_ARGUMENT');
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(parseDuration('90', 'x')).toBe(90_000);
    expect(parseSize('32m', 'x')).toBe(32 * 1024 * 1024);
  });
});

describe('online key encryption', () => {
  const master = parseMasterKey('01'.repeat(32), 'test');

  it('AES-256-GCM round-trips and is bound to its row', () => {
    const sealed = encryptSecret(master, utf8Encode('seed'), keyAad('1', 'timestamp', 'abc'));
    expect(decryptSecret(master, sealed, keyAad('1', 'timestamp', 'abc')).toString()).toBe('seed');
    expect(codeOf(() => decryptSecret(master, sealed, keyAad('2', 'timestamp', 'abc')))).toBe('INTERNAL');
    const other = parseMasterKey(Buffer.alloc(32, 7).toString('base64'), 'test');
    expect(codeOf(() => decryptSecret(other, sealed, keyAad('1', 'timestamp', 'abc')))).toBe('INTERNAL');
  });

  it('master keys: 32 bytes only; required with an external database', () => {
    expect(codeOf(() => parseMasterKey('abcd', 'test'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => loadMasterKey({}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => loadMasterKey({ file: '/nonexistent/tufa/master.key' }))).toBe('FILE_UNREADABLE');
    expect(loadMasterKey({ value: 'ff'.repeat(32) }).key.length).toBe(32);
  });
});

describe("node:http's response shape (settleHttpShapes)", () => {
  // Six answers, a full collection, then more: the sequence that left every later response a
  // dictionary (a server idle after its start-up requests). Run in a child: it needs V8's natives
  // syntax and gc(), and a process whose node:http has answered nothing yet.
  const child = (settle: boolean): string[] => {
    const script = `
      import http from 'node:http';
      import { settleHttpShapes } from ${JSON.stringify(new URL('./http.ts', import.meta.url).href)};
      const fast = new Function('o', 'return %HasFastProperties(o)');
      if (${settle}) settleHttpShapes();
      const seen = [];
      const server = http.createServer((req, res) => {
        res.on('close', () => seen.push(fast(res) ? 'fast' : 'dictionary'));
        res.writeHead(200, ['Content-Length', '2']);
        res.end('ok');
      });
      await new Promise((done) => server.listen(0, '127.0.0.1', done));
      const get = () => new Promise((done, fail) =>
        http.get({ port: server.address().port, agent: false }, (r) => r.resume().on('end', done)).on('error', fail));
      for (let i = 0; i < 6; i++) await get();
      globalThis.gc();
      for (let i = 0; i < 6; i++) await get();
      await new Promise((done) => server.close(done));
      process.stdout.write(JSON.stringify(seen));
    `;
    const out = execFileSync(
      process.execPath,
      [
        '--expose-gc',
        '--allow-natives-syntax',
        '--conditions=tufa-source',
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        script,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return JSON.parse(out) as string[];
  };

  it('keeps every response in fast mode after a collection between the first answers', () => {
    expect(child(true)).toEqual(Array(12).fill('fast'));
  });

  it('is needed: without it, the responses after that collection are dictionaries (Node 20)', () => {
    const seen = child(false);
    expect(seen.slice(0, 6)).toEqual(Array(6).fill('fast'));
    expect(seen.slice(6)).toEqual(Array(6).fill('dictionary'));
  });
});
