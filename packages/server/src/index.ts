export { runAdminCommand } from './admin.js';
export { type Action, type AppOptions, type Authorizer, createRequestListener } from './app.js';
export {
  type AuditAction,
  type AuditContext,
  type AuditEntry,
  type AuditRow,
  listAudit,
  parseSince,
  recordAudit,
} from './audit.js';
export {
  type AccessAction,
  AccessControl,
  type AccessOptions,
  ANONYMOUS,
  FailureLimiter,
  type Principal,
} from './auth.js';
export { helpText, OPTIONS, type ParsedCommand, parseCommandLine, type ServerConfig } from './config.js';
export { createPool, DEFAULT_MIGRATIONS_DIR, LOCKS, migrate, readMigrations } from './db.js';
export { checkGun, parseUpdateBody, type RequestInfo } from './http.js';
export { createMetrics, type Metrics } from './metrics.js';
export { SERVER_ENVIRONMENT, SERVER_NODE_OPTIONS } from './node-options.js';
export { decryptSecret, encryptSecret, keyAad, loadMasterKey, parseMasterKey } from './onlinekeys.js';
export {
  binariesIn,
  embeddedBinaries,
  freePort,
  type PostgresBinaries,
  type RunningPostgres,
  startPostgres,
} from './postgres.js';
export { parseRoute, type Route } from './routes.js';
export {
  createLogger,
  openAdminDatabase,
  openDatabase,
  type RunningServer,
  readTls,
  type StartOptions,
  startEmbedded,
  startResigner,
  startServer,
} from './server.js';
export { type ChangeRecord, type OnlineRole, Store, type StoreOptions } from './store.js';
export {
  checkTokenName,
  formatScope,
  globMatches,
  grants,
  isAdmin,
  parseScope,
  type Scope,
  type ScopeAction,
  splitToken,
  type TokenHolder,
  type TokenInfo,
  TokenStore,
} from './tokens.js';
export { type ExpiryState, expiryState, UI_CSP } from './ui/page.js';
