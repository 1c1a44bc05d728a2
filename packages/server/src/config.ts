/** Server configuration from flags and environment variables (flags win). */
import { parseArgs } from 'node:util';
import { DEFAULT_EXPIRY, TufaError } from '@tufa/core';

export interface ServerConfig {
  host: string;
  port: number;
  /** postgres://… ; undefined: the embedded PostgreSQL in `dataDir`. */
  databaseUrl: string | undefined;
  /** A file with the database password, kept out of the URL and the environment. */
  databasePasswordFile?: string | undefined;
  dataDir: string;
  masterKey: string | undefined;
  masterKeyFile: string | undefined;
  logLevel: string;
  /** Bytes. */
  bodyLimit: number;
  /** Milliseconds. */
  requestTimeout: number;
  poolSize: number;
  timestampExpiry: number;
  snapshotExpiry: number;
  /** How long a pending update (threshold signing) waits for signatures by default, ms. */
  pendingExpiry?: number | undefined;
  /** 0 disables the background re-signer. */
  resignInterval: number;
  /** Re-sign in the last `resignFraction` of a lifetime. */
  resignFraction: number;
  shutdownTimeout: number;
  migrationsDir: string | undefined;
  /** PEM files: serve HTTPS with this certificate and key. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** PEM CA bundle: require client certificates it issued (mutual TLS). */
  tlsClientCa?: string | undefined;
  /** JSON file: client certificate subject (`CN=ci,O=Acme`) → token name. */
  tlsClientSubjects?: string | undefined;
  /** Anonymous callers may pull unless this is set. */
  requireAuthForPull?: boolean;
  /** Development only: anonymous callers may push and delete too. */
  allowAnonymousWrites?: boolean;
  /** Failed authentications per address per window before 429. */
  authFailLimit?: number;
  /** ms. */
  authFailWindow?: number;
  maxConcurrentPerAddress?: number;
  /** Largest metadata document of a collection, bytes. */
  maxMetadataSize?: number;
  /** Most delegated roles a collection may declare. */
  maxDelegatedRoles?: number;
}

interface OptionSpec {
  flag: string;
  env: string;
  help: string;
  default?: string;
  /** A flag without a value (the variable: 1, true, yes). */
  boolean?: true;
}

export const OPTIONS: readonly OptionSpec[] = [
  { flag: 'host', env: 'TUFA_HOST', help: 'address to listen on', default: '127.0.0.1' },
  { flag: 'port', env: 'TUFA_PORT', help: 'port to listen on', default: '4443' },
  {
    flag: 'database-url',
    env: 'DATABASE_URL',
    help: 'PostgreSQL URL (postgres://user:pass@host:5432/db); unset: embedded PostgreSQL in --data-dir',
  },
  {
    flag: 'database-password-file',
    env: 'TUFA_DATABASE_PASSWORD_FILE',
    help: 'file holding the database password (a secret), used with --database-url',
  },
  {
    flag: 'data-dir',
    env: 'TUFA_DATA_DIR',
    help: 'folder of the embedded database and its generated master key',
    default: './tufa-data',
  },
  {
    flag: 'master-key-file',
    env: 'TUFA_MASTER_KEY_FILE',
    help: 'file holding the 32-byte master key (hex or base64); TUFA_MASTER_KEY gives it directly',
  },
  {
    flag: 'log-level',
    env: 'TUFA_LOG_LEVEL',
    help: 'fatal|error|warn|info|debug|trace|silent',
    default: 'info',
  },
  {
    flag: 'body-limit',
    env: 'TUFA_BODY_LIMIT',
    help: 'largest update body, bytes (k, m suffixes)',
    default: '32m',
  },
  {
    flag: 'request-timeout',
    env: 'TUFA_REQUEST_TIMEOUT',
    help: 'request timeout (s, m suffixes; ms)',
    default: '60s',
  },
  { flag: 'pool-size', env: 'TUFA_POOL_SIZE', help: 'database connections', default: '10' },
  { flag: 'timestamp-expiry', env: 'TUFA_TIMESTAMP_EXPIRY', help: 'timestamp lifetime', default: '14d' },
  {
    flag: 'snapshot-expiry',
    env: 'TUFA_SNAPSHOT_EXPIRY',
    help: 'server-signed snapshot lifetime',
    default: '1095d',
  },
  {
    flag: 'pending-expiry',
    env: 'TUFA_PENDING_EXPIRY',
    help: 'how long a pending update waits for co-signers (at most 90d)',
    default: '7d',
  },
  {
    flag: 'resign-interval',
    env: 'TUFA_RESIGN_INTERVAL',
    help: 'how often to look for metadata to re-sign (0: never)',
    default: '60s',
  },
  {
    flag: 'resign-fraction',
    env: 'TUFA_RESIGN_FRACTION',
    help: 're-sign in this last fraction of a lifetime',
    default: '0.3333',
  },
  {
    flag: 'shutdown-timeout',
    env: 'TUFA_SHUTDOWN_TIMEOUT',
    help: 'grace for in-flight requests',
    default: '30s',
  },
  { flag: 'migrations-dir', env: 'TUFA_MIGRATIONS_DIR', help: 'folder of the numbered SQL migrations' },
  { flag: 'tls-cert', env: 'TUFA_TLS_CERT', help: 'PEM certificate (chain): serve HTTPS' },
  { flag: 'tls-key', env: 'TUFA_TLS_KEY', help: 'PEM private key of --tls-cert' },
  {
    flag: 'tls-client-ca',
    env: 'TUFA_TLS_CLIENT_CA',
    help: 'PEM CA bundle: require client certificates it issued (mutual TLS)',
  },
  {
    flag: 'tls-client-subjects',
    env: 'TUFA_TLS_CLIENT_SUBJECTS',
    help: 'JSON file mapping certificate subjects ("CN=ci,O=Acme") to token names',
  },
  {
    flag: 'require-auth-for-pull',
    env: 'TUFA_REQUIRE_AUTH_FOR_PULL',
    help: 'pulls need a token with a pull scope too',
    boolean: true,
  },
  {
    flag: 'allow-anonymous-writes',
    env: 'TUFA_ALLOW_ANONYMOUS_WRITES',
    help: 'DEVELOPMENT ONLY: anyone may push and delete without a token',
    boolean: true,
  },
  {
    flag: 'auth-fail-limit',
    env: 'TUFA_AUTH_FAIL_LIMIT',
    help: 'failed authentications per address per window before 429',
    default: '10',
  },
  {
    flag: 'auth-fail-window',
    env: 'TUFA_AUTH_FAIL_WINDOW',
    help: 'the window of --auth-fail-limit',
    default: '60s',
  },
  {
    flag: 'max-concurrent-per-address',
    env: 'TUFA_MAX_CONCURRENT_PER_ADDRESS',
    help: 'requests one address may have in flight',
    default: '64',
  },
  {
    flag: 'max-metadata-size',
    env: 'TUFA_MAX_METADATA_SIZE',
    help: 'largest metadata document of a collection (k, m suffixes)',
    default: '32m',
  },
  {
    flag: 'max-delegated-roles',
    env: 'TUFA_MAX_DELEGATED_ROLES',
    help: 'most delegated roles one collection may declare',
    default: '1000',
  },
];

/** Options of the administration commands (token, audit). */
export const ADMIN_OPTIONS = {
  name: { type: 'string' },
  scope: { type: 'string', multiple: true },
  gun: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `5m`, `12h`, `14d`; a bare number is seconds. Milliseconds out. */
export function parseDuration(text: string, name: string): number {
  const m = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(text.trim());
  if (m === null)
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${name}: ${JSON.stringify(text)} is not a duration like 30s, 5m, 14d`,
    );
  return Number(m[1]) * UNITS[m[2] ?? 's']!;
}

export function parseSize(text: string, name: string): number {
  const m = /^(\d{1,12})([kKmM])?$/.exec(text.trim());
  if (m === null)
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${name}: ${JSON.stringify(text)} is not a size like 512k or 32m`,
    );
  const unit = m[2] === undefined ? 1 : m[2].toLowerCase() === 'k' ? 1024 : 1024 * 1024;
  return Number(m[1]) * unit;
}

function integer(text: string, name: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw new TufaError('INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}`);
  }
  return Number(text);
}

export function helpText(): string {
  const lines = [
    'Usage: tufa-server [migrate] [options]',
    '       tufa-server token create --name NAME --scope ACTION:GLOB [--scope …] [options]',
    '       tufa-server token list [--json] [options]',
    '       tufa-server token revoke NAME [options]',
    '       tufa-server audit [--gun GUN] [--since 2026-11-23|24h] [--limit N] [--json] [options]',
    '',
    'Runs the tufa TUF server (Notary-style API). `migrate` applies the database migrations and exits.',
    '`token` manages access tokens (ACTION: pull, push, delete, admin; GLOB: *, acme/*, acme/app);',
    'a new token is printed once. `audit` lists the audit log of writes.',
    '',
    'Options (each also read from the environment variable shown; flags win):',
  ];
  for (const o of OPTIONS) {
    lines.push(
      `  --${o.flag.padEnd(26)} ${o.env.padEnd(31)} ${o.help}${o.default ? ` (default ${o.default})` : ''}`,
    );
  }
  lines.push(`  --${'help'.padEnd(26)} ${''.padEnd(31)} this text`);
  lines.push('', 'TUFA_MASTER_KEY: the master key itself (64 hex digits or base64 of 32 bytes).');
  return lines.join('\n');
}

export type CommandName =
  | 'serve'
  | 'migrate'
  | 'help'
  | 'token-create'
  | 'token-list'
  | 'token-revoke'
  | 'audit';

export interface AdminArgs {
  name?: string | undefined;
  scopes: string[];
  gun?: string | undefined;
  since?: string | undefined;
  limit?: number | undefined;
  json: boolean;
}

export interface ParsedCommand {
  command: CommandName;
  config: ServerConfig;
  admin: AdminArgs;
}

const TRUE = /^(?:1|true|yes|on)$/i;

function commandOf(positionals: readonly string[]): { command: CommandName; name?: string } {
  const [first, second, third, ...rest] = positionals;
  const unknown = () =>
    new TufaError(
      'INVALID_ARGUMENT',
      `unknown command ${JSON.stringify(positionals.join(' ').slice(0, 200))}`,
    );
  if (first === undefined) return { command: 'serve' };
  if (first === 'migrate' && second === undefined) return { command: 'migrate' };
  if (first === 'audit' && second === undefined) return { command: 'audit' };
  if (first === 'token' && rest.length === 0) {
    if (second === 'create' && third === undefined) return { command: 'token-create' };
    if (second === 'list' && third === undefined) return { command: 'token-list' };
    if (second === 'revoke' && third !== undefined) return { command: 'token-revoke', name: third };
    if (second === 'revoke')
      throw new TufaError('INVALID_ARGUMENT', 'token revoke NAME: the name is missing');
  }
  throw unknown();
}

export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const spec: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
    ...ADMIN_OPTIONS,
  };
  for (const o of OPTIONS) spec[o.flag] = { type: o.boolean ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: spec, allowPositionals: true, strict: true });
  } catch (cause) {
    throw new TufaError('INVALID_ARGUMENT', (cause as Error).message, { cause });
  }
  const { command: named, name: revokeName } = commandOf(parsed.positionals);
  const adminOnly = ['name', 'scope', 'gun', 'since', 'limit', 'json'].filter(
    (k) => parsed.values[k] !== undefined,
  );
  const allowedAdmin: Record<CommandName, string[]> = {
    serve: [],
    migrate: [],
    help: [],
    'token-create': ['name', 'scope', 'json'],
    'token-list': ['json'],
    'token-revoke': ['json'],
    audit: ['gun', 'since', 'limit', 'json'],
  };
  for (const k of adminOnly) {
    if (!allowedAdmin[named].includes(k)) {
      throw new TufaError('INVALID_ARGUMENT', `--${k} does not apply to this command`);
    }
  }
  const bool = (flag: string): boolean => {
    const o = OPTIONS.find((x) => x.flag === flag)!;
    if (parsed.values[flag] === true) return true;
    const fromEnv = env[o.env];
    return fromEnv !== undefined && TRUE.test(fromEnv.trim());
  };
  const get = (flag: string): string | undefined => {
    const o = OPTIONS.find((x) => x.flag === flag)!;
    const fromFlag = parsed.values[flag];
    if (typeof fromFlag === 'string') return fromFlag;
    const fromEnv = env[o.env];
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : o.default;
  };
  const fraction = Number(get('resign-fraction'));
  if (!(fraction > 0 && fraction < 1)) {
    throw new TufaError('INVALID_ARGUMENT', 'resign-fraction must be between 0 and 1');
  }
  const config: ServerConfig = {
    host: get('host')!,
    port: integer(get('port')!, 'port', 0, 65535),
    databaseUrl: get('database-url'),
    databasePasswordFile: get('database-password-file'),
    dataDir: get('data-dir')!,
    masterKey: env.TUFA_MASTER_KEY,
    masterKeyFile: get('master-key-file'),
    logLevel: get('log-level')!,
    bodyLimit: parseSize(get('body-limit')!, 'body-limit'),
    requestTimeout: parseDuration(get('request-timeout')!, 'request-timeout'),
    poolSize: integer(get('pool-size')!, 'pool-size', 1, 1000),
    timestampExpiry: parseDuration(
      get('timestamp-expiry') ?? `${DEFAULT_EXPIRY.timestamp}ms`,
      'timestamp-expiry',
    ),
    snapshotExpiry: parseDuration(
      get('snapshot-expiry') ?? `${DEFAULT_EXPIRY.snapshot}ms`,
      'snapshot-expiry',
    ),
    pendingExpiry: parseDuration(get('pending-expiry')!, 'pending-expiry'),
    resignInterval: parseDuration(get('resign-interval')!, 'resign-interval'),
    resignFraction: fraction,
    shutdownTimeout: parseDuration(get('shutdown-timeout')!, 'shutdown-timeout'),
    migrationsDir: get('migrations-dir'),
    tlsCert: get('tls-cert'),
    tlsKey: get('tls-key'),
    tlsClientCa: get('tls-client-ca'),
    tlsClientSubjects: get('tls-client-subjects'),
    requireAuthForPull: bool('require-auth-for-pull'),
    allowAnonymousWrites: bool('allow-anonymous-writes'),
    authFailLimit: integer(get('auth-fail-limit')!, 'auth-fail-limit', 1, 1_000_000),
    authFailWindow: parseDuration(get('auth-fail-window')!, 'auth-fail-window'),
    maxConcurrentPerAddress: integer(
      get('max-concurrent-per-address')!,
      'max-concurrent-per-address',
      1,
      100_000,
    ),
    maxMetadataSize: parseSize(get('max-metadata-size')!, 'max-metadata-size'),
    maxDelegatedRoles: integer(get('max-delegated-roles')!, 'max-delegated-roles', 0, 1_000_000),
  };
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new TufaError('INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
  }
  if (config.tlsClientCa !== undefined && config.tlsCert === undefined) {
    throw new TufaError('INVALID_ARGUMENT', '--tls-client-ca needs --tls-cert and --tls-key');
  }
  if (config.tlsClientSubjects !== undefined && config.tlsClientCa === undefined) {
    throw new TufaError('INVALID_ARGUMENT', '--tls-client-subjects needs --tls-client-ca');
  }
  if ((config.authFailWindow ?? 0) < 1000) {
    throw new TufaError('INVALID_ARGUMENT', 'auth-fail-window must be at least one second');
  }
  const limitText = parsed.values.limit;
  const admin: AdminArgs = {
    name: named === 'token-revoke' ? revokeName : (parsed.values.name as string | undefined),
    scopes: (parsed.values.scope as string[] | undefined) ?? [],
    gun: parsed.values.gun as string | undefined,
    since: parsed.values.since as string | undefined,
    limit: typeof limitText === 'string' ? integer(limitText, 'limit', 1, 100_000) : undefined,
    json: parsed.values.json === true,
  };
  if (named === 'token-create' && (admin.name === undefined || admin.scopes.length === 0)) {
    throw new TufaError('INVALID_ARGUMENT', 'token create needs --name NAME and at least one --scope');
  }
  if (config.timestampExpiry < 1000 || config.snapshotExpiry < 1000) {
    throw new TufaError('INVALID_ARGUMENT', 'expiries must be at least one second');
  }
  const pending = config.pendingExpiry ?? 0;
  if (pending < 1000 || pending > 90 * 24 * 3600 * 1000) {
    throw new TufaError('INVALID_ARGUMENT', '--pending-expiry must be between 1s and 90d', {
      found: pending,
    });
  }
  const command = parsed.values.help === true ? 'help' : named;
  return { command, config, admin };
}
