/**
 * tufa's own cost of a cached GET, without the network: a tufa-server started in this process
 * (embedded database, a 1,000-target collection), its request listener called with node:http's
 * own IncomingMessage and ServerResponse on a socket that is never connected (the answer is built,
 * headers and all, and kept in the response), beside a bare listener answering the same bytes and
 * headers. Prints CPU µs per request (median of rounds) for targets.json identity, gzip, a 304 and
 * timestamp.json. `node --import tsx bench/listener-alone.ts [DIST] [ROUNDS]`, DIST the server's
 * build folder (default packages/server/dist), to compare two builds run one after the other.
 */
import { createHash } from 'node:crypto';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { createCollection, gunUrl } from './lib/tufa.js';
import { median, REPO, removeTempDirs, tempDir } from './lib/util.js';

const DIST = process.argv[2] ?? 'packages/server/dist';
const ROUNDS = Number(process.argv[3] ?? 9);
const PER_ROUND = 50_000;
const GUN = 'bench.example.com/app';
type Listener = (req: IncomingMessage, res: ServerResponse) => void;

// The listener is what startServer hands node:http; caught on its way there.
let listener: Listener | undefined;
const createServer = http.createServer;
http.createServer = ((...args: unknown[]) => {
  listener ??= args.find((a) => typeof a === 'function') as Listener;
  return (createServer as (...a: unknown[]) => http.Server)(...args);
}) as typeof http.createServer;
syncBuiltinESMExports();

const { startServer } = (await import(pathToFileURL(join(REPO, DIST, 'index.js')).href)) as {
  startServer: (config: unknown, options: unknown) => Promise<{ url: string; close(): Promise<void> }>;
};
const server = await startServer(
  {
    host: '127.0.0.1',
    port: 0,
    databaseUrl: undefined,
    dataDir: tempDir('listener'),
    masterKey: 'ab'.repeat(32),
    masterKeyFile: undefined,
    logLevel: 'warn',
    bodyLimit: 1024 * 1024,
    requestTimeout: 30_000,
    poolSize: 10,
    timestampExpiry: 14 * 86_400_000,
    snapshotExpiry: 365 * 86_400_000,
    resignInterval: 0,
    resignFraction: 1 / 3,
    shutdownTimeout: 5_000,
    migrationsDir: undefined,
    allowAnonymousWrites: true,
  },
  { logger: pino({ level: 'warn' }) },
);
await createCollection({ base: server.url, token: undefined }, GUN, 1000);
const path = (file: string) => new URL(gunUrl(server.url, GUN, file)).pathname;
// fetch decodes gzip: these are the stored bytes, named by their sha256 (the identity ETag).
const bodies = {
  identity: Buffer.from(await (await fetch(gunUrl(server.url, GUN, 'targets.json'))).arrayBuffer()),
};
const etag = `"${createHash('sha256').update(bodies.identity).digest('hex')}"`;
const tufa = listener!;
// tufa's headers, a request id of the same length included: what writeHead does for them is Node's.
const bareHeaders = [
  'X-Request-Id',
  '00000000-0000-4000-8000-000000000000',
  'ETag',
  etag,
  'Cache-Control',
  'public, max-age=10, must-revalidate',
  'Content-Type',
  'application/json',
  'Vary',
  'Accept-Encoding',
  'Content-Length',
  String(bodies.identity.length),
];
const bare: Listener = (req, res) => {
  req.headers['accept-encoding']?.includes('gzip');
  res.writeHead(200, bareHeaders);
  res.end(bodies.identity);
};

const socket = new Socket();
function request(target: string, headers: Record<string, string>): IncomingMessage {
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = target;
  req.headers = { host: '127.0.0.1', ...headers };
  return req;
}

const cases: [string, Listener, string, Record<string, string>, number][] = [
  ['targets.json identity', tufa, path('targets.json'), {}, 200],
  ['targets.json gzip', tufa, path('targets.json'), { 'accept-encoding': 'gzip' }, 200],
  ['targets.json 304', tufa, path('targets.json'), { 'if-none-match': etag }, 304],
  ['timestamp.json', tufa, path('timestamp.json'), {}, 200],
  ['bare listener, the same bytes', bare, path('targets.json'), {}, 200],
];
// The first read of each file comes from the database and puts it in the memory cache.
for (const file of ['targets.json', 'timestamp.json']) await fetch(gunUrl(server.url, GUN, file));
const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn, target, headers, status] of cases) {
    const before = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) {
      const req = request(target, headers);
      const res = new ServerResponse(req);
      fn(req, res);
      if (!res.writableEnded || res.statusCode !== status) {
        throw new Error(`${name}: ${res.writableEnded ? res.statusCode : 'not answered at once'}`);
      }
    }
    const used = process.cpuUsage(before);
    const list = results.get(name) ?? [];
    list.push((used.user + used.system) / PER_ROUND);
    results.set(name, list);
  }
}
for (const [name, list] of results) {
  process.stdout.write(`${DIST}\t${name}\t${median(list).toFixed(2)} µs CPU per request\n`);
}
await server.close();
removeTempDirs();
