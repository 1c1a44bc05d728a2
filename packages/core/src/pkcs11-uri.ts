/**
 * PKCS#11 URIs (RFC 7512): `pkcs11:token=…;object=…;id=%01?module-path=/usr/lib/…`, the one way a
 * hardware key is named in TUFA_HOME. Parsed strictly: unknown attributes, an attribute twice,
 * bad percent-encoding, a character RFC 7512 wants encoded and a relative module-path are refused,
 * and so is a PIN (`pin-value`, `pin-source`): tufa keeps none.
 */
import { TufaError } from './errors.js';

export interface Pkcs11Uri {
  /** The token's label (CKA token info `label`, without its padding). */
  readonly token?: string;
  readonly manufacturer?: string;
  readonly serial?: string;
  readonly model?: string;
  /** The key's label (CKA_LABEL). */
  readonly object?: string;
  /** The key's id (CKA_ID), raw bytes. */
  readonly id?: Uint8Array;
  /** `private`, `public` (or another object class): tufa reads the pair whatever it says. */
  readonly type?: string;
  readonly slotId?: number;
  /** The module to load (`module-path` in the query). */
  readonly modulePath?: string;
}

const MAX_URI = 4096;
const PATH_STRINGS = ['token', 'manufacturer', 'serial', 'model', 'object', 'type'] as const;

/**
 * The URI as a refusal quotes it: its query's values left out, where a PIN given by mistake
 * (`pin-value=…`, however spelled) would otherwise reach a terminal, a log or a JSON error.
 */
function quoted(uri: string): string {
  const q = uri.indexOf('?');
  const values = (part: string) => {
    const eq = part.indexOf('=');
    return eq < 0 ? '…' : `${part.slice(0, eq)}=…`;
  };
  const shown =
    q < 0
      ? uri
      : `${uri.slice(0, q)}?${uri
          .slice(q + 1)
          .split('&')
          .map(values)
          .join('&')}`;
  return shown.slice(0, 200);
}

function refuse(uri: string, why: string): never {
  throw new TufaError('INVALID_ARGUMENT', `not a PKCS#11 URI (RFC 7512): ${why}`, {
    found: quoted(uri),
    expected: 'pkcs11:token=LABEL;object=LABEL;id=%XX…',
  });
}

/** RFC 7512's pk11-pchar and pk11-qchar beside unreserved: what a value may hold unencoded. */
const PATH_CHARS = /^[A-Za-z0-9\-._~:[\]@!$'()*+,=&]$/;
const QUERY_CHARS = /^[A-Za-z0-9\-._~:[\]@!$'()*+,=/?|]$/;

function percentDecode(uri: string, value: string, allowed: RegExp): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (value[i] === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) refuse(uri, `bad percent-encoding at "${value.slice(i, i + 3)}"`);
      out.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (allowed.test(value[i]!)) {
      out.push(c);
    } else {
      refuse(uri, `a character that must be percent-encoded (${JSON.stringify(value[i])})`);
    }
  }
  return Uint8Array.from(out);
}

function text(uri: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return refuse(uri, 'an attribute that is not UTF-8');
  }
}

/** `token: true`: a URI that names a token only (where a server makes its keys) is accepted too. */
export function parsePkcs11Uri(uri: string, options: { token?: boolean } = {}): Pkcs11Uri {
  if (uri.length > MAX_URI) refuse(uri, `longer than ${MAX_URI} characters`);
  if (!/^pkcs11:/i.test(uri)) refuse(uri, 'it does not start with pkcs11:');
  const body = uri.slice('pkcs11:'.length);
  const q = body.indexOf('?');
  const path = q < 0 ? body : body.slice(0, q);
  const query = q < 0 ? '' : body.slice(q + 1);
  const out: {
    -readonly [K in keyof Pkcs11Uri]: Pkcs11Uri[K];
  } = {};
  const seen = new Set<string>();
  const split = (part: string, separator: string) =>
    part === ''
      ? []
      : part.split(separator).map((attr) => {
          const eq = attr.indexOf('=');
          if (eq <= 0) {
            refuse(
              uri,
              separator === '&'
                ? 'a query part is not name=value'
                : `"${attr.slice(0, 40)}" is not name=value`,
            );
          }
          const name = attr.slice(0, eq).toLowerCase();
          if (seen.has(name)) refuse(uri, `${name} twice`);
          seen.add(name);
          return [name, attr.slice(eq + 1)] as const;
        });
  for (const [name, value] of split(path, ';')) {
    if ((PATH_STRINGS as readonly string[]).includes(name)) {
      out[name as (typeof PATH_STRINGS)[number]] = text(uri, percentDecode(uri, value, PATH_CHARS));
    } else if (name === 'id') {
      out.id = percentDecode(uri, value, PATH_CHARS);
    } else if (name === 'slot-id') {
      if (!/^\d{1,10}$/.test(value)) refuse(uri, 'slot-id is not a number');
      out.slotId = Number(value);
    } else {
      refuse(uri, `unknown attribute ${name.slice(0, 40)}`);
    }
  }
  for (const [name, value] of split(query, '&')) {
    if (name === 'pin-value' || name === 'pin-source') {
      refuse(uri, `${name}: tufa never keeps a PIN; set TUFA_PKCS11_PIN or type it at the prompt`);
    }
    if (name !== 'module-path') refuse(uri, `unknown query attribute ${name.slice(0, 40)}`);
    const modulePath = text(uri, percentDecode(uri, value, QUERY_CHARS));
    // Loading a module runs its code: a relative path would load whatever the working directory of
    // a later command holds (a cloned repository's, say), so a URI names the module absolutely.
    if (!/^\/|^[A-Za-z]:[\\/]/.test(modulePath))
      refuse(uri, `module-path ${modulePath} is not an absolute path`);
    out.modulePath = modulePath;
  }
  // RFC 7512's object classes: another word is a typo, not a class some token might know.
  if (out.type !== undefined && !['public', 'private', 'cert', 'secret-key', 'data'].includes(out.type)) {
    refuse(uri, `type=${out.type.slice(0, 40)} is none of public, private, cert, secret-key, data`);
  }
  if (options.token !== true && out.id === undefined && out.object === undefined) {
    refuse(uri, 'it names no key: give id= or object=');
  }
  return out;
}

// RFC 3986 unreserved characters stand as they are; everything else is percent-encoded.
function encode(bytes: Uint8Array, keep = /[A-Za-z0-9\-._~]/): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && keep.test(c) ? c : `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export function formatPkcs11Uri(uri: Pkcs11Uri): string {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const parts: string[] = [];
  for (const name of ['token', 'manufacturer', 'serial', 'model'] as const) {
    const value = uri[name];
    if (value !== undefined) parts.push(`${name}=${encode(utf8(value))}`);
  }
  if (uri.slotId !== undefined) parts.push(`slot-id=${uri.slotId}`);
  if (uri.object !== undefined) parts.push(`object=${encode(utf8(uri.object))}`);
  if (uri.id !== undefined) parts.push(`id=${encode(uri.id, /^$/)}`);
  if (uri.type !== undefined) parts.push(`type=${encode(utf8(uri.type))}`);
  const query =
    uri.modulePath === undefined ? '' : `?module-path=${encode(utf8(uri.modulePath), /[A-Za-z0-9\-._~/]/)}`;
  return `pkcs11:${parts.join(';')}${query}`;
}
