/** What every command gets: TUFA_HOME, output, passphrases, and the global options. */
import { join } from 'node:path';
import type { CryptoProvider } from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { tufaHome } from './home.js';
import { Keystore } from './keystore.js';
import { makeOutput, type Output } from './output.js';
import { type PassphraseSource, passphraseSource, promptHidden } from './passphrase.js';

export interface GlobalOptions {
  json?: boolean;
  debug?: boolean;
  server?: string;
  token?: string;
  rootKey?: string[];
  trustRoot?: string;
  tofu?: boolean;
  caFile?: string;
  clientCert?: string;
  clientKey?: string;
}

export interface Context {
  readonly home: string;
  /** The command's crypto provider (node:crypto): every signature, hash and key of this run. */
  readonly crypto: CryptoProvider;
  readonly keystore: Keystore;
  readonly out: Output;
  readonly passphrases: PassphraseSource;
  readonly env: NodeJS.ProcessEnv;
  readonly options: GlobalOptions;
}

export function makeContext(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Context {
  const home = tufaHome(env);
  const crypto = createNodeCrypto();
  return {
    home,
    crypto,
    keystore: new Keystore(join(home, 'private'), crypto),
    out: makeOutput(options.json === true),
    passphrases: passphraseSource(env, {
      // Read when a passphrase is asked for: process.stdin costs a stream (about 2 ms) that reads never need.
      get isTTY() {
        return process.stdin.isTTY === true;
      },
      prompt: promptHidden,
      say: (text) => process.stderr.write(`${text}\n`),
    }),
    env,
    options,
  };
}
