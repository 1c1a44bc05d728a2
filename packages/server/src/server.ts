/** Starting and stopping a whole server: database (embedded or external), migrations, keys, HTTP, re-signer. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parseJson, TufaError } from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import type pg from 'pg';
import { type Logger, pino } from 'pino';
import { type Authorizer, createRequestListener } from './app.js';
import { AccessControl } from './auth.js';
import { MetadataCache } from './cache.js';
import type { ServerConfig } from './config.js';
import { type DatabaseTarget, databaseTarget, unreadable } from './database-config.js';
import {
  checkMigrated,
  createPool,
  DEFAULT_MIGRATIONS_DIR,
  dedicatedClient,
  migrate,
  poolFor,
  probeConnection,
  readMigrations,
} from './db.js';
import { BodyBudget } from './http.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadMasterKey } from './onlinekeys.js';
import {
  checkDataDirReachable,
  embeddedBinaries,
  isAlive,
  type RunningPostgres,
  startPostgres,
} from './postgres.js';
import { parseTrustedProxies } from './proxies.js';
import { Store } from './store.js';
import { describeOnlineKeyToken, openOnlineKeyToken } from './token-keys.js';
import { checkTokenName, TokenStore } from './tokens.js';
import { DEFAULT_VERIFIER } from './verifier.js';

export interface RunningServer {
  /** http://… or https://… */
  readonly url: string;
  readonly port: number;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly tokens: TokenStore;
  /** One pass of the re-signer now (what every --resign-interval does); the collections re-signed. */
  resignOnce(): Promise<number>;
  /** Stops accepting, lets in-flight requests finish, stops the re-signer, closes the pool and the embedded database. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  authorize?: Authorizer;
  clock?: () => number;
  /**
   * Called when the server cannot go on: the embedded PostgreSQL died and could not be started
   * again. tufa-server then stops and exits 3, for a supervisor to restart it.
   */
  onFatal?: (err: TufaError) => void;
}

/** Tries to start a dead embedded PostgreSQL again (a dying cluster's backends may hold it a moment). */
const RESTART_ATTEMPTS = 5;

/**
 * Keeps the embedded PostgreSQL running: when it exits while the server is not closing (killed,
 * crashed), it is started again on the same data folder and port, so the pool and the LISTEN
 * connection reconnect to the same URL. `fatal` is called once every attempt failed.
 */
function superviseEmbedded(options: {
  first: RunningPostgres;
  dataDir: string;
  logger: Logger;
  closing: () => boolean;
  onRestart: (next: RunningPostgres) => void;
  fatal: (err: TufaError) => void;
}): void {
  const { logger } = options;
  const watch = (postgres: RunningPostgres): void => {
    void postgres.exited.then(async () => {
      if (options.closing()) return;
      logger.error({ port: postgres.port }, 'the embedded PostgreSQL stopped: starting it again');
      let last: unknown;
      for (let attempt = 1; attempt <= RESTART_ATTEMPTS && !options.closing(); attempt++) {
        try {
          const next = await startPostgres({
            binaries: await embeddedBinaries(),
            dataDir: join(options.dataDir, 'pg'),
            port: postgres.port,
            log: (line) => logger.debug({ component: 'postgres' }, line),
          });
          if (options.closing()) {
            await next.stop();
            return;
          }
          logger.info({ port: next.port, attempt }, 'embedded PostgreSQL started again');
          options.onRestart(next);
          watch(next);
          return;
        } catch (err) {
          last = err;
          logger.warn({ err, attempt }, 'the embedded PostgreSQL did not start again');
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        }
      }
      if (options.closing()) return;
      const err = new TufaError(
        'NETWORK',
        `the embedded PostgreSQL in ${options.dataDir} stopped and could not be started again (${RESTART_ATTEMPTS} attempts)`,
        { cause: last },
      );
      logger.fatal({ err }, err.message);
      options.fatal(err);
    });
  };
  watch(options.first);
}

/** Whether a live pid is a Node.js process (not an unrelated process that reused the pid). */
function isNode(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return true; // without /proc, trust the pid file
  }
}

/** One server per data folder: a pid file that a dead server (kill -9) leaves behind does not count. */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'server.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) && isNode(pid)) {
      throw new TufaError('CONFLICT', `${dataDir} is in use by another tufa-server (pid ${pid})`);
    }
  }
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  return () => rmSync(file, { force: true });
}

/** The embedded PostgreSQL in `<dataDir>/pg`, with a `tufa` database. */
export async function startEmbedded(
  dataDir: string,
  logger: Logger,
): Promise<{ url: string; postgres: RunningPostgres }> {
  const postgres = await startPostgres({
    binaries: await embeddedBinaries(),
    dataDir: join(dataDir, 'pg'),
    log: (line) => logger.debug({ component: 'postgres' }, line),
  });
  try {
    const pool = createPool(postgres.url, 1);
    try {
      const r = await pool.query("SELECT 1 FROM pg_database WHERE datname = 'tufa'");
      if (r.rowCount === 0) await pool.query('CREATE DATABASE tufa');
    } finally {
      await pool.end();
    }
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  return { url: postgres.url.replace(/\/postgres$/, '/tufa'), postgres };
}

/** Which database the configuration names, checked (URL, password file, CA file) before any connection. */
export type DatabasePlan =
  | { kind: 'external'; target: DatabaseTarget }
  | { kind: 'embedded'; dataDir: string };

export function planDatabase(config: ServerConfig): DatabasePlan {
  if (config.databaseUrl === undefined) return { kind: 'embedded', dataDir: resolve(config.dataDir) };
  return {
    kind: 'external',
    target: databaseTarget({
      url: config.databaseUrl,
      passwordFile: config.databasePasswordFile,
      caFile: config.databaseCaFile,
    }),
  };
}

/** Where a command works, for the first line of its output: the folder or the URL without password. */
export function describePlan(plan: DatabasePlan): string {
  return plan.kind === 'embedded'
    ? `the embedded database in ${plan.dataDir}`
    : `the database ${plan.target.display} (sslmode=${plan.target.sslmode})`;
}

export interface OpenOptions {
  /** Initialise an embedded database that does not exist yet (only the server does; admin commands never). */
  create?: boolean;
  /** Apply the migrations (default); otherwise require them to be applied. */
  migrate?: boolean;
  plan?: DatabasePlan;
}

/** Opens the database the configuration names (starting the embedded one when none) and migrates it. */
export async function openDatabase(
  config: ServerConfig,
  logger: Logger,
  options: OpenOptions = {},
): Promise<{
  pool: pg.Pool;
  embedded: RunningPostgres | undefined;
  unlock: (() => void) | undefined;
  applied: string[];
}> {
  const plan = options.plan ?? planDatabase(config);
  // Read before any database starts: a missing folder is a configuration error, said first.
  const migrations = readMigrations(config.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  let target: DatabaseTarget;
  let embedded: RunningPostgres | undefined;
  let unlock: (() => void) | undefined;
  if (plan.kind === 'embedded') {
    const { dataDir } = plan;
    if (options.create !== true && !existsSync(join(dataDir, 'pg', 'PG_VERSION'))) {
      throw new TufaError(
        'NOT_FOUND',
        `no tufa database in ${dataDir}: run this where the server runs, or name its folder with --data-dir (TUFA_DATA_DIR) or its PostgreSQL with DATABASE_URL`,
        { details: { data_dir: dataDir } },
      );
    }
    // As root, PostgreSQL's own user must be able to pass the folders above the data folder.
    checkDataDirReachable(dataDir);
    mkdirSync(dirname(dataDir), { recursive: true });
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    unlock = lockDataDir(dataDir);
    try {
      const started = await startEmbedded(dataDir, logger);
      target = databaseTarget({ url: started.url, env: {} });
      embedded = started.postgres;
      logger.info({ data_dir: dataDir, port: embedded.port }, 'embedded PostgreSQL started');
    } catch (err) {
      unlock();
      throw err;
    }
  } else {
    target = plan.target;
    if (target.warning !== undefined) logger.warn(target.warning);
  }
  let pool: pg.Pool | undefined;
  try {
    await probeConnection(target);
    pool = poolFor(target, config.poolSize);
    if (options.migrate === false) {
      await checkMigrated(pool, migrations, describePlan(plan));
      return { pool, embedded, unlock, applied: [] };
    }
    const applied = await migrate(pool, migrations);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    return { pool, embedded, unlock, applied };
  } catch (err) {
    await pool?.end().catch(() => {});
    await embedded?.stop();
    unlock?.();
    throw err;
  }
}

/** JSON lines on stdout (fd 1), or stderr (fd 2) for the administration commands. */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  const options = { level, base: { service: 'tufa-server' }, timestamp: pino.stdTimeFunctions.isoTime };
  return fd === 1 ? pino(options) : pino(options, pino.destination(2));
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  // Everything the configuration names is checked before the database is touched.
  const plan = planDatabase(config);
  const given =
    (config.masterKey ?? '') !== '' || config.masterKeyFile !== undefined
      ? loadMasterKey({ value: config.masterKey, file: config.masterKeyFile })
      : undefined;
  if (given === undefined && plan.kind === 'external') {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'a master key is required with DATABASE_URL: give its file with TUFA_MASTER_KEY_FILE (or --master-key-file) or the key in TUFA_MASTER_KEY',
    );
  }
  const tls = readTls(config);
  if (config.port !== 0) await checkListen(config.host, config.port);
  const opened = await openDatabase(config, logger, { plan, create: true });
  const { pool, unlock } = opened;
  /** The embedded PostgreSQL running now (started again after a crash); undefined with DATABASE_URL. */
  let embedded = opened.embedded;
  let httpServer: Server | undefined;
  let cache: MetadataCache | undefined;
  try {
    let master = given;
    if (master === undefined && plan.kind === 'embedded') {
      // A key is generated only for a database that has never had one: a lost key file is an error.
      const generateAt = join(plan.dataDir, 'master.key');
      const hasKeys =
        (await pool.query("SELECT 1 FROM settings WHERE name = 'master_key_check'")).rowCount! > 0;
      if (hasKeys && !existsSync(generateAt)) {
        throw new TufaError(
          'INVALID_ARGUMENT',
          `${generateAt} is missing but the database holds keys encrypted under it: restore it or give TUFA_MASTER_KEY_FILE`,
        );
      }
      master = loadMasterKey({ generateAt });
      if (master.generated !== undefined) {
        logger.warn(
          { file: master.generated },
          'generated a master key for the online keys (mode 0600): back it up',
        );
      }
    }
    if (master === undefined) throw new TufaError('INTERNAL', 'no master key');
    // Online keys on a PKCS#11 token: opened and logged in to now, so a wrong PIN stops the start.
    const onlineKeyToken =
      config.onlineKeys === undefined
        ? undefined
        : await openOnlineKeyToken({
            onlineKeys: config.onlineKeys,
            onlineKeysShared: config.onlineKeysShared,
            pin: config.onlineKeysPin,
            pinFile: config.onlineKeysPinFile,
          });
    if (onlineKeyToken !== undefined) {
      logger.info(
        { token: describeOnlineKeyToken(onlineKeyToken), shared: onlineKeyToken.shared?.keyid ?? null },
        'online keys: on the PKCS#11 token',
      );
    }
    const clock = options.clock ?? Date.now;
    // Served metadata in memory, kept right across processes by LISTEN/NOTIFY (cache.ts).
    cache = new MetadataCache(() => dedicatedClient(pool), logger);
    await cache.start();
    const store = new Store({
      pool,
      // One provider (and its key caches) for the process: node:crypto is about ten times faster than noble.
      crypto: createNodeCrypto(),
      cache,
      masterKey: master.key,
      onlineKeyToken,
      timestampExpiry: config.timestampExpiry,
      snapshotExpiry: config.snapshotExpiry,
      clock,
      ...(config.maxMetadataSize === undefined ? {} : { maxMetadataSize: config.maxMetadataSize }),
      ...(config.maxDelegatedRoles === undefined ? {} : { maxDelegatedRoles: config.maxDelegatedRoles }),
      ...(config.maxHashBins === undefined ? {} : { maxHashBins: config.maxHashBins }),
      verifier: {
        ...DEFAULT_VERIFIER,
        threshold: config.verifyWorkerAbove ?? DEFAULT_VERIFIER.threshold,
        memoryMb:
          config.verifyWorkerMemory === undefined
            ? DEFAULT_VERIFIER.memoryMb
            : Math.floor(config.verifyWorkerMemory / (1024 * 1024)),
        ...(config.verifyWorkerIdle === undefined ? {} : { idleMs: config.verifyWorkerIdle }),
        ...(config.verifyWorkerIdleHeap === undefined
          ? {}
          : { idleHeapMb: config.verifyWorkerIdleHeap / (1024 * 1024) }),
      },
    });
    const tokens = new TokenStore(pool, clock);
    const access = new AccessControl({
      tokens,
      requireAuthForPull: config.requireAuthForPull === true,
      allowAnonymousWrites: config.allowAnonymousWrites === true,
      failedAuthLimit: config.authFailLimit ?? 10,
      failedAuthWindow: config.authFailWindow ?? 60_000,
      maxConcurrentPerAddress: config.maxConcurrentPerAddress ?? 64,
      clientSubjects: tls?.subjects,
      clock,
    });
    if (config.allowAnonymousWrites === true) {
      logger.warn('--allow-anonymous-writes: anyone who reaches this server may publish and delete');
    }
    await store.checkMasterKey();
    const bodyBudget = new BodyBudget(config.bodyBudget ?? 2 * config.bodyLimit);
    const metrics = createMetrics(pool, { bodyBytesInFlight: () => bodyBudget.inFlight });
    const listener = createRequestListener({
      store,
      logger,
      metrics,
      bodyLimit: config.bodyLimit,
      bodyBudget,
      ...(config.trustedProxies === undefined
        ? {}
        : { trustedProxies: parseTrustedProxies(config.trustedProxies) }),
      resignFraction: config.resignFraction,
      access,
      tokens,
      ...(config.pendingExpiry === undefined ? {} : { pendingExpiry: config.pendingExpiry }),
      ...(options.authorize === undefined ? {} : { authorize: options.authorize }),
      ui: config.ui !== false,
      ...(config.metricsCollections === undefined ? {} : { metricsCollections: config.metricsCollections }),
    });
    const timeouts = {
      requestTimeout: config.requestTimeout,
      headersTimeout: Math.min(config.requestTimeout, 60_000),
    };
    const server: Server =
      tls === undefined
        ? createServer(timeouts, listener)
        : createHttpsServer(
            {
              ...timeouts,
              cert: tls.cert,
              key: tls.key,
              minVersion: 'TLSv1.2',
              ...(tls.clientCa === undefined
                ? {}
                : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
            },
            listener,
          );
    httpServer = server;
    if (tls !== undefined) {
      // A refused handshake (no or wrong client certificate) never reaches the app: say it here.
      server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) =>
        logger.info({ code: err.code, remote: socket.remoteAddress }, 'TLS handshake refused'),
      );
    }
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((done, fail) => {
      server.once('error', (err) => fail(explainListenError(err, config.host, config.port)));
      server.listen(config.port, config.host, () => done());
    });
    const port = (server.address() as AddressInfo).port;
    const url = `${tls === undefined ? 'http' : 'https'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    const resigner = startResigner({
      store,
      metrics,
      logger,
      interval: config.resignInterval,
      fraction: config.resignFraction,
    });
    logger.info(
      {
        url,
        database: embedded === undefined ? 'external' : 'embedded',
        ...(plan.kind === 'external' ? { sslmode: plan.target.sslmode } : {}),
        client_certificates: tls?.clientCa !== undefined,
        anonymous_pull: config.requireAuthForPull !== true,
      },
      'tufa-server listening',
    );
    let closing: Promise<void> | undefined;
    if (embedded !== undefined && plan.kind === 'embedded') {
      superviseEmbedded({
        first: embedded,
        dataDir: plan.dataDir,
        logger,
        closing: () => closing !== undefined,
        onRestart: (next) => {
          embedded = next;
        },
        fatal: (err) => options.onFatal?.(err),
      });
    }
    return {
      url,
      port,
      store,
      metrics,
      tokens,
      resignOnce: () => resigner.runOnce(),
      close() {
        closing ??= (async () => {
          logger.info('shutting down');
          // Stop accepting and drain, then the re-signer and the LISTEN connection, the pool, the database.
          await new Promise<void>((done) => {
            const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeout);
            // Keep-alive connections that become idle once their last request is answered close too.
            const idle = setInterval(() => server.closeIdleConnections(), 50);
            server.close(() => {
              clearTimeout(force);
              clearInterval(idle);
              done();
            });
            server.closeIdleConnections();
          });
          logger.debug('requests drained');
          await resigner.stop();
          logger.debug('re-signer stopped');
          await store.close();
          await cache?.stop();
          logger.debug('LISTEN connection closed');
          await pool.end();
          logger.debug('pool closed');
          if (embedded !== undefined) {
            await embedded.stop();
            logger.debug('embedded PostgreSQL stopped');
          }
          unlock?.();
          logger.info('stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    httpServer?.close();
    await cache?.stop();
    await pool.end().catch(() => {});
    await embedded?.stop();
    unlock?.();
    throw err;
  }
}

/** A listen failure in one line: the address in use, a privileged port, an address not of this machine. */
function explainListenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') {
    return new TufaError(
      'CONFLICT',
      `cannot listen on ${where}: the address is in use (another tufa-server? choose --port)`,
      {
        cause: err,
      },
    );
  }
  if (code === 'EACCES') {
    return new TufaError(
      'INVALID_ARGUMENT',
      `cannot listen on ${where}: not allowed (ports below 1024 need privileges)`,
      {
        cause: err,
      },
    );
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new TufaError('INVALID_ARGUMENT', `cannot listen on ${where}: not an address of this machine`, {
      cause: err,
    });
  }
  return err;
}

/** Binds and releases the address, so that a port in use is said before the database starts. */
async function checkListen(host: string, port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((done, fail) => {
    probe.once('error', (err) => fail(explainListenError(err, host, port)));
    probe.listen(port, host, () => probe.close(() => done()));
  });
}

interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer | undefined;
  subjects: ReadonlyMap<string, string> | undefined;
}

function readPem(file: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw unreadable(file, what, cause);
  }
  if (bytes.length > 1024 * 1024)
    throw new TufaError('INVALID_ARGUMENT', `${what} ${file} is larger than 1 MiB`);
  return bytes;
}

/** The certificate, key, client CA and subject map the configuration names; undefined: plain HTTP. */
export function readTls(config: ServerConfig): TlsFiles | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  let subjects: Map<string, string> | undefined;
  if (config.tlsClientSubjects !== undefined) {
    const doc = parseJson(readPem(config.tlsClientSubjects, 'tls-client-subjects'), {
      source: config.tlsClientSubjects,
    });
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        'tls-client-subjects: a JSON object {"CN=ci,O=Acme": "token-name"}',
      );
    }
    subjects = new Map();
    for (const [subject, name] of Object.entries(doc)) {
      if (typeof name !== 'string' || subject.length === 0 || subject.length > 1024) {
        throw new TufaError('INVALID_ARGUMENT', 'tls-client-subjects: each subject maps to a token name');
      }
      subjects.set(subject, checkTokenName(name));
    }
  }
  return {
    cert: readPem(config.tlsCert, 'tls-cert'),
    key: readPem(config.tlsKey, 'tls-key'),
    clientCa: config.tlsClientCa === undefined ? undefined : readPem(config.tlsClientCa, 'tls-client-ca'),
    subjects,
  };
}

/**
 * The database for an administration command (token, audit): the running server's embedded
 * PostgreSQL when one holds the data folder, else the configured one, which must exist and be
 * migrated (the embedded one started for the command and stopped by `close`).
 */
export async function openAdminDatabase(
  config: ServerConfig,
  logger: Logger,
  plan: DatabasePlan = planDatabase(config),
): Promise<{ pool: pg.Pool; close(): Promise<void> }> {
  if (plan.kind === 'embedded') {
    const { dataDir } = plan;
    const pidFile = join(dataDir, 'pg', 'postmaster.pid');
    const serverPid = join(dataDir, 'server.pid');
    if (existsSync(pidFile) && existsSync(serverPid)) {
      const pid = Number(readFileSync(serverPid, 'utf8').trim());
      const lines = readFileSync(pidFile, 'utf8').split('\n');
      const port = Number(lines[3]);
      if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid) && isNode(pid) && Number.isSafeInteger(port)) {
        const password = readFileSync(join(dataDir, 'pg.password'), 'utf8').trim();
        const pool = createPool(
          { url: `postgres://tufa:${encodeURIComponent(password)}@127.0.0.1:${port}/tufa`, env: {} },
          2,
        );
        return { pool, close: () => pool.end() };
      }
    }
  }
  const db = await openDatabase({ ...config, poolSize: 2 }, logger, { plan, migrate: false });
  return {
    pool: db.pool,
    async close() {
      await db.pool.end();
      await db.embedded?.stop();
      db.unlock?.();
    },
  };
}

export interface Resigner {
  stop(): Promise<void>;
  /** One pass now (tests). */
  runOnce(): Promise<number>;
}

/** Looks for due collections every `interval` ms and re-signs each under its lock, skipping those another process holds. */
export function startResigner(options: {
  store: Store;
  metrics: Metrics;
  logger: Logger;
  interval: number;
  fraction: number;
}): Resigner {
  let stopped = false;
  let running: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const runOnce = async (): Promise<number> => {
    let count = 0;
    // Batches of 100 until none is left; a few rounds at most, since collections other processes hold come back.
    for (let round = 0; round < 10 && !stopped; round++) {
      const due = await options.store.dueForResign(options.fraction, 100);
      const before = count;
      count += await resignAll(due);
      if (due.length < 100 || count === before) break;
    }
    return count;
  };
  const resignAll = async (guns: string[]): Promise<number> => {
    let count = 0;
    for (const gun of guns) {
      if (stopped) break;
      try {
        const roles = await options.store.resign(gun, { fraction: options.fraction, wait: false });
        for (const role of roles) options.metrics.resigns.inc({ role });
        if (roles.length > 0) {
          count++;
          options.logger.info({ gun, roles }, 're-signed');
        }
      } catch (err) {
        options.logger.error({ err, gun }, 're-signing failed');
      }
    }
    return count;
  };
  const tick = () => {
    if (stopped) return;
    running = runOnce()
      .catch((err) => {
        options.logger.error({ err }, 're-signer pass failed');
        return 0;
      })
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, options.interval);
      });
  };
  if (options.interval > 0) timer = setTimeout(tick, Math.min(options.interval, 1000));
  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
