/**
 * Passphrases: from TUFA_<ROLE>_PASSPHRASE in scripts, or a prompt without echo on a terminal.
 * With neither, a clear error at once — never a hang waiting on a pipe.
 */
import { TufaError } from '@tufa/core';
import type { KeyRole } from './keystore.js';

export const PASSPHRASE_VARIABLES: Readonly<Record<KeyRole, string>> = Object.freeze({
  root: 'TUFA_ROOT_PASSPHRASE',
  targets: 'TUFA_TARGETS_PASSPHRASE',
  snapshot: 'TUFA_SNAPSHOT_PASSPHRASE',
  delegation: 'TUFA_DELEGATION_PASSPHRASE',
});

export interface PassphraseSource {
  /** The passphrase for a key of `role`; `confirm` asks twice (for a new key). */
  get(role: KeyRole, what: string, confirm?: boolean): Promise<string>;
  /** The passphrase for `role` when it is known without asking (the environment), else undefined. */
  known(role: KeyRole): string | undefined;
}

export interface TerminalIo {
  isTTY: boolean;
  prompt(question: string): Promise<string>;
  /** A line for the person at the terminal (stderr). */
  say?(text: string): void;
}

/** How many times a new passphrase is asked for when it is empty or not repeated the same. */
export const NEW_PASSPHRASE_ATTEMPTS = 3;

export function passphraseSource(env: NodeJS.ProcessEnv, terminal: TerminalIo): PassphraseSource {
  const cache = new Map<KeyRole, string>();
  return {
    known(role) {
      const fromEnv = env[PASSPHRASE_VARIABLES[role]];
      return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
    },
    async get(role, what, confirm = false) {
      const variable = PASSPHRASE_VARIABLES[role];
      const fromEnv = env[variable];
      if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
      const cached = cache.get(role);
      if (cached !== undefined && !confirm) return cached;
      if (!terminal.isTTY) {
        throw new TufaError(
          'PASSPHRASE_REQUIRED',
          `${what}: no passphrase: set ${variable} or run on a terminal`,
          {
            role,
            details: { variable },
          },
        );
      }
      if (!confirm) {
        const typed = await terminal.prompt(`Passphrase for ${what}: `);
        cache.set(role, typed);
        return typed;
      }
      // A new key's passphrase: a typo or an empty line asks again, a few times.
      for (let attempt = 1; ; attempt++) {
        const first = await terminal.prompt(`Passphrase for ${what}: `);
        const empty = first.length === 0;
        if (!empty && (await terminal.prompt(`Repeat the passphrase for ${what}: `)) === first) {
          cache.set(role, first);
          return first;
        }
        const problem = empty ? 'an empty passphrase protects nothing' : 'the two passphrases differ';
        if (attempt >= NEW_PASSPHRASE_ATTEMPTS) {
          throw new TufaError(
            empty ? 'PASSPHRASE_REQUIRED' : 'INVALID_ARGUMENT',
            `${problem} (${NEW_PASSPHRASE_ATTEMPTS} attempts)`,
            { role },
          );
        }
        terminal.say?.(`${problem}: try again`);
      }
    },
  };
}

/** Reads a line from the terminal without echoing it. */
export async function promptHidden(question: string): Promise<string> {
  const { stdin, stderr } = process;
  stderr.write(question);
  return new Promise((resolve, reject) => {
    let input = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.off('data', onData);
      stderr.write('\n');
      if (err) reject(err);
      else resolve(input);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new TufaError('INVALID_ARGUMENT', 'interrupted'));
        if (ch === '\u007f' || ch === '\b') input = input.slice(0, -1);
        else if (input.length < 1024) input += ch;
      }
    };
    stdin.on('data', onData);
  });
}
