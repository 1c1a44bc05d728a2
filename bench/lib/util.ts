/** Small helpers for the benchmark: timing, medians, child processes, RSS, temp folders. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO = resolve(import.meta.dirname, '../..');
export const DAY = 24 * 3600 * 1000;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Milliseconds a call takes. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const tempDirs: string[] = [];

/** A temp folder, removed by `removeTempDirs` at the end. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `tufa-bench-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A free TCP port on the loopback interface. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to its end (bounded by `timeoutMs`), wall clock included. */
export function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((done, fail) => {
    const start = performance.now();
    execFile(
      command,
      args,
      {
        env: options.env ?? process.env,
        cwd: options.cwd ?? REPO,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const ms = performance.now() - start;
        if (err !== null && typeof (err as { code?: unknown }).code !== 'number') {
          fail(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stderr}`));
          return;
        }
        done({ code: err === null ? 0 : Number((err as { code: number }).code), stdout, stderr, ms });
      },
    );
  });
}

/** Runs and insists on exit 0. */
export async function runOk(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${r.code}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`,
    );
  }
  return r;
}

/** Resident set size of one process, bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU time (user + system, every thread) a process has used, ms (Linux /proc): what work costs under load. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th,
  // counted in USER_HZ (1/100 s).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/**
 * The command line of a bench tufa-server on 127.0.0.1: no request log (a line per GET would
 * measure pino) and no background re-signing.
 */
export function tufaServerArgs(
  nodeOptions: readonly string[],
  bin: string,
  port: number,
  dbArgs: readonly string[],
): string[] {
  return [
    ...nodeOptions,
    bin,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    ...dbArgs,
    '--log-level',
    'warn',
    '--resign-interval',
    '0',
  ];
}

/** A long-running child process that the benchmark stops at the end. */
export interface Service {
  readonly name: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

const services: Service[] = [];

export function startService(
  name: string,
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Service {
  const child = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer) => {
    out = (out + c.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const service: Service = {
    name,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
  services.push(service);
  return service;
}

/** Registers a service started elsewhere (the test support's notary-server): stopped and reported with the rest. */
export function adoptService(service: Service): Service {
  services.push(service);
  return service;
}

/** The last output of every service still known, for a failure report. */
export function serviceOutputs(): string {
  return services
    .map(
      (s) =>
        `--- ${s.name} (exit ${s.child.exitCode ?? s.child.signalCode ?? 'running'}):\n${s.output().slice(-3000)}`,
    )
    .join('\n');
}

export async function stopServices(): Promise<void> {
  for (const s of services.splice(0).reverse()) await s.stop().catch(() => undefined);
}

/** Polls `url` until it answers 200 (bounded). */
export async function waitForHttp(url: string, service: Service, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (service.child.exitCode !== null) {
      throw new Error(`${service.name} exited during start:\n${service.output()}`);
    }
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${service.name} did not answer ${url}:\n${service.output()}`);
    await sleep(100);
  }
}

export function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const path = join(dir, program);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
