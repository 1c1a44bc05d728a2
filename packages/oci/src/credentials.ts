/**
 * Registry credentials as Docker finds them: `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`) with `credHelpers` per registry, a `credsStore` for all, and `auths`
 * entries; each helper is the `docker-credential-NAME` executable on PATH, asked with `get`.
 * Secrets are held in memory only and never put into an error message.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJson, TufaError } from '@tufa/core';
import { DOCKER_HUB } from './reference.js';

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
  /** Where they came from, for messages: `--registry-user`, `config.json auths`, `docker-credential-NAME`. */
  readonly source: string;
}

/** Finds the credentials for a registry (as named in an image reference), or undefined: anonymous. */
export type CredentialSource = (registry: string) => Promise<RegistryCredentials | undefined>;

const CONFIG_LIMIT = 1024 * 1024;
const HELPER_OUTPUT_LIMIT = 64 * 1024;
const HELPER_TIMEOUT_MS = 30_000;

/** The key Docker files a registry under: Docker Hub's is its old index URL. */
export function dockerConfigKey(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/** `https://host/v1/`, `http://host`, `host` → `host`: how Docker matches keys of `auths`. */
function hostOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

interface DockerConfig {
  auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown }>;
  credsStore?: unknown;
  credHelpers?: Record<string, unknown>;
}

async function readDockerConfig(file: string): Promise<DockerConfig | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new TufaError('FILE_UNREADABLE', `the Docker configuration: cannot read ${file}`, {
      details: { path: file, reason: String((err as { code?: unknown }).code ?? err) },
      cause: err,
    });
  }
  if (bytes.length > CONFIG_LIMIT) {
    throw new TufaError('TOO_LARGE', `${file}: more than ${CONFIG_LIMIT} bytes`, { details: { path: file } });
  }
  const doc = parseJson(bytes, { source: file });
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new TufaError('INVALID_ARGUMENT', `${file}: not a JSON object`, { details: { path: file } });
  }
  return doc as DockerConfig;
}

export interface DockerCredentialOptions {
  /** The environment: DOCKER_CONFIG, HOME and PATH (for the helpers). */
  env: Record<string, string | undefined>;
}

/** Credentials from Docker's configuration, as `docker pull` would use them. */
export function dockerCredentials(options: DockerCredentialOptions): CredentialSource {
  const { env } = options;
  const dir = env.DOCKER_CONFIG ?? (env.HOME === undefined ? undefined : join(env.HOME, '.docker'));
  return async (registry) => {
    if (dir === undefined) return undefined;
    const file = join(dir, 'config.json');
    const config = await readDockerConfig(file);
    if (config === undefined) return undefined;
    const key = dockerConfigKey(registry);
    const helpers = isRecord(config.credHelpers) ? config.credHelpers : {};
    const helper = Object.hasOwn(helpers, registry)
      ? helpers[registry]
      : Object.hasOwn(helpers, key)
        ? helpers[key]
        : config.credsStore;
    if (typeof helper === 'string' && helper !== '') return fromHelper(helper, key, env);
    const auths = isRecord(config.auths) ? config.auths : {};
    const entry = Object.entries(auths).find(([k]) => k === key || hostOfKey(k) === hostOfKey(key))?.[1];
    if (!isRecord(entry)) return undefined;
    const where = `${file} auths["${key}"]`;
    if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
      throw identityToken(where);
    }
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) {
        throw new TufaError('INVALID_ARGUMENT', `${where}: "auth" is not base64 of USER:PASSWORD`);
      }
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: where };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      return { username: entry.username, password: entry.password, source: where };
    }
    return undefined;
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function identityToken(where: string): TufaError {
  return new TufaError(
    'INVALID_ARGUMENT',
    `${where} holds an identity token (an OAuth refresh token), which tufa does not use: give --registry-user with TUFA_REGISTRY_PASSWORD, or docker login with a password`,
  );
}

/** Runs `docker-credential-NAME get` with the server URL on stdin; its answer, or undefined when it has none. */
async function fromHelper(
  name: string,
  serverUrl: string,
  env: Record<string, string | undefined>,
): Promise<RegistryCredentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new TufaError('INVALID_ARGUMENT', `not a credential helper name: ${name.slice(0, 80)}`);
  }
  const program = `docker-credential-${name}`;
  const result = await new Promise<{ code: number | null; stdout: string; error?: NodeJS.ErrnoException }>(
    (done) => {
      const child = spawn(program, ['get'], {
        env: withoutTufaSecrets(env),
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      // Not spawn's own timeout option: its timer outlives a helper that never started (ENOENT).
      const timer = setTimeout(() => child.kill(), HELPER_TIMEOUT_MS);
      child.once('exit', () => clearTimeout(timer));
      child.once('error', () => clearTimeout(timer));
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
        if (stdout.length > HELPER_OUTPUT_LIMIT) child.kill();
      });
      child.on('error', (error: NodeJS.ErrnoException) => done({ code: null, stdout: '', error }));
      child.on('close', (code) => done({ code, stdout }));
      child.stdin.on('error', () => {});
      child.stdin.end(serverUrl);
    },
  );
  if (result.error !== undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      result.error.code === 'ENOENT'
        ? `the Docker configuration names the credential helper ${program}, which is not on PATH`
        : `cannot run ${program}: ${result.error.code ?? result.error.message}`,
      { details: { helper: program } },
    );
  }
  // Docker's helpers say "credentials not found" (exit 1) for a registry they hold nothing for.
  if (result.code !== 0) {
    if (/credentials not found/i.test(result.stdout)) return undefined;
    throw new TufaError('INVALID_ARGUMENT', `${program} get exited ${result.code ?? 'on a signal'}`, {
      details: { helper: program },
    });
  }
  let answer: unknown;
  try {
    answer = JSON.parse(result.stdout);
  } catch {
    throw new TufaError('INVALID_ARGUMENT', `${program} get did not answer JSON`, {
      details: { helper: program },
    });
  }
  if (!isRecord(answer) || typeof answer.Username !== 'string' || typeof answer.Secret !== 'string') {
    throw new TufaError('INVALID_ARGUMENT', `${program} get did not answer {"Username", "Secret"}`, {
      details: { helper: program },
    });
  }
  if (answer.Username === '<token>') throw identityToken(program);
  if (answer.Username === '' && answer.Secret === '') return undefined;
  return { username: answer.Username, password: answer.Secret, source: program };
}

/** The environment for a program tufa runs (a credential helper, a container engine): tufa's own secrets (a token PIN too) left out. */
export function withoutTufaSecrets(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !/^TUFA_.*(PASSPHRASE|PASSWORD|TOKEN|PIN|MASTER_KEY)$/.test(k)) out[k] = v;
  }
  return out;
}

/** Fixed credentials (`--registry-user` with TUFA_REGISTRY_PASSWORD) for every registry. */
export function staticCredentials(username: string, password: string, source: string): CredentialSource {
  if (username === '' || username.includes(':') || /[\u0000-\u001f\u007f]/.test(username)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'a registry user name is not empty and has no ":" or control characters',
    );
  }
  return async () => ({ username, password, source });
}
