/**
 * Local file names for names that come from a repository: a delegated role name or a target path
 * may hold any character. Two encodings, both percent-encoding of the name's UTF-8 bytes:
 *
 * - `localFileName` (the cache's delegated roles, folder downloads): only `a-z 0-9 . _ -` stay
 *   as they are. Uppercase letters are escaped too, so names never differ by case alone (macOS and
 *   Windows fold case); the result is ASCII, so no Unicode normalisation can merge two names
 *   either. No `/` or `\` survives, so a name never leaves its folder. Injective: `%` itself is
 *   escaped, and a name too long for a file system is named by its hash (`sha256-HEX`), a form no
 *   escaped name takes (a leading `s` of `sha256-` is escaped).
 * - `repositoryFileName` (an exported repository): python-tuf's `quote(name, safe="")`, the name
 *   TUF clients put in their request URLs and python-tuf uses in its metadata folder; a plain name
 *   (`A-Z a-z 0-9 . _ - ~`) is unchanged, as the standard layout wants.
 */
import { sha256Id, TufaError, utf8Encode } from '@tufa/core';

/** Longest escaped name kept as it is (a file name may hold 255 bytes; room for `.json`, temp suffixes). */
const MAX_ESCAPED = 180;

const LOCAL_SAFE = /[a-z0-9._-]/;
const REPOSITORY_SAFE = /[A-Za-z0-9._~-]/;

function percentEncode(name: string, safe: RegExp): string {
  if (typeof name !== 'string' || name.length === 0 || !name.isWellFormed()) {
    throw new TufaError('INVALID_ARGUMENT', 'a name to store must be a non-empty, well-formed string', {
      found: name,
    });
  }
  let out = '';
  for (const byte of utf8Encode(name)) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && safe.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A file name for `name` in tufa's own folders; `standalone`: the name stands alone (no `.json`
 * follows), so `.`, `..` and hidden names are escaped as well.
 */
export function localFileName(name: string, options: { standalone?: boolean } = {}): string {
  let escaped = percentEncode(name, LOCAL_SAFE);
  if (escaped.length > MAX_ESCAPED) return `sha256-${sha256Id(utf8Encode(name))}`;
  if (escaped.startsWith('sha256-')) escaped = `%73${escaped.slice(1)}`;
  if (options.standalone === true && escaped.startsWith('.')) escaped = `%2E${escaped.slice(1)}`;
  return escaped;
}

/** The file name of a target downloaded into a folder (`downloadTarget(tag, { dir })`). */
export function targetFileName(path: string): string {
  return localFileName(path, { standalone: true });
}

/** `ROLE.json`'s ROLE in an exported repository: python-tuf's `quote(role, safe="")`. */
export function repositoryFileName(role: string): string {
  return percentEncode(role, REPOSITORY_SAFE);
}
