/**
 * The floor of a GET on this machine: a bare node:http server (a child process of the benchmark)
 * answering each path it was given from memory, exactly as tufa answered it (status 200, the same
 * headers in the same order, the same bytes), the gzip answer when the request's Accept-Encoding
 * names gzip. No routing, access check, metrics or log line: what is left is Node's HTTP stack and
 * the kernel. Argument: a JSON file written by floor.ts. Prints `{"port":N}` when ready.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

interface Answer {
  headers: [string, string][];
  body: string;
}
const given = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Record<
  string,
  { identity: Answer; gzip: Answer }
>;
const prepare = (a: Answer) => ({ headers: a.headers.flat(), body: Buffer.from(a.body, 'base64') });
const answers = new Map(
  Object.entries(given).map(([path, a]) => [path, { identity: prepare(a.identity), gzip: prepare(a.gzip) }]),
);

const server = createServer((req, res) => {
  const known = answers.get(req.url ?? '');
  if (known === undefined) {
    res.writeHead(404).end();
    return;
  }
  const a = req.headers['accept-encoding']?.includes('gzip') === true ? known.gzip : known.identity;
  res.writeHead(200, a.headers);
  res.end(a.body);
});
// As tufa-server's.
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
