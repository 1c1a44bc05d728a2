/**
 * Keys on a PKCS#11 token (`@tufa/core/pkcs11`, ADR 0016): ECDSA P-256 key pairs made and used on
 * the token through the optional native binding pkcs11js (an optional peer dependency), loaded on
 * first use. Signers implement core's Signer. One login per token per Pkcs11Tokens instance; a
 * wrong PIN is reported at once and never tried again, so the token's retry counter loses one try
 * at most. The CLI keeps one instance per command, the server one per process.
 */
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { toHex } from './encoding.js';
import { TufaError } from './errors.js';
import {
  computeKeyId,
  ed25519PublicKey,
  type Key,
  p256PublicKey,
  type Signer,
  verifySignature,
} from './keys.js';
import { createNodeCrypto } from './node-crypto.js';
import { formatPkcs11Uri, type Pkcs11Uri } from './pkcs11-uri.js';

// PKCS#11 2.40 constants (fixed by the standard, the same in every module).
const CKA_CLASS = 0x0;
const CKA_TOKEN = 0x1;
const CKA_PRIVATE = 0x2;
const CKA_LABEL = 0x3;
const CKA_KEY_TYPE = 0x100;
const CKA_ID = 0x102;
const CKA_SENSITIVE = 0x103;
const CKA_SIGN = 0x108;
const CKA_VERIFY = 0x10a;
const CKA_EXTRACTABLE = 0x162;
const CKA_EC_PARAMS = 0x180;
const CKA_EC_POINT = 0x181;
const CKA_ALWAYS_AUTHENTICATE = 0x202;
const CKO_PUBLIC_KEY = 2;
const CKO_PRIVATE_KEY = 3;
const CKK_EC = 3;
const CKM_EC_KEY_PAIR_GEN = 0x1040;
const CKM_ECDSA = 0x1041;
// PKCS#11 3.0: Ed25519 (pkcs11js 2.1.7 names only 2.40's constants; the numbers are the standard's).
const CKK_EC_EDWARDS = 0x40;
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
const CKF_RW_SESSION = 0x2;
const CKF_SERIAL_SESSION = 0x4;
const CKF_TOKEN_INITIALIZED = 0x400;
const CKF_USER_PIN_FINAL_TRY = 0x20000;
const CKF_USER_PIN_LOCKED = 0x40000;
const CKU_USER = 1;
const CKU_CONTEXT_SPECIFIC = 2;
const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_INVALID = 0xa1;
const CKR_PIN_LEN_RANGE = 0xa2;
const CKR_PIN_EXPIRED = 0xa3;
const CKR_PIN_LOCKED = 0xa4;
const CKR_USER_ALREADY_LOGGED_IN = 0x100;
const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;

/** DER of the named curve P-256 (OID 1.2.840.10045.3.1.7), CKA_EC_PARAMS of every key made here. */
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
/** CKA_EC_PARAMS of an Ed25519 key: the OID 1.3.101.112, or the curve's name as a PrintableString. */
const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');
const ED25519_PARAMS_NAME = Buffer.from('130c656477617264733235353139', 'hex');

/** The key types tufa makes and uses on a token. */
export type TokenKeyType = 'ecdsa' | 'ed25519';

// The part of pkcs11js's API used here: typed locally, as the optional package may be absent.
type Handle = Buffer;
type Attribute = { type: number; value?: number | boolean | string | Buffer };
interface TokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: number;
}
interface Pkcs11Api {
  load(path: string): void;
  C_Initialize(): void;
  C_GetSlotList(tokenPresent: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): TokenInfo;
  C_GetMechanismList(slot: Handle): number[];
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_Login(session: Handle, userType: number, pin: string): void;
  C_Logout(session: Handle): void;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle, max: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attribute[]): Attribute[];
  C_SetAttributeValue(session: Handle, object: Handle, template: Attribute[]): void;
  C_SignInit(session: Handle, mechanism: { mechanism: number }, key: Handle): void;
  C_Sign(session: Handle, data: Buffer, out: Buffer): Buffer;
  C_GenerateKeyPair(
    session: Handle,
    mechanism: { mechanism: number },
    publicTemplate: Attribute[],
    privateTemplate: Attribute[],
  ): { publicKey: Handle; privateKey: Handle };
}

async function loadBinding(): Promise<new () => Pkcs11Api> {
  // A name in a variable: neither tsc nor the bundler looks for the optional package.
  const name = 'pkcs11js';
  try {
    const mod = (await import(name)) as { default?: { PKCS11: new () => Pkcs11Api } };
    if (mod.default?.PKCS11 === undefined) throw new Error('no PKCS11 class');
    return mod.default.PKCS11;
  } catch (cause) {
    throw new TufaError(
      'TOKEN_UNAVAILABLE',
      'PKCS#11 support is not installed here: the optional dependency pkcs11js did not build at install (it needs a C++ compiler and Node’s headers; then run npm rebuild pkcs11js)',
      { cause },
    );
  }
}

const pkcs11Code = (err: unknown): number | undefined => {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
};

/** Anything else a module reports, as one error naming the operation and the module. */
function tokenFailure(modulePath: string, what: string, cause: unknown): TufaError {
  if (cause instanceof TufaError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new TufaError('TOKEN_UNAVAILABLE', `PKCS#11 module ${modulePath}: ${what} failed: ${message}`, {
    cause,
    details: { module: modulePath },
  });
}

/** Where the PIN of a token comes from (the CLI: TUFA_PKCS11_PIN or a prompt; the server: its settings). */
export interface PinSource {
  /** `what` names the token, for a prompt or an error. */
  get(what: string): Promise<string>;
}

const trimmed = (s: string) => s.replace(/[\s\u0000]+$/u, '');

let nodeCrypto: ReturnType<typeof createNodeCrypto> | undefined;
const tokenCrypto = () => {
  nodeCrypto ??= createNodeCrypto();
  return nodeCrypto;
};

/** One logged-in session on one token of one module. */
class TokenSession {
  private loggedIn = false;
  private pin: string | undefined;
  /** A refused login: every later use in this command gets the same answer, not another try. */
  private refused: TufaError | undefined;

  constructor(
    private readonly api: Pkcs11Api,
    readonly modulePath: string,
    readonly session: Handle,
    readonly info: TokenInfo,
    readonly slot: Handle,
  ) {}

  get label(): string {
    return trimmed(this.info.label);
  }

  /** The login under way: callers at the same time share it (one PIN asked, one C_Login tried). */
  private loggingIn: Promise<void> | undefined;

  /** Logs in once; a wrong PIN is reported at once and never tried again. */
  async login(pins: PinSource): Promise<void> {
    if (this.loggedIn) return;
    if (this.refused !== undefined) throw this.refused;
    this.loggingIn ??= this.tryLogin(pins)
      .catch((err: unknown) => {
        if (err instanceof TufaError && (err.code === 'WRONG_PIN' || err.code === 'PIN_REQUIRED')) {
          this.refused = err;
        }
        throw err;
      })
      .finally(() => {
        this.loggingIn = undefined;
      });
    return this.loggingIn;
  }

  private async tryLogin(pins: PinSource): Promise<void> {
    const flags = this.api.C_GetTokenInfo(this.slot).flags;
    if ((flags & CKF_USER_PIN_LOCKED) !== 0) {
      throw new TufaError(
        'WRONG_PIN',
        `the PIN of token "${this.label}" is locked (too many wrong PINs): unlock it with the token's own tools`,
        { details: { token: this.label, module: this.modulePath, locked: true } },
      );
    }
    const pin = await pins.get(`token "${this.label}"`);
    try {
      this.api.C_Login(this.session, CKU_USER, pin);
    } catch (err) {
      let code = pkcs11Code(err);
      if (code === CKR_USER_ALREADY_LOGGED_IN) {
        // Logged in by an earlier instance in this process (logins are per process): that says
        // nothing of this PIN, so log out and check it.
        code = this.relogin(pin);
        if (code === undefined) {
          this.loggedIn = true;
          this.pin = pin;
          return;
        }
      }
      if (code === CKR_PIN_INCORRECT || code === CKR_PIN_INVALID || code === CKR_PIN_LEN_RANGE) {
        const last = (this.api.C_GetTokenInfo(this.slot).flags & CKF_USER_PIN_FINAL_TRY) !== 0;
        throw new TufaError(
          'WRONG_PIN',
          `wrong PIN for token "${this.label}" (not tried again${last ? '; one more wrong PIN locks it' : ''})`,
          { details: { token: this.label, module: this.modulePath, finalTry: last } },
        );
      }
      if (code === CKR_PIN_LOCKED || code === CKR_PIN_EXPIRED) {
        throw new TufaError(
          'WRONG_PIN',
          `the PIN of token "${this.label}" is ${code === CKR_PIN_LOCKED ? 'locked' : 'expired'}`,
          { details: { token: this.label, module: this.modulePath, locked: code === CKR_PIN_LOCKED } },
        );
      }
      throw tokenFailure(this.modulePath, 'login', err);
    }
    this.loggedIn = true;
    this.pin = pin;
  }

  /** C_Logout then C_Login once more: the PKCS#11 code of a refusal, undefined when logged in. */
  private relogin(pin: string): number | undefined {
    try {
      this.api.C_Logout(this.session);
      this.api.C_Login(this.session, CKU_USER, pin);
      return undefined;
    } catch (err) {
      const code = pkcs11Code(err);
      if (code === undefined) throw tokenFailure(this.modulePath, 'login', err);
      return code;
    }
  }

  find(template: Attribute[]): Handle[] {
    this.api.C_FindObjectsInit(this.session, template);
    try {
      return this.api.C_FindObjects(this.session, 16);
    } finally {
      this.api.C_FindObjectsFinal(this.session);
    }
  }

  attribute(object: Handle, type: number): Buffer | undefined {
    try {
      const [attr] = this.api.C_GetAttributeValue(this.session, object, [{ type }]);
      return Buffer.isBuffer(attr?.value) ? attr.value : undefined;
    } catch {
      return undefined;
    }
  }

  /** The public key (P-256) of the pair the URI names, read from its public key object. */
  publicKey(uri: Pkcs11Uri): { key: Key; id: Buffer | undefined; label: string | undefined } {
    const found = this.find([{ type: CKA_CLASS, value: CKO_PUBLIC_KEY }, ...selector(uri)]);
    if (found.length === 0) {
      throw new TufaError(
        'NOT_FOUND',
        `no public key ${describe(uri)} on token "${this.label}" (module ${this.modulePath})`,
        { found: formatPkcs11Uri(uri) },
      );
    }
    if (found.length > 1) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `${found.length} keys on token "${this.label}" match ${describe(uri)}: name one by id= and object=`,
        { found: formatPkcs11Uri(uri) },
      );
    }
    const object = found[0]!;
    const label = this.attribute(object, CKA_LABEL)?.toString('utf8');
    const id = this.attribute(object, CKA_ID);
    const type = this.keyTypeOf(object);
    const params = this.attribute(object, CKA_EC_PARAMS);
    if (type === 'ed25519' && (params?.equals(ED25519_PARAMS) || params?.equals(ED25519_PARAMS_NAME))) {
      return { key: ed25519PublicKey(ecPoint(this.attribute(object, CKA_EC_POINT), 32)), id, label };
    }
    if (type !== 'ecdsa' || !params?.equals(P256_PARAMS)) {
      throw new TufaError(
        'UNSUPPORTED_KEY',
        `the key ${describe(uri)} on token "${this.label}" is neither ECDSA P-256 nor Ed25519`,
      );
    }
    const point = ecPoint(this.attribute(object, CKA_EC_POINT), 65);
    let pem: string;
    try {
      pem = createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, point]), format: 'der', type: 'spki' })
        .export({ format: 'pem', type: 'spki' })
        .toString();
    } catch (cause) {
      // OpenSSL refuses a point off the curve: the token's answer is no public key.
      throw new TufaError(
        'UNSUPPORTED_KEY',
        `the key ${describe(uri)} on token "${this.label}" has no valid P-256 public key (its point is not on the curve)`,
        { cause },
      );
    }
    return { key: p256PublicKey(pem), id, label };
  }

  private keyTypeOf(object: Handle): TokenKeyType | undefined {
    const value = this.attribute(object, CKA_KEY_TYPE);
    const type = value === undefined ? undefined : value.readUIntLE(0, Math.min(value.length, 6));
    return type === CKK_EC ? 'ecdsa' : type === CKK_EC_EDWARDS ? 'ed25519' : undefined;
  }

  /** Signs with the private key the URI names (logging in first): ECDSA over SHA-256, DER. */
  async sign(uri: Pkcs11Uri, pins: PinSource, message: Uint8Array): Promise<Uint8Array> {
    await this.login(pins);
    const found = this.find([{ type: CKA_CLASS, value: CKO_PRIVATE_KEY }, ...selector(uri)]);
    if (found.length !== 1) {
      throw new TufaError(
        found.length === 0 ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
        `${found.length === 0 ? 'no' : found.length} private key${found.length > 1 ? 's' : ''} ${describe(uri)} on token "${this.label}"`,
        { found: formatPkcs11Uri(uri) },
      );
    }
    const key = found[0]!;
    // Ed25519 signs the message itself; ECDSA a SHA-256 digest (CKM_ECDSA: what every token has).
    const eddsa = this.keyTypeOf(key) === 'ed25519';
    const input = eddsa ? Buffer.from(message) : createHash('sha256').update(message).digest();
    try {
      this.api.C_SignInit(this.session, { mechanism: eddsa ? CKM_EDDSA : CKM_ECDSA }, key);
      // A key that asks for the PIN on every use (YubiKey PIV slot 9c): the PIN given at login.
      const always = this.attribute(key, CKA_ALWAYS_AUTHENTICATE);
      if (always !== undefined && always[0] === 1) {
        this.api.C_Login(this.session, CKU_CONTEXT_SPECIFIC, this.pin ?? '');
      }
      const raw = this.api.C_Sign(this.session, input, Buffer.alloc(132));
      if (eddsa) {
        if (raw.length !== 64) throw new Error(`a ${raw.length}-byte Ed25519 signature`);
        return new Uint8Array(raw);
      }
      return derSignature(raw);
    } catch (err) {
      throw tokenFailure(this.modulePath, `signing with ${describe(uri)}`, err);
    }
  }

  /** Gives both halves of a key pair another CKA_ID. */
  setId(pair: { publicKey: Handle; privateKey: Handle }, id: Buffer): void {
    try {
      for (const object of [pair.publicKey, pair.privateKey]) {
        this.api.C_SetAttributeValue(this.session, object, [{ type: CKA_ID, value: id }]);
      }
    } catch (err) {
      throw tokenFailure(this.modulePath, 'setting a key id', err);
    }
  }

  /** Makes a key pair on the token (logging in first); returns its two objects. */
  async generate(
    pins: PinSource,
    options: { label: string; id: Buffer; type: TokenKeyType },
  ): Promise<{ publicKey: Handle; privateKey: Handle }> {
    const { label, id, type } = options;
    await this.login(pins);
    const ed25519 = type === 'ed25519';
    const mechanism = ed25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
    let mechanisms: number[];
    try {
      mechanisms = this.api.C_GetMechanismList(this.slot);
    } catch (err) {
      throw tokenFailure(this.modulePath, 'listing mechanisms', err);
    }
    if (!mechanisms.includes(mechanism) || !mechanisms.includes(ed25519 ? CKM_EDDSA : CKM_ECDSA)) {
      throw new TufaError(
        'UNSUPPORTED_KEY',
        `token "${this.label}" cannot make and use ${ed25519 ? 'Ed25519 keys (no CKM_EDDSA)' : 'ECDSA P-256 keys'}`,
        { found: type },
      );
    }
    if (this.find([{ type: CKA_ID, value: id }]).length > 0) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `token "${this.label}" already holds an object with id ${id.toString('hex')}: choose another --id`,
        { found: id.toString('hex') },
      );
    }
    const common: Attribute[] = [
      { type: CKA_TOKEN, value: true },
      { type: CKA_KEY_TYPE, value: ed25519 ? CKK_EC_EDWARDS : CKK_EC },
      { type: CKA_LABEL, value: label },
      { type: CKA_ID, value: id },
    ];
    try {
      return this.api.C_GenerateKeyPair(
        this.session,
        { mechanism },
        [
          ...common,
          { type: CKA_CLASS, value: CKO_PUBLIC_KEY },
          { type: CKA_VERIFY, value: true },
          { type: CKA_EC_PARAMS, value: ed25519 ? ED25519_PARAMS : P256_PARAMS },
        ],
        [
          ...common,
          { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
          { type: CKA_PRIVATE, value: true },
          { type: CKA_SIGN, value: true },
          { type: CKA_SENSITIVE, value: true },
          { type: CKA_EXTRACTABLE, value: false },
        ],
      );
    } catch (err) {
      throw tokenFailure(this.modulePath, `generating ${ed25519 ? 'an Ed25519' : 'a P-256'} key pair`, err);
    }
  }
}

function selector(uri: Pkcs11Uri): Attribute[] {
  return [
    ...(uri.id === undefined ? [] : [{ type: CKA_ID, value: Buffer.from(uri.id) }]),
    ...(uri.object === undefined ? [] : [{ type: CKA_LABEL, value: uri.object }]),
  ];
}

function describe(uri: Pkcs11Uri): string {
  return [
    ...(uri.object === undefined ? [] : [`"${uri.object}"`]),
    ...(uri.id === undefined ? [] : [`id ${Buffer.from(uri.id).toString('hex')}`]),
  ].join(' ');
}

/**
 * CKA_EC_POINT: a DER OCTET STRING around the point (some modules give it bare): the uncompressed
 * P-256 point (65 bytes) or the Ed25519 public key (32).
 */
function ecPoint(value: Buffer | undefined, size: 65 | 32): Buffer {
  if (value?.length === size + 2 && value[0] === 0x04 && value[1] === size) return value.subarray(2);
  if (value?.length === size && (size === 32 || value[0] === 0x04)) return value;
  throw new TufaError(
    'UNSUPPORTED_KEY',
    `the token gave no ${size === 65 ? 'uncompressed P-256 point' : 'Ed25519 key'}`,
  );
}

/** PKCS#11 gives ECDSA signatures as r||s; TUF's ecdsa-sha2-nistp256 signatures are DER. */
export function derSignature(raw: Uint8Array): Uint8Array {
  if (raw.length !== 64) {
    throw new TufaError('TOKEN_UNAVAILABLE', `the token gave a ${raw.length}-byte ECDSA signature, not 64`);
  }
  const integer = (bytes: Uint8Array): number[] => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const body = [...bytes.subarray(i)];
    if (body[0]! >= 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const content = [...integer(raw.subarray(0, 32)), ...integer(raw.subarray(32))];
  return Uint8Array.from([0x30, content.length, ...content]);
}

/**
 * The tokens one command uses: each module loaded and each token opened once, each logged in at
 * most once. Nothing is loaded until a key on a token is used.
 */
export class Pkcs11Tokens {
  private readonly modules = new Map<string, Promise<Pkcs11Api>>();
  private readonly sessions = new Map<string, Promise<TokenSession>>();
  /** One session per token, however its URIs name it: one login, so one wrong PIN at most. */
  private readonly bySlot = new Map<string, TokenSession>();

  constructor(readonly pins: PinSource) {}

  private module(modulePath: string): Promise<Pkcs11Api> {
    let api = this.modules.get(modulePath);
    if (api === undefined) {
      api = (async () => {
        const PKCS11 = await loadBinding();
        if (!existsSync(modulePath)) {
          throw new TufaError('TOKEN_UNAVAILABLE', `PKCS#11 module ${modulePath}: no such file`, {
            details: { module: modulePath },
          });
        }
        const p = new PKCS11();
        try {
          p.load(modulePath);
          try {
            p.C_Initialize();
          } catch (err) {
            // Loaded by another instance in this process (a server restarted in place): one library state.
            if (pkcs11Code(err) !== CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
          }
        } catch (err) {
          throw new TufaError(
            'TOKEN_UNAVAILABLE',
            `PKCS#11 module ${modulePath} cannot be loaded: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err, details: { module: modulePath } },
          );
        }
        return p;
      })();
      this.modules.set(modulePath, api);
    }
    return api;
  }

  /** The token the URI names (token, serial, manufacturer, model, slot-id), or the only one. */
  private open(modulePath: string, uri: Pkcs11Uri): Promise<TokenSession> {
    const key = `${modulePath}\u0000${uri.token ?? ''}\u0000${uri.serial ?? ''}\u0000${uri.manufacturer ?? ''}\u0000${uri.model ?? ''}\u0000${uri.slotId ?? ''}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      session = (async () => {
        const api = await this.module(modulePath);
        const candidates: { slot: Handle; info: TokenInfo }[] = [];
        let slots: Handle[];
        try {
          slots = api.C_GetSlotList(true);
        } catch (err) {
          throw tokenFailure(modulePath, 'listing slots', err);
        }
        for (const slot of slots) {
          const info = api.C_GetTokenInfo(slot);
          // An empty slot a module keeps for a new token (SoftHSM2 always has one) holds no key.
          if ((info.flags & CKF_TOKEN_INITIALIZED) === 0) continue;
          if (uri.token !== undefined && trimmed(info.label) !== uri.token) continue;
          if (uri.serial !== undefined && trimmed(info.serialNumber) !== uri.serial) continue;
          if (uri.manufacturer !== undefined && trimmed(info.manufacturerID) !== uri.manufacturer) continue;
          if (uri.model !== undefined && trimmed(info.model) !== uri.model) continue;
          if (uri.slotId !== undefined && slot.readUIntLE(0, Math.min(slot.length, 6)) !== uri.slotId)
            continue;
          candidates.push({ slot, info });
        }
        const named = uri.token === undefined ? 'no token' : `no token labelled "${uri.token}"`;
        if (candidates.length === 0) {
          throw new TufaError(
            'TOKEN_UNAVAILABLE',
            `${named} in PKCS#11 module ${modulePath} (is it plugged in?)`,
            {
              details: { module: modulePath, token: uri.token ?? null },
            },
          );
        }
        if (candidates.length > 1) {
          throw new TufaError(
            'INVALID_ARGUMENT',
            `${candidates.length} tokens in PKCS#11 module ${modulePath}: name one by its label (${candidates.map((c) => `"${trimmed(c.info.label)}"`).join(', ')})`,
          );
        }
        const { slot, info } = candidates[0]!;
        const slotKey = `${modulePath}\u0000${slot.toString('hex')}`;
        const known = this.bySlot.get(slotKey);
        if (known !== undefined) return known;
        let handle: Handle;
        try {
          handle = api.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
        } catch (err) {
          throw tokenFailure(modulePath, 'opening a session', err);
        }
        const opened = new TokenSession(api, modulePath, handle, info, slot);
        this.bySlot.set(slotKey, opened);
        return opened;
      })();
      this.sessions.set(key, session);
      session.catch(() => this.sessions.delete(key));
    }
    return session;
  }

  /**
   * Makes a P-256 key pair on a token; the URI (token, object, id, module) and its public key.
   * `idFromKeyid`: the pair's CKA_ID becomes its TUF key id (32 bytes), so that the key id alone
   * finds it again (the server's online keys).
   */
  async generate(options: {
    modulePath: string;
    token?: string | undefined;
    label: string;
    id?: Uint8Array | undefined;
    /** ECDSA P-256 unless `ed25519` (tokens with CKM_EDDSA). */
    type?: TokenKeyType;
    idFromKeyid?: boolean;
  }): Promise<{ uri: string; key: Key; keyid: string }> {
    const session = await this.open(
      options.modulePath,
      options.token === undefined ? {} : { token: options.token },
    );
    let id = Buffer.from(options.id ?? randomBytes(8));
    const pair = await session.generate(this.pins, {
      label: options.label,
      id,
      type: options.type ?? 'ecdsa',
    });
    const made: Pkcs11Uri = {
      token: session.label,
      object: options.label,
      id,
      modulePath: options.modulePath,
    };
    const { key } = session.publicKey(made);
    const keyid = computeKeyId(key);
    if (options.idFromKeyid === true) {
      id = Buffer.from(keyid, 'hex');
      session.setId(pair, id);
    }
    const uri: Pkcs11Uri = { ...made, id };
    return { uri: formatPkcs11Uri(uri), key, keyid };
  }

  /** Logs in to the token the URI names (once): a wrong PIN shows at once, before any signing. */
  async login(modulePath: string, uri: Pkcs11Uri): Promise<void> {
    await (await this.open(modulePath, uri)).login(this.pins);
  }

  /** The public key of an existing key pair, and its URI naming it fully (id, label, token, module). */
  async adopt(uri: Pkcs11Uri, modulePath: string): Promise<{ uri: string; key: Key; keyid: string }> {
    const session = await this.open(modulePath, uri);
    const found = session.publicKey(uri);
    const recorded: Pkcs11Uri = {
      ...uri,
      token: uri.token ?? session.label,
      ...(found.id === undefined ? {} : { id: found.id }),
      ...(uri.object === undefined && found.label !== undefined ? { object: found.label } : {}),
      modulePath,
    };
    return { uri: formatPkcs11Uri(recorded), key: found.key, keyid: computeKeyId(found.key) };
  }

  /**
   * A signer for the key pair the URI names. With `keyid`, the token's public key must still be
   * that key: another key under the same name signs nothing.
   */
  async signer(options: { uri: Pkcs11Uri; modulePath: string; keyid?: string }): Promise<Signer> {
    const { uri, modulePath } = options;
    const session = await this.open(modulePath, uri);
    const { key } = session.publicKey(uri);
    const keyid = computeKeyId(key);
    if (options.keyid !== undefined && keyid !== options.keyid) {
      throw new TufaError(
        'INVALID_KEY',
        `the key at ${formatPkcs11Uri(uri)} is no longer key ${options.keyid.slice(0, 12)}… (the token holds another key there)`,
        { expected: options.keyid, found: keyid },
      );
    }
    return {
      keyid,
      key,
      sign: async (message) => {
        const signature = await session.sign(uri, this.pins, message);
        // Checked against the public key the caller trusts: a private key that is not its pair, or
        // a faulty token, is caught here and not in a client refusing the metadata later.
        if (!verifySignature(tokenCrypto(), key, toHex(signature), message)) {
          throw new TufaError(
            'BAD_SIGNATURE',
            `the token's signature with ${describe(uri)} on token "${session.label}" does not verify with key ${keyid.slice(0, 12)}…: the private key there is not the pair of its public key, or the token is faulty`,
            { details: { keyid, module: modulePath } },
          );
        }
        return signature;
      },
    };
  }
}
