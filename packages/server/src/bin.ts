#!/usr/bin/env -S node --max-semi-space-size=32
/**
 * tufa-server: serve (default), `migrate`, `token create|list|revoke`, `audit`.
 * Exit 0 on success or a clean stop, 2 on bad configuration or arguments, 4 when a named token
 * does not exist, 1 otherwise.
 */
import { isTufaError } from '@tufa/core';
import { runAdminCommand } from './admin.js';
import { helpText, parseCommandLine } from './config.js';
import { createLogger, openDatabase, startServer } from './server.js';

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`tufa-server: ${(err as Error).message}\n\n${helpText()}\n`);
    return 2;
  }
  if (parsed.command === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  if (parsed.command !== 'serve' && parsed.command !== 'migrate') {
    // Administration commands print their answer on stdout; the log (stderr) says only problems.
    const quiet = createLogger(parsed.config.logLevel === 'info' ? 'warn' : parsed.config.logLevel, 2);
    return runAdminCommand(parsed, quiet, process.stdout);
  }
  const logger = createLogger(parsed.config.logLevel);
  if (parsed.command === 'migrate') {
    const db = await openDatabase(parsed.config, logger);
    logger.info({ applied: db.applied }, 'migrations up to date');
    await db.pool.end();
    await db.embedded?.stop();
    db.unlock?.();
    return 0;
  }
  const server = await startServer(parsed.config, { logger });
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      logger.info({ signal }, stopping ? 'signal received again: already shutting down' : 'signal received');
      if (stopping) return;
      stopping = true;
      server.close().then(done, (err) => {
        logger.error({ err }, 'shutdown failed');
        done();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = isTufaError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
    process.stderr.write(`tufa-server: ${message}\n`);
    process.exitCode =
      isTufaError(err) && err.code === 'INVALID_ARGUMENT' ? 2 : isTufaError(err, 'NOT_FOUND') ? 4 : 1;
  },
);
