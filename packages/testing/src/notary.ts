/**
 * Docker Notary v1 for the tests and the bench (Debian's `notary` package, 0.7): notary-server
 * with its memory store on a free loopback port (plain http), and the notary CLI with a client
 * config pointing at it and NOTARY_*_PASSPHRASE set. Nothing comes from the internet.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { selfSignedP256 } from './certificates.js';
import { type ProcessResult, runProcess } from './process.js';

/** The passphrases the notary CLI reads (NOTARY_ROOT_PASSPHRASE …) in these runs. */
export const NOTARY_PASSPHRASES = Object.freeze({
  NOTARY_ROOT_PASSPHRASE: 'notary root passphrase',
  NOTARY_TARGETS_PASSPHRASE: 'notary targets passphrase',
  NOTARY_SNAPSHOT_PASSPHRASE: 'notary snapshot passphrase',
  NOTARY_DELEGATION_PASSPHRASE: 'notary delegation passphrase',
});

function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Whether Debian's notary client and server are installed. */
export function notaryAvailable(): boolean {
  return onPath('notary-server') && onPath('notary');
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

export interface NotaryServer {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly child: ChildProcess;
  /** What the server wrote so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts notary-server (memory store, the timestamp key held by its local trust service) in `dir`;
 * resolves once its health check answers.
 */
export async function startNotaryServer(
  dir: string,
  options: { keyAlgorithm?: 'ecdsa' | 'ed25519'; logLevel?: string } = {},
): Promise<NotaryServer> {
  mkdirSync(dir, { recursive: true });
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'server.json');
  writeFileSync(
    config,
    JSON.stringify({
      server: { http_addr: `127.0.0.1:${port}` },
      trust_service: { type: 'local', key_algorithm: options.keyAlgorithm ?? 'ecdsa' },
      storage: { backend: 'memory' },
      logging: { level: options.logLevel ?? 'error' },
    }),
  );
  const child = spawn('notary-server', ['-config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const closed = new Promise<void>((done) => child.on('close', () => done()));
  child.on('close', () => {
    exited = true;
  });
  const stop = async () => {
    if (!exited) child.kill('SIGTERM');
    await closed;
  };
  for (let attempt = 0; ; attempt++) {
    if (exited) throw new Error(`notary-server exited at start:\n${output}`);
    try {
      const res = await fetch(`${url}/_notary_server/health`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {}
    // A start that never answers: give up after about 20 s, with what the server said.
    if (attempt > 200) {
      await stop();
      throw new Error(`notary-server did not answer on ${url}:\n${output}`);
    }
    await sleep(100);
  }
  return { url, child, output: () => output, stop };
}

export interface NotaryClient {
  /** The notary trust directory (`~/.notary`): private keys, cached metadata, changelists. */
  readonly trustDir: string;
  readonly env: Record<string, string>;
  /** Runs `notary -c CONFIG ARGS` to its end. */
  run(args: readonly string[], input?: string): Promise<ProcessResult>;
  /** Runs and insists on exit 0; stdout. */
  ok(args: readonly string[], input?: string): Promise<string>;
}

/** The notary CLI in `dir` (trust dir `dir/trust`), talking to `serverUrl` over plain http. */
export function notaryClient(
  dir: string,
  serverUrl: string,
  passphrases: Readonly<Record<string, string>> = NOTARY_PASSPHRASES,
): NotaryClient {
  mkdirSync(dir, { recursive: true });
  const trustDir = join(dir, 'trust');
  const config = join(dir, 'client.json');
  writeFileSync(config, JSON.stringify({ trust_dir: trustDir, remote_server: { url: serverUrl } }));
  const env = { PATH: process.env.PATH ?? '', HOME: dir, ...passphrases };
  const run = (args: readonly string[], input?: string) =>
    runProcess('notary', ['-c', config, ...args], { env, input: input ?? '' });
  return {
    trustDir,
    env,
    run,
    async ok(args, input) {
      const r = await run(args, input);
      if (r.code !== 0)
        throw new Error(`notary ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    },
  };
}

/** A P-256 key and a self-signed certificate with CN=`cn` (openssl), as `notary delegation add` takes. */
export function makeNotaryCertificate(dir: string, name: string, cn: string): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  selfSignedP256(dir, { key, cert }, `/CN=${cn.replaceAll('/', '\\/')}`, 30);
  return { cert, key };
}
