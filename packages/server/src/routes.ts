/**
 * Every route of the server in one table, matched by find-my-way on the raw (still
 * percent-encoded) path. A GUN spans segments, which no router matches in the middle of a path:
 * it is cut out before the lookup (everything between `/v2/` and the last `/_trust/`), checked by
 * core's `checkGun` as sent, never decoded, and its place is left empty in the routed path.
 */
import { isValidRoleName } from '@tufa/core';
import createRouter from 'find-my-way';
import { checkGun, HttpStatusError } from './http.js';

export type Route =
  | { kind: 'metadata'; gun: string; role: string; version?: number }
  | { kind: 'key'; gun: string; role: 'timestamp' | 'snapshot' }
  | { kind: 'collection'; gun: string }
  | { kind: 'changefeed'; gun?: string }
  | { kind: 'pending'; gun: string }
  | { kind: 'pending_one'; gun: string; id: string }
  | { kind: 'pending_signatures'; gun: string; id: string }
  | { kind: 'health' }
  | { kind: 'metrics' }
  | { kind: 'tokens' }
  | { kind: 'token'; name: string }
  | { kind: 'audit' }
  /** The status page (ui/page.ts): `path` after `/ui/`, undefined for `/ui` itself. */
  | { kind: 'ui'; path: string | undefined };

export type RouteKind = Route['kind'];

/** A route's parameters (raw) and its GUN (raw, unchecked) → the route, or undefined for none. */
type Build = (params: Record<string, string | undefined>, gun: string) => Route | undefined;

const FILE = /^(?:([1-9]\d{0,9})\.)?(.+)\.(json|key)$/;
const PENDING_ID = /^[0-9a-f]{64}$/;
const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `{role}.json`, `{version}.{role}.json` or `{role}.key`, percent-decoded (a role name may hold `/`). */
function roleFile(gun: string, file: string): Route | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(file);
  } catch {
    throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'invalid percent-encoding in the role name');
  }
  const m = FILE.exec(decoded);
  if (m === null) return undefined;
  const role = m[2]!;
  if (m[3] === 'key') {
    if (m[1] !== undefined || (role !== 'timestamp' && role !== 'snapshot')) {
      throw new HttpStatusError(404, 'NOT_FOUND', 'only timestamp.key and snapshot.key exist');
    }
    return { kind: 'key', gun, role };
  }
  if (!isValidRoleName(role) && !['root', 'targets', 'snapshot', 'timestamp'].includes(role)) {
    throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'invalid role name', { role: role.slice(0, 300) });
  }
  return m[1] === undefined
    ? { kind: 'metadata', gun, role }
    : { kind: 'metadata', gun, role, version: Number(m[1]) };
}

function pendingTail(gun: string, tail: string): Route {
  if (tail === '') return { kind: 'pending', gun };
  const slash = tail.indexOf('/');
  const id = slash < 0 ? tail : tail.slice(0, slash);
  if (PENDING_ID.test(id) && (slash < 0 || tail.slice(slash) === '/signatures')) {
    return slash < 0 ? { kind: 'pending_one', gun, id } : { kind: 'pending_signatures', gun, id };
  }
  throw new HttpStatusError(404, 'NOT_FOUND', 'a pending update is named by its 64-digit id');
}

/** `{gun}` marks where the GUN was cut out. */
const ROUTES: readonly (readonly [string, Build])[] = [
  ['/_health', () => ({ kind: 'health' })],
  ['/metrics', () => ({ kind: 'metrics' })],
  ['/ui', () => ({ kind: 'ui', path: undefined })],
  ['/ui/*', (params) => ({ kind: 'ui', path: params['*']! })],
  ['/v2/_trust/changefeed', () => ({ kind: 'changefeed' })],
  ['/v2/_admin/tokens', () => ({ kind: 'tokens' })],
  ['/v2/_admin/audit', () => ({ kind: 'audit' })],
  [
    '/v2/_admin/tokens/:name',
    ({ name }) => {
      if (name === '') return undefined;
      if (!TOKEN_NAME.test(name!)) throw new HttpStatusError(400, 'INVALID_ARGUMENT', 'invalid token name');
      return { kind: 'token', name: name! };
    },
  ],
  ['/v2/{gun}/_trust/changefeed', (_, gun) => ({ kind: 'changefeed', gun: checkGun(gun) })],
  ['/v2/{gun}/_trust/tuf', (_, gun) => ({ kind: 'collection', gun: checkGun(gun) })],
  [
    '/v2/{gun}/_trust/tuf/*',
    (params, gun) => {
      const checked = checkGun(gun);
      const file = params['*']!;
      return file === '' ? { kind: 'collection', gun: checked } : roleFile(checked, file);
    },
  ],
  ['/v2/{gun}/_trust/pending', (_, gun) => ({ kind: 'pending', gun: checkGun(gun) })],
  ['/v2/{gun}/_trust/pending/*', (params, gun) => pendingTail(checkGun(gun), params['*']!)],
];

// The router only classifies paths: every route is stored under GET, the method is the route's business (405).
const router = createRouter({ maxParamLength: Number.MAX_SAFE_INTEGER });
for (const [path, build] of ROUTES) router.on('GET', path.replace('{gun}', ''), () => {}, build);

const COLLECTION = '/_trust/';

/**
 * The route of a raw path (no query), undefined when it names none. Refuses a GUN that core's
 * grammar refuses (400), a bad role file name (400, 404) and a malformed pending id (404).
 */
export function parseRoute(rawPath: string): Route | undefined {
  if (rawPath.charCodeAt(0) !== 0x2f) return undefined;
  let gun = '';
  let routed = rawPath;
  if (rawPath.startsWith('/v2/')) {
    const at = rawPath.lastIndexOf(COLLECTION);
    if (at > 3) {
      gun = rawPath.slice(4, at);
      routed = `/v2/${rawPath.slice(at)}`;
    }
  }
  // find-my-way percent-decodes what it matches: with `%` hidden, only the raw path can match and
  // parameters come back exactly as sent (positions are unchanged).
  const masked = routed.includes('%');
  const found = router.find('GET', masked ? routed.replaceAll('%', '\0') : routed);
  if (found === null) return undefined;
  const params = found.params as Record<string, string | undefined>;
  if (masked) for (const k of Object.keys(params)) params[k] = params[k]?.replaceAll('\0', '%');
  return (found.store as Build)(params, gun);
}
