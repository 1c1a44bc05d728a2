#!/usr/bin/env node
/**
 * The `tufa` command. Commands load their modules on use, so `tufa verify` and `tufa lookup`
 * start without loading what publishing needs.
 */
import { Command, CommanderError, Option } from 'commander';
import type { Context, GlobalOptions } from './context.js';
import { EXIT, reportError } from './output.js';

const program = new Command('tufa')
  .description('tufa: sign, publish and verify artifacts with The Update Framework')
  .option('--json', 'print one JSON document (errors too)')
  .option('--debug', 'print details of errors')
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** Runs a command body with a context; errors become one line and an exit code. */
function action<A extends unknown[]>(body: (ctx: Context, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = globals(command);
    const { makeContext } = await import('./context.js');
    const ctx = makeContext(options);
    try {
      await body(ctx, ...(args.slice(0, -1) as A));
    } catch (err) {
      process.exitCode = reportError(err, { json: options.json === true, debug: options.debug === true });
    }
  };
}

const key = program.command('key').description('manage private keys in TUFA_HOME/private');
key
  .command('generate')
  .description('generate an ed25519 key, encrypted with a passphrase')
  .addOption(
    new Option('--role <role>', 'what the key is for')
      .choices(['root', 'targets', 'snapshot', 'delegation'])
      .default('targets'),
  )
  .option('--gun <gun>', 'the collection the key is for')
  .addHelpText('after', '\nExample:\n  TUFA_DELEGATION_PASSPHRASE=… tufa key generate --role delegation')
  .action(
    action(async (ctx, opts: { role?: string; gun?: string }) =>
      (await import('./commands/key.js')).keyGenerate(ctx, opts),
    ),
  );
key
  .command('list')
  .description('list the keys in the keystore')
  .addHelpText('after', '\nExample:\n  tufa key list --json')
  .action(action(async (ctx) => (await import('./commands/key.js')).keyList(ctx)));
key
  .command('export')
  .description('print a public key (or, with --private, the encrypted private key file)')
  .argument('<keyid>', 'the key id')
  .option('--private', 'export the encrypted private key (asks for its passphrase)')
  .addHelpText('after', '\nExample:\n  tufa key export 3f1c… > alice.pub')
  .action(
    action(async (ctx, keyid: string, opts: { private?: boolean }) =>
      (await import('./commands/key.js')).keyExport(ctx, keyid, opts),
    ),
  );
key
  .command('import')
  .description('import a private key file written by `tufa key export --private`')
  .argument('<file>', 'the key file')
  .addHelpText('after', '\nExample:\n  TUFA_TARGETS_PASSPHRASE=… tufa key import ./3f1c.key')
  .action(action(async (ctx, file: string) => (await import('./commands/key.js')).keyImport(ctx, file)));

async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; anything else commander refuses is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    process.exitCode = reportError(err, { json: argv.includes('--json'), debug: argv.includes('--debug') });
  }
}

await main(process.argv);
