import { readFileSync } from 'node:fs';
import { ERROR_CODES, ERROR_TABLE, EXIT_STATUS } from '@tufa/core';
import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from './output.js';

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
