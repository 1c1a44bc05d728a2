/**
 * The GET floor beside tufa-server: a bare node:http server (bare-server.ts) answering the same
 * paths with the bytes and headers tufa sent for them, identity and gzip, so that a GET's cost
 * can be split into tufa's own and what Node's HTTP stack and the kernel cost anyway.
 */
import { writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { SERVER_ENVIRONMENT, SERVER_NODE_OPTIONS } from '@tufa/server';
import { REPO, type Service, startService, tempDir } from './util.js';

/** Status, headers (as sent, in order, without the ones Node adds itself) and body of one GET. */
function answerOf(
  url: string,
  headers: Record<string, string>,
): Promise<{ headers: [string, string][]; body: string }> {
  // Node writes these itself; the request id is tufa's own, per request.
  const own = new Set(['date', 'connection', 'keep-alive', 'x-request-id']);
  return new Promise((done, fail) => {
    httpGet(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) fail(new Error(`GET ${url}: ${res.statusCode}`));
        const pairs: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!;
          if (!own.has(name.toLowerCase())) pairs.push([name, res.rawHeaders[i + 1]!]);
        }
        done({ headers: pairs, body: Buffer.concat(chunks).toString('base64') });
      });
    }).on('error', fail);
  });
}

export interface Floor {
  readonly base: string;
  readonly service: Service;
}

/** Starts the floor for `urls` (of one tufa server), with tufa's node options. */
export async function startFloor(urls: readonly string[], nodeArgs: readonly string[] = []): Promise<Floor> {
  const answers: Record<string, unknown> = {};
  for (const url of urls) {
    answers[new URL(url).pathname] = {
      identity: await answerOf(url, {}),
      gzip: await answerOf(url, { 'accept-encoding': 'gzip' }),
    };
  }
  const file = join(tempDir('floor'), 'answers.json');
  writeFileSync(file, JSON.stringify(answers));
  const service = startService(
    'bare node:http (the floor)',
    process.execPath,
    [...SERVER_NODE_OPTIONS, ...nodeArgs, '--import', 'tsx', join(REPO, 'bench/lib/bare-server.ts'), file],
    { ...process.env, ...SERVER_ENVIRONMENT },
  );
  const port = await new Promise<number>((done, fail) => {
    service.child.once('exit', () => fail(new Error(`the floor server exited:\n${service.output()}`)));
    service.child.stdout!.on('data', () => {
      const m = /\{"port":(\d+)\}/.exec(service.output());
      if (m !== null) done(Number(m[1]));
    });
  });
  return { base: `http://127.0.0.1:${port}`, service };
}
