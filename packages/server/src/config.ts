/** Server configuration from flags and environment variables (flags win), parsed with commander. */
import { readFileSync } from 'node:fs';
import { DEFAULT_EXPIRY, TufaError } from '@tufa/core';
import { Command, CommanderError, Help, Option } from 'commander';
import { parseTrustedProxies } from './proxies.js';
import { checkOnlineKeyToken } from './token-keys.js';

export interface ServerConfig {
  host: string;
  port: number;
  /** postgres://… ; undefined: the embedded PostgreSQL in `dataDir`. */
  databaseUrl: string | undefined;
  /** A file with the database password, kept out of the URL and the environment. */
  databasePasswordFile?: string | undefined;
  /** PEM CA bundle that signs the database server's certificate (TLS to PostgreSQL). */
  databaseCaFile?: string | undefined;
  dataDir: string;
  masterKey: string | undefined;
  masterKeyFile: string | undefined;
  /** A PKCS#11 URI: the token that holds the online keys (undefined: encrypted under the master key). */
  onlineKeys?: string | undefined;
  /** With onlineKeys naming a key pair: that one key signs every collection's timestamp and snapshot. */
  onlineKeysShared?: boolean | undefined;
  /** The token's PIN (TUFA_ONLINE_KEYS_PIN), or a file holding it. */
  onlineKeysPin?: string | undefined;
  onlineKeysPinFile?: string | undefined;
  logLevel: string;
  /** Bytes. */
  bodyLimit: number;
  /** Bytes of request bodies the process holds at once, across all requests (default 2 × bodyLimit). */
  bodyBudget?: number | undefined;
  /** Updates with more bytes to parse than this are checked in the verification worker (default 1 MiB). */
  verifyWorkerAbove?: number | undefined;
  /** The verification worker's heap, bytes (default 512 MiB): an update needing more is refused TOO_LARGE. */
  verifyWorkerMemory?: number | undefined;
  /** How long the verification worker stays once no update waits, ms (default 10 s). */
  verifyWorkerIdle?: number | undefined;
  /** The verification worker stays idle only while its heap is at most this, bytes (default 24 MiB). */
  verifyWorkerIdleHeap?: number | undefined;
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
  /** CIDR ranges of proxies whose `Forwarded`/`X-Forwarded-For` name the client (comma-separated). */
  trustedProxies?: string | undefined;
  /** Largest metadata document of a collection, bytes. */
  maxMetadataSize?: number;
  /** Most delegated roles a collection may declare by name. */
  maxDelegatedRoles?: number;
  /** The read-only status page at /ui/ (default on). */
  ui?: boolean;
  /** Most collections in the per-collection series of /metrics, soonest expiry first (0: none). */
  metricsCollections?: number;
  /** Most succinct hash bins (TAP 15) a collection may declare. */
  maxHashBins?: number;
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
    help: 'PostgreSQL URL (postgres://user@host:5432/db; the password in --database-password-file); unset: embedded PostgreSQL in --data-dir',
  },
  {
    flag: 'database-password-file',
    env: 'TUFA_DATABASE_PASSWORD_FILE',
    help: 'file holding the database password (a secret), used with --database-url',
  },
  {
    flag: 'database-ca-file',
    env: 'TUFA_DATABASE_CA_FILE',
    help: 'PEM CA bundle of the database server (TLS: verify-full, or verify-ca with sslmode=require or verify-ca)',
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
    flag: 'online-keys',
    env: 'TUFA_ONLINE_KEYS',
    help: 'keep the online (timestamp, snapshot) keys on a PKCS#11 token: pkcs11:token=LABEL?module-path=/path/to/module.so (one key per collection and role)',
  },
  {
    flag: 'online-keys-shared',
    env: 'TUFA_ONLINE_KEYS_SHARED',
    help: 'with --online-keys naming a key pair (object= or id=): that key signs every collection',
    boolean: true,
  },
  {
    flag: 'online-keys-pin-file',
    env: 'TUFA_ONLINE_KEYS_PIN_FILE',
    help: 'file holding the PIN of the --online-keys token; TUFA_ONLINE_KEYS_PIN gives it directly',
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
    flag: 'body-budget',
    env: 'TUFA_BODY_BUDGET',
    help: 'request bodies held at once by the whole process, bytes (k, m); past it 503 + Retry-After',
    default: '64m',
  },
  {
    flag: 'verify-worker-above',
    env: 'TUFA_VERIFY_WORKER_ABOVE',
    help: 'an update with more bytes to parse than this is checked in a worker thread, not on the event loop (k, m; 0: every update)',
    default: '1m',
  },
  {
    flag: 'verify-worker-memory',
    env: 'TUFA_VERIFY_WORKER_MEMORY',
    help: "the verification worker's heap (m); an update whose check needs more is refused 413",
    default: '512m',
  },
  {
    flag: 'verify-worker-idle',
    env: 'TUFA_VERIFY_WORKER_IDLE',
    help: 'how long the verification worker stays once no update waits (ms, s, m; 0: it stops at once)',
    default: '10s',
  },
  {
    flag: 'verify-worker-idle-heap',
    env: 'TUFA_VERIFY_WORKER_IDLE_HEAP',
    help: 'the verification worker stays idle only while its heap is at most this (m); past it, it stops at once',
    default: '24m',
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
    flag: 'trusted-proxy',
    env: 'TUFA_TRUSTED_PROXY',
    help: 'CIDR ranges (comma-separated) of proxies whose Forwarded / X-Forwarded-For name the client address',
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
    help: 'most delegated roles one collection may declare by name',
    default: '1000',
  },
  {
    flag: 'metrics-collections',
    env: 'TUFA_METRICS_COLLECTIONS',
    help: 'most collections in the per-collection series of /metrics, soonest expiry first (0: none)',
    default: '1000',
  },
  {
    flag: 'no-ui',
    env: 'TUFA_NO_UI',
    help: 'do not serve the read-only status page at /ui/',
    boolean: true,
  },
  {
    flag: 'max-hash-bins',
    env: 'TUFA_MAX_HASH_BINS',
    help: 'most succinct hash bins (TAP 15) one collection may declare',
    default: '65536',
  },
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
  /** `--debug`: stack traces of start-up errors. */
  debug: boolean;
  /** For `help` (also --version): the text to print, and the exit status (non-zero: asked for a command group alone). */
  output?: { text: string; exitCode: number };
}

/** The version of this package, as `--version` prints it. */
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const TRUE = /^(?:1|true|yes|on)$/i;
const FALSE = /^(?:0|false|no|off)?$/i;

const EXAMPLES = `
Examples:
  tufa-server                                   embedded PostgreSQL in ./tufa-data, http://127.0.0.1:4443
  DATABASE_URL=postgres://tufa@db.internal:5432/tufa \\
  TUFA_DATABASE_PASSWORD_FILE=/run/secrets/db_password \\
  TUFA_MASTER_KEY_FILE=/run/secrets/tufa_master_key tufa-server --host 0.0.0.0
  tufa-server token create --name ci --scope 'push:team/*'
  tufa-server audit --gun team/app --since 24h

Durations take ms, s, m, h, d (a bare number is seconds); sizes take k and m; boolean variables
take 1/true/yes/on or 0/false/no/off. TUFA_MASTER_KEY gives the master key itself (64 hex digits
or base64 of 32 bytes). Exit status: see the @tufa/server README ("Exit status").`;

const DATA_NOTE = `
The command works on the database the server uses: DATABASE_URL, or the embedded one in --data-dir
(default ./tufa-data, relative to the current folder). It never creates one. The options of
tufa-server that name it go before or after the command: --data-dir, --database-url,
--database-password-file, --database-ca-file (tufa-server --help lists them all).`;

function placeholder(flag: string): string {
  if (flag.endsWith('-file') || flag.startsWith('tls-')) return 'file';
  if (flag.endsWith('-dir')) return 'dir';
  if (flag.endsWith('-url')) return 'url';
  return 'value';
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Help that shows each option's environment variable and default, from OPTIONS. */
class ServerHelp extends Help {
  override optionDescription(option: Option): string {
    const spec = OPTIONS.find((o) => `--${o.flag}` === option.long);
    if (spec === undefined) return super.optionDescription(option);
    const extra = [`env: ${spec.env}`];
    if (spec.default !== undefined) extra.push(`default: ${spec.default}`);
    return `${spec.help} (${extra.join(', ')})`;
  }
}

interface Picked {
  command: CommandName;
  values: Record<string, unknown>;
  name?: string;
}

/** The command-line program; `pick` receives the command chosen and its own options. */
function program(pick: (p: Picked) => void, out: (text: string) => void): Command {
  const root = new Command('tufa-server');
  root.createHelp = () => Object.assign(new ServerHelp(), root.configureHelp());
  root
    .description('tufa-server: the tufa TUF server (Notary-style API), its database and its access tokens')
    .version(SERVER_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .option('--debug', 'print the stack trace of a start-up error')
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: out, outputError: () => {} })
    .configureHelp({ sortSubcommands: false })
    .addHelpText('after', EXAMPLES);
  for (const o of OPTIONS)
    root.addOption(new Option(`--${o.flag}${o.boolean ? '' : ` <${placeholder(o.flag)}>`}`, o.help));
  // Subcommands inherit the Help class through createHelp: copy it to each.
  const sub = (parent: Command, name: string, description: string, isDefault = false): Command => {
    const c = parent.command(name, { isDefault }).description(description);
    c.createHelp = () => Object.assign(new ServerHelp(), c.configureHelp());
    return c;
  };
  sub(root, 'serve', 'run the server (the default command)', true)
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', EXAMPLES)
    .action(() => pick({ command: 'serve', values: {} }));
  sub(root, 'migrate', 'apply the database migrations and exit (the server also migrates at start)')
    .addHelpText(
      'after',
      `${DATA_NOTE}\n\nExample:\n  DATABASE_URL=postgres://tufa@db.internal/tufa TUFA_DATABASE_PASSWORD_FILE=pw tufa-server migrate`,
    )
    .action(() => pick({ command: 'migrate', values: {} }));
  const token = sub(root, 'token', 'manage access tokens: create, list, revoke');
  token.addHelpText(
    'after',
    `${DATA_NOTE}\n\nExamples:\n  tufa-server token create --name ci --scope 'push:team/*'\n  tufa-server token list\n  tufa-server token revoke ci`,
  );
  sub(token, 'create', 'create a token and print it (shown only this once; only its hash is stored)')
    .requiredOption('--name <name>', 'the token name (letters, digits, . _ -)')
    .requiredOption('--scope <action:glob>', 'pull, push, delete or admin on a GUN glob; repeatable', collect)
    .option('--json', 'print a JSON document')
    .addHelpText(
      'after',
      `${DATA_NOTE}\n\nExamples:\n  tufa-server token create --name ci --scope 'push:registry.example.com/team/*'\n  tufa-server token create --name reader --scope 'pull:*' --data-dir /var/lib/tufa`,
    )
    .action((opts: Record<string, unknown>) => pick({ command: 'token-create', values: opts }));
  sub(token, 'list', 'list the tokens (names, scopes, last use; never the tokens)')
    .option('--json', 'print a JSON document')
    .addHelpText('after', `${DATA_NOTE}\n\nExample:\n  tufa-server token list --json`)
    .action((opts: Record<string, unknown>) => pick({ command: 'token-list', values: opts }));
  sub(token, 'revoke', 'revoke a token by name')
    .argument('<name>', 'the token name')
    .option('--json', 'print a JSON document')
    .addHelpText('after', `${DATA_NOTE}\n\nExample:\n  tufa-server token revoke ci`)
    .action((name: string, opts: Record<string, unknown>) =>
      pick({ command: 'token-revoke', values: opts, name }),
    );
  sub(root, 'audit', 'list the audit log of writes, newest first')
    .option('--gun <gun>', 'only this collection')
    .option('--since <when>', 'only since a date (2026-11-23) or a duration ago (24h)')
    .option('--limit <n>', 'at most this many records (default 1000)')
    .option('--json', 'print a JSON document')
    .addHelpText(
      'after',
      `${DATA_NOTE}\n\nExample:\n  tufa-server audit --gun registry.example.com/team/app --since 24h`,
    )
    .action((opts: Record<string, unknown>) => pick({ command: 'audit', values: opts }));
  return root;
}

/** The help of the whole program, as `tufa-server --help` prints it. */
export function helpText(): string {
  return program(
    () => {},
    () => {},
  ).helpInformation();
}

/**
 * Parses the command line (flags win over the variables in `env`, which win over defaults).
 * Throws TufaError INVALID_ARGUMENT for anything it refuses; `help` carries the text to print.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  let picked: Picked | undefined;
  let text = '';
  const root = program(
    (p) => {
      picked = p;
    },
    (t) => {
      text += t;
    },
  );
  try {
    root.parse([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      err.code === 'commander.help'
    ) {
      return {
        command: 'help',
        config: configFrom({}, {}), // help and --version read no variable: a bad one must not stop them
        admin: { scopes: [], json: false },
        debug: false,
        output: { text, exitCode: err.code === 'commander.help' ? 2 : 0 },
      };
    }
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${err.message.replace(/^error: /, '')} (tufa-server --help shows the usage)`,
      {
        cause: err,
      },
    );
  }
  if (picked === undefined) throw new TufaError('INTERNAL', 'no command was chosen');
  const globals = root.opts() as Record<string, unknown>;
  const config = configFrom(globals, env);
  const v = picked.values;
  const limitText = v.limit;
  const admin: AdminArgs = {
    name: picked.command === 'token-revoke' ? picked.name : (v.name as string | undefined),
    scopes: (v.scope as string[] | undefined) ?? [],
    gun: v.gun as string | undefined,
    since: v.since as string | undefined,
    limit: typeof limitText === 'string' ? integer(limitText, 'limit', 1, 100_000) : undefined,
    json: v.json === true,
  };
  return { command: picked.command, config, admin, debug: globals.debug === true };
}

/** The server configuration from the parsed flags and the environment, every value checked. */
function configFrom(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): ServerConfig {
  const spec = (flag: string): OptionSpec => OPTIONS.find((x) => x.flag === flag)!;
  const key = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const bool = (flag: string): boolean => {
    if (flags[key(flag)] === true) return true;
    const o = spec(flag);
    const fromEnv = (env[o.env] ?? '').trim();
    if (TRUE.test(fromEnv)) return true;
    if (FALSE.test(fromEnv)) return false;
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${o.env}=${JSON.stringify(fromEnv.slice(0, 40))}: expected 1/true/yes/on or 0/false/no/off`,
    );
  };
  const get = (flag: string): string | undefined => {
    const o = spec(flag);
    const fromFlag = flags[key(flag)];
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
    databaseCaFile: get('database-ca-file'),
    dataDir: get('data-dir')!,
    masterKey: env.TUFA_MASTER_KEY === '' ? undefined : env.TUFA_MASTER_KEY,
    masterKeyFile: get('master-key-file'),
    onlineKeys: get('online-keys'),
    onlineKeysShared: bool('online-keys-shared'),
    onlineKeysPin: env.TUFA_ONLINE_KEYS_PIN === '' ? undefined : env.TUFA_ONLINE_KEYS_PIN,
    onlineKeysPinFile: get('online-keys-pin-file'),
    logLevel: get('log-level')!,
    bodyLimit: parseSize(get('body-limit')!, 'body-limit'),
    bodyBudget: parseSize(get('body-budget')!, 'body-budget'),
    verifyWorkerAbove: parseSize(get('verify-worker-above')!, 'verify-worker-above'),
    verifyWorkerMemory: parseSize(get('verify-worker-memory')!, 'verify-worker-memory'),
    verifyWorkerIdle: parseDuration(get('verify-worker-idle')!, 'verify-worker-idle'),
    verifyWorkerIdleHeap: parseSize(get('verify-worker-idle-heap')!, 'verify-worker-idle-heap'),
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
    trustedProxies: get('trusted-proxy'),
    maxMetadataSize: parseSize(get('max-metadata-size')!, 'max-metadata-size'),
    maxDelegatedRoles: integer(get('max-delegated-roles')!, 'max-delegated-roles', 0, 1_000_000),
    // commander keeps a `--no-X` flag as `X: false`.
    ui: !(flags.ui === false || bool('no-ui')),
    metricsCollections: integer(get('metrics-collections')!, 'metrics-collections', 0, 1_000_000),
    // Each bin is a snapshot entry (about 130 B): 2^24 of them would already make a 2 GB snapshot.
    maxHashBins: integer(get('max-hash-bins')!, 'max-hash-bins', 0, 2 ** 24),
  };
  for (const o of OPTIONS) {
    if (flags[key(o.flag)] === '') throw new TufaError('INVALID_ARGUMENT', `--${o.flag} is empty`);
  }
  // Checked with the rest of the configuration, before anything starts.
  if (config.trustedProxies !== undefined) parseTrustedProxies(config.trustedProxies);
  if (config.onlineKeys !== undefined) {
    checkOnlineKeyToken({
      onlineKeys: config.onlineKeys,
      onlineKeysShared: config.onlineKeysShared,
      pin: config.onlineKeysPin,
      pinFile: config.onlineKeysPinFile,
    });
  } else if (config.onlineKeysShared === true) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      '--online-keys-shared needs --online-keys pkcs11:… naming the key pair',
    );
  }
  if (config.bodyBudget! < config.bodyLimit) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `body-budget (${config.bodyBudget}) must be at least body-limit (${config.bodyLimit}): else the largest body is never taken`,
    );
  }
  if (config.verifyWorkerMemory! < 64 * 1024 * 1024) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'verify-worker-memory must be at least 64m: the worker itself needs that',
    );
  }
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(config.logLevel)) {
    throw new TufaError('INVALID_ARGUMENT', `log-level must be one of ${levels.join(', ')}`);
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new TufaError('INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
  }
  if (config.tlsClientCa !== undefined && config.tlsCert === undefined) {
    throw new TufaError('INVALID_ARGUMENT', '--tls-client-ca needs --tls-cert and --tls-key');
  }
  if (config.tlsClientSubjects !== undefined && config.tlsClientCa === undefined) {
    throw new TufaError('INVALID_ARGUMENT', '--tls-client-subjects needs --tls-client-ca');
  }
  if (
    config.databaseUrl === undefined &&
    (config.databasePasswordFile !== undefined || config.databaseCaFile !== undefined)
  ) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${config.databasePasswordFile !== undefined ? 'TUFA_DATABASE_PASSWORD_FILE' : 'TUFA_DATABASE_CA_FILE'} is set but DATABASE_URL is not: without it the embedded database is used`,
    );
  }
  if ((config.authFailWindow ?? 0) < 1000) {
    throw new TufaError('INVALID_ARGUMENT', 'auth-fail-window must be at least one second');
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
  return config;
}
