/**
 * The one GUN (collection name) grammar, shared by the CLI, the client and the server.
 *
 * It follows Docker's reference grammar for a repository name (distribution/reference, the
 * `name` production, without tag or digest):
 *
 *   name           := [domain '/'] path-component ('/' path-component)*
 *   domain         := host [':' port]
 *   host           := domain-name | '[' IPv6 ']'          (an IPv4 address is a domain-name)
 *   domain-name    := label ('.' label)*,   label := [a-z0-9] | [a-z0-9][a-z0-9-]*[a-z0-9]
 *   path-component := [a-z0-9]+ ((. | _ | __ | -+) [a-z0-9]+)*
 *
 * Stricter than Docker, so that a name and a differently written copy of it are not two
 * collections where that is cheap to rule out (case, leading zeros in a port); IP literals are
 * taken as written (`[::1]` and `[0::1]`, or `127.0.0.1` and `127.0.0.01`, are different GUNs: the
 * server acts on the exact string it was sent, never on another spelling):
 * - no tag (`:latest`) and no digest (`@sha256:…`): a GUN names a repository, not an image;
 * - the host is lowercase too (Docker allows `Example.com`; DNS would make it the same host);
 * - a port is 1 to 65535 without leading zeros; a DNS label is at most 63 characters;
 * - an IPv6 host is lowercase hex groups (with at most one `::`), no zone, no embedded IPv4;
 * - a host is only ever the first of two or more segments (`localhost:5000` alone is refused).
 * Docker's limit of 255 characters for the whole name applies. Every character of a valid GUN
 * is safe in a URL path as it is, so a GUN is never percent-encoded: `%` is refused outright.
 */
import { TufaError } from './errors.js';

export const MAX_GUN_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/;

/** The name as given, when it is a GUN; else INVALID_ARGUMENT saying precisely what is wrong. */
export function checkGun(name: string): string {
  const reason = gunProblem(name);
  if (reason === undefined) return name;
  const shown = typeof name === 'string' ? name : String(name);
  throw new TufaError('INVALID_ARGUMENT', `invalid GUN ${quote(shown)}: ${reason}`, {
    expected: 'a Docker repository name: [HOST[:PORT]/]PATH/COMPONENTS, lowercase',
    details: { gun: shown.slice(0, MAX_GUN_LENGTH + 1), reason },
  });
}

/** True when `name` is a GUN. */
export function isValidGun(name: string): boolean {
  return gunProblem(name) === undefined;
}

function gunProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'a GUN is a string';
  if (name.length === 0) return 'empty';
  if (name.length > MAX_GUN_LENGTH) {
    return `${name.length} characters, more than the ${MAX_GUN_LENGTH} allowed`;
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return `control character at offset ${i}`;
    if (c > 0x7e) return `non-ASCII character at offset ${i}`;
    if (c === 0x25) return "'%': a GUN is never percent-encoded";
    if (c === 0x5c) return 'backslash: segments are separated by /';
    if (c === 0x40) return "'@': a GUN has no digest";
    if (c === 0x20) return `space at offset ${i}`;
    if (c >= 0x41 && c <= 0x5a) return 'uppercase letter: a GUN is lowercase';
  }
  const segments = name.split('/');
  for (const segment of segments) {
    if (segment === '') return 'empty segment (a leading, trailing or doubled /)';
    if (segment === '.' || segment === '..') return `dot segment ${segment}`;
  }
  const [first, ...rest] = segments as [string, ...string[]];
  if (rest.length === 0) {
    if (PATH_COMPONENT.test(first)) return undefined;
    if (first.includes(':') || first.startsWith('[')) {
      return 'a registry host needs a repository path after it (HOST[:PORT]/NAME); a GUN has no tag';
    }
    return componentProblem(first);
  }
  if (!PATH_COMPONENT.test(first)) {
    const hostProblem = domainProblem(first);
    if (hostProblem !== undefined) {
      // A first segment with no host syntax is meant as a path component: say what that needs.
      return /[:[\]]/.test(first) || first.includes('.') ? hostProblem : componentProblem(first);
    }
  }
  for (const segment of rest) {
    const problem = PATH_COMPONENT.test(segment) ? undefined : componentProblem(segment);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function componentProblem(segment: string): string {
  const bad = /[^a-z0-9._-]/.exec(segment);
  if (bad !== null) {
    return bad[0] === ':'
      ? `segment ${quote(segment)}: ':' is only for a port of the registry host (the first segment); a GUN has no tag`
      : `segment ${quote(segment)}: ${quote(bad[0])} is not allowed (a-z 0-9 . _ -)`;
  }
  if (!/^[a-z0-9]/.test(segment) || !/[a-z0-9]$/.test(segment)) {
    return `segment ${quote(segment)} must start and end with a letter or digit`;
  }
  return `segment ${quote(segment)}: letters and digits are joined by one '.', one '_', '__' or dashes`;
}

/** Why `text` is not `host[:port]`, or undefined when it is one. */
function domainProblem(text: string): string | undefined {
  let host = text;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return `registry host ${quote(text)}: an IPv6 address is closed by ]`;
    host = text.slice(0, close + 1);
    const after = text.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return `registry host ${quote(text)}: only :PORT may follow ]`;
      port = after.slice(1);
    }
    const ipv6 = ipv6Problem(host.slice(1, -1));
    if (ipv6 !== undefined) return `registry host ${quote(text)}: ${ipv6}`;
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      port = text.slice(colon + 1);
    }
    const labels = host.split('.');
    const badLabel = labels.find((label) => !LABEL.test(label));
    if (badLabel !== undefined) {
      return badLabel === ''
        ? `registry host ${quote(host)}: an empty label`
        : `registry host ${quote(host)}: label ${quote(badLabel)} is 1 to 63 of a-z 0-9 -, not starting or ending with -`;
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) {
    return `registry host ${quote(text)}: the port is a number from 1 to 65535 without leading zeros`;
  }
  return undefined;
}

function ipv6Problem(address: string): string | undefined {
  const bad = 'an IPv6 address is lowercase hex groups separated by : (at most one ::)';
  const halves = address.split('::');
  if (halves.length > 2) return bad;
  const groups = halves.map((h) => (h === '' ? [] : h.split(':')));
  const all = groups.flat();
  if (!all.every((g) => HEX_GROUP.test(g))) return bad;
  if (halves.length === 1 ? all.length !== 8 : all.length > 7) return bad;
  return undefined;
}

/** A name for an error message: JSON-quoted, printable ASCII only, at most 80 characters. */
function quote(text: string): string {
  const short = text.length > 80 ? `${text.slice(0, 80)}[${text.length - 80} more]` : text;
  return JSON.stringify(short).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
