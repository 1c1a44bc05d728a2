/**
 * A publisher of collections on a running tufa server, through its HTTP API, signing with
 * deterministic keys through core (for the server tests and the bench).
 */
import {
  expiresIn,
  type Key,
  type Metadata,
  newRoot,
  newTargets,
  type Root,
  serializeMetadata,
  type Targets,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withTarget,
} from '@tufa/core';
import { DAY } from './constants.js';
import { sign, testCrypto, testKey } from './keys.js';

/** The publisher's keys: root and targets sign the collections, `releases` is delegated to. */
export const keys = { root: testKey(1), targets: testKey(2), releases: testKey(3), other: testKey(4) };

export function gunUrl(base: string, gun: string, file = ''): string {
  return `${base}/v2/${gun}/_trust/tuf/${file}`;
}

const bearer = (token: string | undefined): Record<string, string> =>
  token === undefined ? {} : { authorization: `Bearer ${token}` };

/** The server's online public key of a collection, as a root lists it. */
export async function onlineKey(
  base: string,
  gun: string,
  role: 'timestamp' | 'snapshot',
  options: { token?: string | undefined } = {},
): Promise<Key> {
  const res = await fetch(gunUrl(base, gun, `${role}.key`), { headers: bearer(options.token) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${gun} ${role}.key: ${res.status} ${text}`);
  const json = JSON.parse(text) as { keytype: string; scheme: string; keyval: { public: string } };
  return { keytype: json.keytype, scheme: json.scheme, keyval: { public: json.keyval.public }, extra: {} };
}

/** Root (v1 unless given) with the publisher's root and targets keys and the server's online keys. */
export async function rootFor(
  base: string,
  gun: string,
  options: { version?: number; token?: string | undefined } = {},
): Promise<Root> {
  const online = { token: options.token };
  return newRoot({
    version: options.version ?? 1,
    expires: expiresIn(Date.now(), 365 * DAY),
    roles: {
      root: { keys: [keys.root.key] },
      targets: { keys: [keys.targets.key] },
      snapshot: { keys: [await onlineKey(base, gun, 'snapshot', online)] },
      timestamp: { keys: [await onlineKey(base, gun, 'timestamp', online)] },
    },
  });
}

/** Targets `version` with one target per tag (content as given) and, by default, the `releases` delegation. */
export function targetsV(version: number, tags: Record<string, string> = {}, delegate = true): Targets {
  let t = newTargets({ version, expires: expiresIn(Date.now(), 90 * DAY) });
  for (const [tag, content] of Object.entries(tags))
    t = withTarget(t, tag, targetFileFor(testCrypto, utf8Encode(content)));
  if (delegate) t = withDelegation(t, { name: 'releases', keys: [keys.releases.key], paths: ['releases/*'] });
  return t;
}

/** The body of an update: `{"role": <exact bytes>, ...}`. */
export function body(docs: Record<string, Metadata | Uint8Array | string>): string {
  const parts = Object.entries(docs).map(([role, doc]) => {
    const text =
      typeof doc === 'string'
        ? doc
        : new TextDecoder().decode(doc instanceof Uint8Array ? doc : serializeMetadata(doc));
    return `${JSON.stringify(role)}:${text}`;
  });
  return `{${parts.join(',')}}`;
}

export async function post(base: string, gun: string, docs: Record<string, Metadata | Uint8Array | string>) {
  const res = await fetch(gunUrl(base, gun), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(docs),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

/** Keys fetched, root v1 and targets v1 published. */
export async function publishNew(
  base: string,
  gun: string,
  tags: Record<string, string> = { 'app/v1': 'v1' },
) {
  const root = sign(await rootFor(base, gun), keys.root);
  const targets = sign(targetsV(1, tags), keys.targets);
  const res = await post(base, gun, { root, targets });
  if (res.status !== 200) throw new Error(`publish ${gun}: ${res.status} ${JSON.stringify(res.json)}`);
  return { root, targets };
}
