/**
 * The CLI's side of PKCS#11 keys (core's `@tufa/core/pkcs11` does the token work): the PIN from
 * TUFA_PKCS11_PIN or a prompt without echo, the module from --module or TUFA_PKCS11_MODULE, and
 * one set of open tokens per command. Loaded only when a key on a token is used.
 */
import { resolve } from 'node:path';
import { type Key, type Pkcs11Uri, parsePkcs11Uri, type Signer, TufaError } from '@tufa/core';
import { type PinSource, Pkcs11Tokens } from '@tufa/core/pkcs11';
import type { Context } from './context.js';
import { promptHidden } from './passphrase.js';

export const PIN_VARIABLE = 'TUFA_PKCS11_PIN';
export const MODULE_VARIABLE = 'TUFA_PKCS11_MODULE';

/** The PIN: TUFA_PKCS11_PIN, else a prompt without echo on a terminal, else PIN_REQUIRED at once. */
export function pinSource(
  env: NodeJS.ProcessEnv,
  terminal: { isTTY: boolean; prompt(question: string): Promise<string> } = {
    isTTY: process.stdin.isTTY === true,
    prompt: promptHidden,
  },
): PinSource {
  return {
    async get(what) {
      const fromEnv = env[PIN_VARIABLE];
      if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
      if (!terminal.isTTY) {
        throw new TufaError('PIN_REQUIRED', `${what}: no PIN: set ${PIN_VARIABLE} or run on a terminal`, {
          details: { variable: PIN_VARIABLE },
        });
      }
      return terminal.prompt(`PIN for ${what}: `);
    },
  };
}

/**
 * The module to load, as an absolute path: --module, else TUFA_PKCS11_MODULE (this run's machine),
 * else the module the key was recorded with (the URI's module-path).
 */
export function modulePathFor(env: NodeJS.ProcessEnv, option?: string, uri?: Pkcs11Uri): string {
  const fromEnv = env[MODULE_VARIABLE] === '' ? undefined : env[MODULE_VARIABLE];
  const path = option ?? fromEnv ?? uri?.modulePath;
  if (path === undefined || path === '') {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `no PKCS#11 module: give --module PATH or set ${MODULE_VARIABLE} (e.g. /usr/lib/softhsm/libsofthsm2.so, or ykcs11 for a YubiKey)`,
      { details: { variable: MODULE_VARIABLE } },
    );
  }
  // Recorded in the home as an absolute path (a URI's module-path must be one): the same module
  // from every later working directory.
  return resolve(path);
}

/** The tokens of one command: each opened and logged in to once. */
export interface CommandTokens {
  generate(options: {
    modulePath: string;
    token?: string | undefined;
    label: string;
    id?: Uint8Array | undefined;
    type?: 'ecdsa' | 'ed25519';
  }): Promise<{ uri: string; key: Key; keyid: string }>;
  /** An existing key pair, by URI; its module from --module, TUFA_PKCS11_MODULE or the URI. */
  adopt(uriText: string, moduleOption?: string): Promise<{ uri: string; key: Key; keyid: string }>;
  /** The signer of a key the home records by URI; the token must still hold that key. */
  signer(info: { keyid: string; pkcs11: string }): Promise<Signer>;
}

const perCommand = new WeakMap<Context, CommandTokens>();

export function tokensOf(ctx: Context): CommandTokens {
  let tokens = perCommand.get(ctx);
  if (tokens === undefined) {
    const open = new Pkcs11Tokens(pinSource(ctx.env));
    tokens = {
      generate: (options) => open.generate(options),
      adopt: (uriText, moduleOption) => {
        const uri = parsePkcs11Uri(uriText);
        return open.adopt(uri, modulePathFor(ctx.env, moduleOption, uri));
      },
      signer: (info) => {
        const uri: Pkcs11Uri = parsePkcs11Uri(info.pkcs11);
        return open.signer({ uri, modulePath: modulePathFor(ctx.env, undefined, uri), keyid: info.keyid });
      },
    };
    perCommand.set(ctx, tokens);
  }
  return tokens;
}
