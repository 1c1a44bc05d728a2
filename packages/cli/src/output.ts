/** Output for people and for scripts, and the documented exit codes. */
import { ERROR_TABLE, type ErrorCode, EXIT_STATUS, isTufaError, TufaError } from '@tufa/core';

/** The documented exit statuses (README.md "Exit codes of `tufa`"): core's, one per kind of answer. */
export const EXIT = EXIT_STATUS;

/** The exit status of a refusal: its code's row in core's ERROR_TABLE. */
export function exitCodeFor(code: ErrorCode): number {
  return ERROR_TABLE[code]?.exitStatus ?? EXIT.REFUSED;
}

/**
 * Characters a terminal acts on or reorders: C0 (tab and newline included), DEL, C1, the bidi
 * controls (Trojan Source) and the Unicode line and paragraph separators.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/**
 * A name (target path, role, delegation path, a server's message) as one line of human output:
 * every control or bidi character escaped (`\n` → `\\n`, ESC → `\\x1b`, U+202E → `\\u{202e}`),
 * and a backslash doubled so that an escape and a name that spells one never look alike.
 * JSON output is left as it is: JSON escapes on its own.
 */
export function printable(name: string): string {
  if (!UNSAFE.test(name) && !name.includes('\\')) return name;
  return name.replace(new RegExp(`\\\\|${UNSAFE.source}`, 'gu'), (c) =>
    c === '\\' ? '\\\\' : escapeChar(c),
  );
}

/** A message as one line: every control or bidi character escaped, newline and tab too. */
export function oneLine(text: string): string {
  return text.replace(new RegExp(UNSAFE.source, 'gu'), escapeChar);
}

/** Human lines as written: any control or bidi character but the line and column separators escaped. */
function terminalSafe(text: string): string {
  return text.replace(new RegExp(UNSAFE.source, 'gu'), (c) => (c === '\n' || c === '\t' ? c : escapeChar(c)));
}

export interface Output {
  readonly json: boolean;
  /** The result: a JSON document with --json, else the human lines. */
  result(data: unknown, human: string | string[]): void;
  /** A side note for people (stderr); silent with --json. */
  note(text: string): void;
}

/** Output whose results are collected instead of printed: one command made of others prints once. */
export function collecting<C extends { readonly out: Output }>(
  ctx: C,
): { ctx: C; results: unknown[]; lines: string[] } {
  const results: unknown[] = [];
  const lines: string[] = [];
  const out: Output = {
    json: ctx.out.json,
    result(data, human) {
      results.push(data);
      lines.push(...(Array.isArray(human) ? human : [human]));
    },
    note: (text) => ctx.out.note(text),
  };
  return { ctx: { ...ctx, out }, results, lines };
}

export function makeOutput(json: boolean, stdout = process.stdout, stderr = process.stderr): Output {
  return {
    json,
    result(data, human) {
      if (json) stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      else {
        const lines = Array.isArray(human) ? human : [human];
        if (lines.length > 0) stdout.write(`${terminalSafe(lines.join('\n'))}\n`);
      }
    },
    note(text) {
      if (!json) stderr.write(`${terminalSafe(text)}\n`);
    },
  };
}

/** Reports an error (one line on stderr, or the JSON document) and returns the exit code. */
export function reportError(err: unknown, options: { json: boolean; debug: boolean }): number {
  const error = isTufaError(err)
    ? err
    : new TufaError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  const exit = exitCodeFor(error.code);
  if (options.json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
  // One line, whatever the message carries (a server's, a name's): never a forged line or an escape.
  process.stderr.write(`tufa: ${error.code}: ${oneLine(error.message)}\n`);
  if (options.debug) {
    if (error.expected !== undefined) process.stderr.write(`  expected: ${JSON.stringify(error.expected)}\n`);
    if (error.found !== undefined) process.stderr.write(`  found: ${JSON.stringify(error.found)}\n`);
    if (error.details !== undefined) process.stderr.write(`  details: ${JSON.stringify(error.details)}\n`);
    const cause = error.code === 'INTERNAL' ? err : error.cause;
    if (cause instanceof Error && cause.stack) process.stderr.write(`${cause.stack}\n`);
  }
  return exit;
}
