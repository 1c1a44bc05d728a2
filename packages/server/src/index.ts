export { type Action, type AppOptions, type Authorizer, createApp } from './app.js';
export { helpText, OPTIONS, type ParsedCommand, parseCommandLine, type ServerConfig } from './config.js';
export { createPool, DEFAULT_MIGRATIONS_DIR, LOCKS, migrate, readMigrations } from './db.js';
export { checkGun, parseRoute, parseUpdateBody } from './http.js';
export { createMetrics, type Metrics } from './metrics.js';
export { decryptSecret, encryptSecret, loadMasterKey, parseMasterKey } from './onlinekeys.js';
export {
  binariesIn,
  embeddedBinaries,
  freePort,
  type PostgresBinaries,
  type RunningPostgres,
  startPostgres,
} from './postgres.js';
export {
  createLogger,
  openDatabase,
  type RunningServer,
  type StartOptions,
  startEmbedded,
  startResigner,
  startServer,
} from './server.js';
export { type ChangeRecord, type OnlineRole, Store, type StoreOptions } from './store.js';
