/**
 * A static file server on 127.0.0.1 (a child process of the benchmark): serves the files under
 * the folder given as the first argument, from memory once read. Prints `{"port":N}` when ready.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, normalize, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? '.');
const cache = new Map<string, Buffer>();

const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!));
  const file = join(root, path);
  if (!file.startsWith(`${root}/`) || req.method !== 'GET') {
    res.writeHead(404).end();
    return;
  }
  const cached = cache.get(file);
  const send = (bytes: Buffer) =>
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length }).end(bytes);
  if (cached !== undefined) {
    send(cached);
    return;
  }
  readFile(file).then(
    (bytes) => {
      cache.set(file, bytes);
      send(bytes);
    },
    () => res.writeHead(404).end(),
  );
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
