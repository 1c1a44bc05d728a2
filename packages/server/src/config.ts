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
  /** 0 disables the background re-signer. */
  resignInterval: number;
  /** Re-sign in the last `resignFraction` of a lifetime. */
  resignFraction: number;
  shutdownTimeout: number;
  migrationsDir: string | undefined;
}

interface OptionSpec {
  flag: string;
  env: string;
  help: string;
  default?: string;
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
];

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
    '',
    'Runs the tufa TUF server (Notary-style API). `migrate` applies the database migrations and exits.',
    '',
    'Options (each also read from the environment variable shown; flags win):',
  ];
  for (const o of OPTIONS) {
    lines.push(
      `  --${o.flag.padEnd(18)} ${o.env.padEnd(22)} ${o.help}${o.default ? ` (default ${o.default})` : ''}`,
    );
  }
  lines.push('  --help                                    this text');
  lines.push('', 'TUFA_MASTER_KEY: the master key itself (64 hex digits or base64 of 32 bytes).');
  return lines.join('\n');
}

export interface ParsedCommand {
  command: 'serve' | 'migrate' | 'help';
  config: ServerConfig;
}

export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const spec: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const o of OPTIONS) spec[o.flag] = { type: 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: spec, allowPositionals: true, strict: true });
  } catch (cause) {
    throw new TufaError('INVALID_ARGUMENT', (cause as Error).message, { cause });
  }
  const positionals = parsed.positionals;
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== 'migrate')) {
    throw new TufaError('INVALID_ARGUMENT', `unknown command ${JSON.stringify(positionals.join(' '))}`);
  }
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
    resignInterval: parseDuration(get('resign-interval')!, 'resign-interval'),
    resignFraction: fraction,
    shutdownTimeout: parseDuration(get('shutdown-timeout')!, 'shutdown-timeout'),
    migrationsDir: get('migrations-dir'),
  };
  if (config.timestampExpiry < 1000 || config.snapshotExpiry < 1000) {
    throw new TufaError('INVALID_ARGUMENT', 'expiries must be at least one second');
  }
  const command = parsed.values.help === true ? 'help' : positionals[0] === 'migrate' ? 'migrate' : 'serve';
  return { command, config };
}
