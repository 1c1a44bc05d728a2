#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=8
/**
 * tufa-server: serve (default), `migrate`, `token create|list|revoke`, `audit`. A failure is one
 * line `tufa-server: CODE: message` on stderr (a stack trace only with --debug); the exit
 * statuses are in exit.ts and the README.
 */
import { isTufaError, TufaError } from '@tufa/core';
import { runAdminCommand } from './admin.js';
import { type ParsedCommand, parseCommandLine } from './config.js';
import { SERVER_EXIT, serverExitStatus } from './exit.js';
import { createLogger, describePlan, openDatabase, planDatabase, startServer } from './server.js';

/** A signal's exit status, as shells give it: 128 + its number. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

async function main(parsed: ParsedCommand): Promise<number> {
  if (parsed.command !== 'serve') {
    // A command that is not the server stops at once; the exit stops an embedded PostgreSQL it started.
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.on(signal, () => process.exit(SIGNAL_EXIT[signal]));
  }
  if (parsed.command === 'help') {
    const { text, exitCode } = parsed.output!;
    (exitCode === 0 ? process.stdout : process.stderr).write(text);
    return exitCode;
  }
  if (parsed.command !== 'serve' && parsed.command !== 'migrate') {
    // Administration commands print their answer on stdout; the log (stderr) says only problems.
    const quiet = createLogger(parsed.config.logLevel === 'info' ? 'warn' : parsed.config.logLevel, 2);
    return runAdminCommand(parsed, quiet, process.stdout, process.stderr);
  }
  const logger = createLogger(parsed.config.logLevel);
  if (parsed.command === 'migrate') {
    const plan = planDatabase(parsed.config);
    process.stderr.write(`tufa-server: migrating ${describePlan(plan)}\n`);
    const db = await openDatabase(parsed.config, logger, { plan });
    logger.info({ applied: db.applied }, 'migrations up to date');
    await db.pool.end();
    await db.embedded?.stop();
    db.unlock?.();
    return SERVER_EXIT.OK;
  }
  // Signals are taken from the start: one during start-up stops the server once it is up (so the
  // embedded PostgreSQL, in its own process group, is never left behind); a second one exits now.
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let stopping = false;
  let stopped: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  const stop = (signal: string) => {
    logger.info({ signal }, stopping ? 'signal received again: already shutting down' : 'signal received');
    if (stopping) {
      if (server === undefined) process.exit(SIGNAL_EXIT[signal]); // the exit stops the embedded PostgreSQL
      return;
    }
    stopping = true;
    if (server !== undefined) shutdown(server);
  };
  const shutdown = (running: NonNullable<typeof server>) => {
    running.close().then(stopped, (err) => {
      logger.error({ err }, 'shutdown failed');
      stopped();
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  let status: number = SERVER_EXIT.OK;
  server = await startServer(parsed.config, {
    logger,
    // The database is gone for good: stop, and exit non-zero so that a supervisor restarts us.
    onFatal: (err) => {
      process.stderr.write(`tufa-server: ${err.code}: ${err.message}\n`);
      status = serverExitStatus(err.code);
      if (!stopping && server !== undefined) {
        stopping = true;
        shutdown(server);
      }
    },
  });
  if (stopping) shutdown(server);
  await done;
  return status;
}

function report(err: unknown, debug: boolean): number {
  const error = isTufaError(err)
    ? err
    : new TufaError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  process.stderr.write(`tufa-server: ${error.code}: ${error.message}\n`);
  if (debug) {
    const cause = error === err ? error.cause : err;
    if (cause instanceof Error && cause.stack) process.stderr.write(`${cause.stack}\n`);
    else if (error.stack) process.stderr.write(`${error.stack}\n`);
  }
  return serverExitStatus(error.code);
}

let parsed: ParsedCommand | undefined;
try {
  parsed = parseCommandLine(process.argv.slice(2), process.env);
} catch (err) {
  process.exitCode = report(err, process.argv.includes('--debug'));
}
if (parsed !== undefined) {
  const debug = parsed.debug;
  main(parsed).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.exitCode = report(err, debug);
    },
  );
}
