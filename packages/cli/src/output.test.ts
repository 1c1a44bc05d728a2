import { readFileSync } from 'node:fs';
import { ERROR_CODES, ERROR_TABLE, EXIT_STATUS } from '@tufa/core';
import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor, makeOutput, oneLine, printable } from './output.js';

const README = new URL('../../../README.md', import.meta.url);

/** The rows of README.md's "Exit codes of `tufa`" table: status → the error codes it lists. */
function readmeExitTable(): Map<number, string[]> {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('## Exit codes of `tufa`'));
  const rows = new Map<number, string[]>();
  for (const line of section.slice(0, section.indexOf('\n## ', 1)).split('\n')) {
    const cells = /^\| (\d+) \|(.*)\|(.*)\|$/.exec(line);
    if (cells === null) continue;
    rows.set(
      Number(cells[1]),
      [...cells[3]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!),
    );
  }
  return rows;
}

describe('exit statuses', () => {
  it("each code's exit status is its row of core's ERROR_TABLE", () => {
    for (const code of ERROR_CODES) expect(exitCodeFor(code), code).toBe(ERROR_TABLE[code].exitStatus);
    expect(EXIT).toBe(EXIT_STATUS);
    expect(exitCodeFor('FILE_UNREADABLE')).toBe(5);
    expect(exitCodeFor('UPDATE_REFUSED')).toBe(1);
    expect(exitCodeFor('INVALID_KEY')).toBe(2);
  });

  it("README.md's exit-code table lists exactly core's codes under each status", () => {
    const readme = readmeExitTable();
    expect([...readme.keys()].sort()).toEqual(Object.values(EXIT_STATUS).sort());
    for (const status of Object.values(EXIT_STATUS)) {
      const codes = ERROR_CODES.filter((code) => ERROR_TABLE[code].exitStatus === status);
      expect([...(readme.get(status) ?? [])].sort(), `exit ${status}`).toEqual([...codes].sort());
    }
  });
});

describe('names in human output', () => {
  it('escapes control and bidi characters, and doubles a backslash, in a name', () => {
    expect(printable('releases/v1')).toBe('releases/v1');
    expect(printable('releases/x\nv1\tsha256:fff\t4\ttargets')).toBe(
      'releases/x\\nv1\\tsha256:fff\\t4\\ttargets',
    );
    expect(printable('red\u001b[31m\u0007\r\u007f\u009b')).toBe('red\\x1b[31m\\x07\\r\\x7f\\x9b');
    expect(printable('app\u202egpj.exe\u2066\u200f\u2028')).toBe(
      'app\\u{202e}gpj.exe\\u{2066}\\u{200f}\\u{2028}',
    );
    // A name that spells an escape never looks like one.
    expect(printable('a\\nb')).toBe('a\\\\nb');
    expect(printable('café/日本')).toBe('café/日本');
  });

  it('a message is one line; JSON output is left to JSON', () => {
    expect(oneLine('refused: a\nforged line \u001b[2J')).toBe('refused: a\\nforged line \\x1b[2J');
    const written: string[] = [];
    const write = (t: string) => written.push(t);
    const out = { write } as unknown as typeof process.stdout;
    const err = { write } as unknown as typeof process.stderr;
    // Human lines keep their own newlines and tabs; anything else a terminal would act on is escaped.
    makeOutput(false, out, err).result({}, ['a\tb', 'c\u001b]0;title\u0007']);
    makeOutput(false, out, err).note('note \u009b');
    makeOutput(true, out, err).result({ tag: 'x\n\u001b' }, 'unused');
    expect(written).toEqual([
      'a\tb\nc\\x1b]0;title\\x07\n',
      'note \\x9b\n',
      '{\n  "tag": "x\\n\\u001b"\n}\n',
    ]);
  });
});
