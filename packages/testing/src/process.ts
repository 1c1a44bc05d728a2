/** Runs a program to its end with a given environment and input: the one child-process helper of the tests. */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

/** The checkout this package sits in. */
export const REPO = resolve(import.meta.dirname, '../../..');

/** Node's arguments to run a TypeScript file from the sources (workspace packages resolve to their src/). */
export function sourceArgs(script: string, ...args: string[]): string[] {
  return ['--conditions=tufa-source', '--import', 'tsx', script, ...args];
}

/** Node's arguments to run `tufa-server ARGS` from the sources. */
export const serverArgs = (...args: string[]): string[] =>
  sourceArgs(join(REPO, 'packages/server/src/bin.ts'), ...args);

export interface ProcessResult {
  /** The exit status; -1 when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

export function runProcess(
  command: string,
  args: readonly string[],
  options: { env: Record<string, string>; cwd?: string; input?: string | Buffer },
): Promise<ProcessResult> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    // A child that exits without reading its input closes the pipe (EPIPE): its exit status tells.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
