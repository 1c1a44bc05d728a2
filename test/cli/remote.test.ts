/** What the CLI takes from a server's error answer: its refusals, never a claim about this machine. */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Home, PASSPHRASES } from './harness.test-util.js';

let server: Server;
let url: string;
let answer: { status: number; body: unknown };

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address() as { port: number };
  url = `http://127.0.0.1:${address.port}`;
});

afterAll(() => {
  server.close();
});

it("a server's FILE_UNREADABLE or INTERNAL is not taken as this machine's; its refusals are", async () => {
  const home = new Home(url, PASSPHRASES);
  try {
    for (const code of ['FILE_UNREADABLE', 'FILE_UNWRITABLE', 'CACHE_MISSING', 'CACHE_STALE', 'INTERNAL']) {
      answer = {
        status: 400,
        body: { error: { code, message: 'claimed', details: { path: '/etc/shadow' } } },
      };
      const r = await home.run(['init', 'example.com/app', '--json']);
      expect(r.code, r.stderr).toBe(3);
      expect(JSON.parse(r.stdout).error.code).toBe('NETWORK');
    }
    answer = { status: 400, body: { error: { code: 'EXPIRED', message: 'timestamp: expired' } } };
    const refused = await home.run(['init', 'example.com/app', '--json']);
    expect(JSON.parse(refused.stdout).error.code).toBe('EXPIRED');
    expect(refused.code).toBe(1);
  } finally {
    home.remove();
  }
});
