#!/usr/bin/env node
/**
 * The `tufa` command. Commands load their modules on use, so `tufa verify` and `tufa lookup`
 * start without loading what publishing needs.
 */
import { checkGun, TufaError } from '@tufa/core';
import { Command, CommanderError, Option } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import type { Context, GlobalOptions } from './context.js';
import { EXIT, reportError } from './output.js';

// Read before parsing: a usage error is found while parsing, and with --json it is a JSON document.
const jsonOutput = process.argv.includes('--json');

const program = new Command('tufa')
  .description('tufa: sign, publish and verify artifacts with The Update Framework')
  .option('--json', 'print one JSON document (errors too)')
  .option('--debug', 'print details of errors')
  .option('-s, --server <url>', 'the tufa server (default: TUFA_SERVER, then config.json in TUFA_HOME)')
  .option('--token <token>', 'access token (default: TUFA_TOKEN)')
  .option('--root-key <keyid>', 'pin the root: a key id that must have signed it (repeatable)', collect, [])
  .option('--trust-root <file>', 'pin the root: a trusted root.json')
  .option('--no-tofu', 'refuse to trust a root on first use')
  .option('--ca-file <file>', 'PEM CA bundle for an https server (default: TUFA_CA_FILE)')
  .option('--client-cert <file>', 'PEM client certificate for mutual TLS (default: TUFA_CLIENT_CERT)')
  .option('--client-key <file>', 'PEM private key of --client-cert (default: TUFA_CLIENT_KEY)')
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({
    // With --json, main() reports usage errors as the JSON error document instead.
    writeErr: (text) => {
      if (!jsonOutput) process.stderr.write(text);
    },
  });

const OFFLINE_HELP =
  'answer from the trusted cache alone, with every check and no request (exit 6 when the cache cannot answer)';
const MAX_AGE_HELP = 'with --offline: refuse a cache whose last successful refresh is older, e.g. 1h';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** Every `<gun>` argument and `--gun` option, checked by core's grammar before any disk or network work. */
function checkGunArguments(command: Command): void {
  command.registeredArguments.forEach((argument, i) => {
    const value = command.processedArgs[i];
    if (argument.name() === 'gun' && typeof value === 'string') checkGun(value);
  });
  const option = command.opts().gun;
  if (typeof option === 'string') checkGun(option);
}

/**
 * The top-level commands, each defined when it is the one run: `tufa verify …` defines verify
 * alone (options, arguments and help of 40 commands cost about 2 ms). Anything else (help,
 * global options first, a mistyped name) defines all of them, in this order.
 */
const definitions = new Map<string, () => void>();

function define(name: string, definition: () => void): void {
  definitions.set(name, definition);
}

/**
 * A first argument that is not an option is the command commander dispatches to (its first
 * operand), whatever the other commands are: that one is enough.
 */
function defineCommands(argv: readonly string[]): void {
  const only = definitions.get(argv[2] ?? '');
  if (only !== undefined) only();
  else for (const definition of definitions.values()) definition();
}

/** Runs a command body with a context; errors become one line and an exit code. */
function action<A extends unknown[]>(body: (ctx: Context, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = globals(command);
    try {
      checkGunArguments(command);
      const { makeContext } = await import('./context.js');
      const ctx = makeContext(options);
      await body(ctx, ...(args.slice(0, -1) as A));
    } catch (err) {
      process.exitCode = reportError(err, { json: options.json === true, debug: options.debug === true });
    }
  };
}

define('init', () => {
  program
    .command('init')
    .description('create keys, root and targets for a new collection, and publish them')
    .argument('<gun>', 'the collection, e.g. registry.example.com/team/app')
    .option('--local-snapshot', 'keep the snapshot key here instead of on the server')
    .option('--root-threshold <k>', 'root signatures needed (default 1)')
    .option(
      '--root-key-file <pubfile>',
      'another root key: a public key file from tufa key export; repeatable',
      collect,
      [],
    )
    .option('--targets-threshold <k>', 'targets signatures needed (default 1)')
    .option(
      '--targets-key <pubfile>',
      'another targets key: a public key file from tufa key export; repeatable',
      collect,
      [],
    )
    .option('--no-local-key', 'make no new key here (keys of the roles already in this keystore still sign)')
    .option('--root-key-id <keyid>', 'the root key: one already in this home (keystore or PKCS#11 token)')
    .option(
      '--targets-key-id <keyid>',
      'the targets key: one already in this home (keystore or PKCS#11 token)',
    )
    .option(
      '--pending-expires <lifetime>',
      'when signatures are missing: how long they may take (default 7d)',
    )
    .option(
      '--hash-bins <n>',
      'TAP 15: targets delegates every tag to N succinct hash bins (a power of two, 2 to 65536), signed by the targets keys',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  TUFA_ROOT_PASSPHRASE=… TUFA_TARGETS_PASSPHRASE=… tufa init example.com/app -s http://127.0.0.1:4443\n  tufa init example.com/app --root-threshold 2 --root-key-file bob.pub --root-key-file carol.pub\n  tufa init example.com/big --hash-bins 1024',
    )
    .action(
      action(async (ctx, gun: string, opts: Record<string, never>) =>
        (await import('./commands/init.js')).init(ctx, gun, opts),
      ),
    );
});

define('add', () => {
  program
    .command('add')
    .description('stage a target: a tag and the digest and length of its artifact')
    .argument('<gun>', 'the collection')
    .argument('<tag>', 'the tag (target path)')
    .argument('[file]', 'the artifact to hash, or - for stdin')
    .option('--digest <digest>', 'the digest instead of a file, e.g. sha256:HEX')
    .option('--length <bytes>', 'the artifact length, with --digest')
    .option('--custom <json>', 'custom data for the target, e.g. {"mediaType": "…"}')
    .option('--role <role>', 'stage into a delegated role instead of targets')
    .option(
      '--publish',
      'publish at once, with any changes staged before (tufa publish), in this one process',
    )
    .option('--expires <lifetime>', 'with --publish: lifetime of the new versions')
    .addHelpText(
      'after',
      '\nExamples:\n  tufa add example.com/app v1.0 ./app.tar\n  tufa add example.com/app v1.0 --digest sha256:… --length 5120\n  TUFA_TARGETS_PASSPHRASE=… tufa add example.com/app v1.0 ./app.tar --publish',
    )
    .action(
      action(async (ctx, gun: string, tag: string, file: string | undefined, opts: Record<string, never>) =>
        (await import('./commands/add.js')).addCommand(ctx, gun, tag, file, opts),
      ),
    );
});

define('remove', () => {
  program
    .command('remove')
    .description('stage the removal of a tag')
    .argument('<gun>', 'the collection')
    .argument('<tag>', 'the tag')
    .option('--role <role>', 'remove from a delegated role instead of targets')
    .addHelpText('after', '\nExample:\n  tufa remove example.com/app v0.9')
    .action(
      action(async (ctx, gun: string, tag: string, opts: { role?: string }) =>
        (await import('./commands/stage.js')).remove(ctx, gun, tag, opts),
      ),
    );
});

define('reset', () => {
  program
    .command('reset')
    .description('drop the staged changes of a collection, or those of one tag')
    .argument('<gun>', 'the collection')
    .argument('[tag]', 'drop only the staged change of this tag')
    .option('--role <role>', 'with TAG: only its change in this role')
    .addHelpText('after', '\nExamples:\n  tufa reset example.com/app\n  tufa reset example.com/app v1.1')
    .action(
      action(async (ctx, gun: string, tag: string | undefined, opts: { role?: string }) =>
        (await import('./commands/stage.js')).reset(ctx, gun, tag, opts),
      ),
    );
});

define('lookup', () => {
  program
    .command('lookup')
    .description('print the trusted digest of a tag (sha256:HEX), e.g. for docker pull img@DIGEST')
    .argument('<gun>', 'the collection')
    .argument('<tag>', 'the tag')
    .option('--offline', OFFLINE_HELP)
    .option('--max-age <lifetime>', MAX_AGE_HELP)
    .addHelpText('after', '\nExample:\n  docker pull example.com/app@$(tufa lookup example.com/app v1.0)')
    .action(
      action(async (ctx, gun: string, tag: string, opts: { offline?: boolean; maxAge?: string }) =>
        (await import('./commands/read.js')).lookup(ctx, gun, tag, opts),
      ),
    );
});

define('verify', () => {
  program
    .command('verify')
    .description('exit 0 only when the tag maps to this digest or file, signed and fresh')
    .argument('<gun>', 'the collection')
    .argument('<tag>', 'the tag')
    .argument('[source]', '- to read the artifact from stdin')
    .option('--digest <digest>', 'the digest to check, e.g. sha256:HEX')
    .option('--file <path>', 'the artifact to check')
    .option('--offline', OFFLINE_HELP)
    .option('--max-age <lifetime>', MAX_AGE_HELP)
    .addHelpText(
      'after',
      '\nExamples:\n  tufa verify example.com/app v1.0 --digest sha256:…\n  tufa verify example.com/app v1.0 --file ./app.tar\n  cat app.tar | tufa verify example.com/app v1.0 -\n  tufa verify example.com/app v1.0 --file ./app.tar --offline --max-age 1h',
    )
    .action(
      action(
        async (
          ctx,
          gun: string,
          tag: string,
          source: string | undefined,
          opts: { digest?: string; file?: string; offline?: boolean; maxAge?: string },
        ) => (await import('./commands/read.js')).verify(ctx, gun, tag, source, opts),
      ),
    );
});

define('list', () => {
  program
    .command('list')
    .description('list every trusted tag with digest and length, through delegations')
    .argument('<gun>', 'the collection')
    .option('--offline', OFFLINE_HELP)
    .option('--max-age <lifetime>', MAX_AGE_HELP)
    .addHelpText('after', '\nExample:\n  tufa list example.com/app --json')
    .action(
      action(async (ctx, gun: string, opts: { offline?: boolean; maxAge?: string }) =>
        (await import('./commands/read.js')).list(ctx, gun, opts),
      ),
    );
});

define('export', () => {
  program
    .command('export')
    .description('write the trusted metadata in the standard TUF repository layout into a new folder')
    .argument('<gun>', 'the collection')
    .argument('<dir>', 'a folder that does not exist yet (or is empty)')
    .option('--offline', OFFLINE_HELP)
    .option('--max-age <lifetime>', MAX_AGE_HELP)
    .addHelpText(
      'after',
      '\nEvery delegated role is loaded first. Files: root.json, timestamp.json, snapshot.json,\ntargets.json, ROLE.json per delegated role (escaped as python-tuf does), and VERSION.ROLE.json\ncopies; each holds the bytes that were verified.\n\nExample:\n  tufa export example.com/app ./app-metadata',
    )
    .action(
      action(async (ctx, gun: string, dir: string, opts: { offline?: boolean; maxAge?: string }) =>
        (await import('./commands/read.js')).exportMetadata(ctx, gun, dir, opts),
      ),
    );
});

const REGISTRY_HELP =
  '\nThe collection of REGISTRY/REPOSITORY:TAG is REGISTRY/REPOSITORY (tufa init it first); docker.io\nand library/ are the defaults, as in docker. Registry credentials: --registry-user with\nTUFA_REGISTRY_PASSWORD, else ~/.docker/config.json (auths, credsStore, credHelpers), else anonymous.';

function registryOptions(command: Command): Command {
  return command
    .option(
      '--insecure-registry <host>',
      'HOST[:PORT] spoken to over plain http (repeatable; also TUFA_INSECURE_REGISTRIES=H1,H2)',
      collect,
      [],
    )
    .option('--registry-user <user>', 'the registry user; the password comes from TUFA_REGISTRY_PASSWORD');
}

define('image', () => {
  const image = program
    .command('image')
    .description('container images: sign the manifest a tag names, resolve a tag to its signed digest');
  registryOptions(
    image
      .command('add')
      .description(
        'stage the manifest (or multi-platform index) the registry serves for TAG as the target TAG of REGISTRY/REPOSITORY',
      )
      .argument('<image>', 'REGISTRY/REPOSITORY:TAG')
      .option('--digest <digest>', 'sign this manifest digest (from the build), checked against the registry')
      .option('--length <n>', 'with --digest: the manifest size in bytes')
      .option('--media-type <type>', 'with --digest: the manifest media type')
      .option('--no-registry', 'with --digest, --length and --media-type: do not ask the registry')
      .option('--role <role>', 'stage into a delegated role instead of targets')
      .option('--publish', 'publish at once (tufa publish)')
      .option('--expires <lifetime>', 'with --publish: lifetime of the new versions'),
  )
    .addHelpText(
      'after',
      `${REGISTRY_HELP}\n\nExamples:\n  tufa image add registry.example.com/team/app:v1.2 --publish\n  tufa image add registry.example.com/team/app:v1.2 --digest sha256:…\n  tufa image add 127.0.0.1:5000/team/app:v1 --insecure-registry 127.0.0.1:5000`,
    )
    .action(
      action(async (ctx, ref: string, opts: Record<string, never>) =>
        (await import('./commands/image.js')).imageAdd(ctx, ref, opts),
      ),
    );
  image
    .command('resolve')
    .description(
      'print REGISTRY/REPOSITORY@sha256:… for a tag, after full verification (exit codes as verify)',
    )
    .argument('<image>', 'REGISTRY/REPOSITORY:TAG')
    .addHelpText(
      'after',
      '\nThe registry is not asked: the digest is the one the publisher signed.\n\nExamples:\n  docker pull "$(tufa image resolve registry.example.com/team/app:v1.2)"\n  kubectl set image deployment/app app="$(tufa image resolve registry.example.com/team/app:v1.2)"',
    )
    .action(action(async (ctx, ref: string) => (await import('./commands/image.js')).imageResolve(ctx, ref)));
  registryOptions(
    image
      .command('verify')
      .description(
        'resolve, then check that the registry serves the signed manifest bytes; report where its tag points now',
      )
      .argument('<image>', 'REGISTRY/REPOSITORY:TAG'),
  )
    .addHelpText(
      'after',
      `${REGISTRY_HELP}\n\nExit 0 when the registry serves the signed bytes; a tag moved on the registry (pushed, not\nsigned) is a warning on stderr and "tagMatches": false with --json.\n\nExample:\n  tufa image verify registry.example.com/team/app:v1.2`,
    )
    .action(
      action(async (ctx, ref: string, opts: Record<string, never>) =>
        (await import('./commands/image.js')).imageVerify(ctx, ref, opts),
      ),
    );
});

define('pull', () => {
  program
    .command('pull')
    .description(
      'resolve a tag to its signed digest, then docker pull (or podman pull) that digest; nothing is pulled unless verified',
    )
    .argument('<image>', 'REGISTRY/REPOSITORY:TAG')
    .argument(
      '[engine-args...]',
      "after --: more arguments for the engine's pull, e.g. -- --platform linux/arm64",
    )
    .option('--engine <program>', 'the container engine (default: TUFA_ENGINE, else docker)')
    .option('--tag-local', 'then tag the pulled image locally as REGISTRY/REPOSITORY:TAG')
    .addHelpText(
      'after',
      '\nRuns ENGINE pull [ENGINE-ARGS] REGISTRY/REPOSITORY@sha256:…; replaces DOCKER_CONTENT_TRUST=1 docker pull.\n\nExamples:\n  tufa pull registry.example.com/team/app:v1.2\n  tufa pull registry.example.com/team/app:v1.2 --engine podman --tag-local -- --quiet',
    )
    .action(
      action(async (ctx, ref: string, extra: string[], opts: { engine?: string; tagLocal?: boolean }) =>
        (await import('./commands/image.js')).pull(ctx, ref, extra, opts),
      ),
    );
});

define('root', () => {
  const root = program.command('root').description('the root of a collection, to pin elsewhere');
  root
    .command('export')
    .description('print the newest root.json this home has verified for a collection (after a refresh)')
    .argument('<gun>', 'the collection')
    .addHelpText(
      'after',
      "\nThe file is what a deploy script pins with --trust-root FILE --no-tofu, or a library with\nthe client's trust.rootFile option. Check its key ids (printed on stderr) with the publisher.\n\nExample:\n  tufa root export example.com/app > example.com-app.root.json",
    )
    .action(action(async (ctx, gun: string) => (await import('./commands/read.js')).rootExport(ctx, gun)));
});

define('publish', () => {
  program
    .command('publish')
    .description('sign the staged changes and publish them as the next versions')
    .argument('<gun>', 'the collection')
    .option('--expires <lifetime>', 'lifetime of the new versions, e.g. 90d (default: targets 3y)')
    .option(
      '--pending-expires <lifetime>',
      'when the keys here cannot meet a threshold: how long the pending update waits (default 7d)',
    )
    .addHelpText('after', '\nExample:\n  TUFA_TARGETS_PASSPHRASE=… tufa publish example.com/app')
    .action(
      action(async (ctx, gun: string, opts: { expires?: string; pendingExpires?: string }) =>
        (await import('./commands/publish.js')).publish(ctx, gun, opts),
      ),
    );
});

define('status', () => {
  program
    .command('status')
    .description(
      'staged changes with digests (old → new), and how each role stands; exit 1 when a role has expired or expires within the window',
    )
    .argument('<gun>', 'the collection')
    .option('--within <lifetime>', 'the warning window (default 30d)')
    .addHelpText(
      'after',
      '\nExamples:\n  tufa status example.com/app\n  tufa status example.com/app --within 7d --json',
    )
    .action(
      action(async (ctx, gun: string, opts: { within?: string }) =>
        (await import('./commands/publish.js')).status(ctx, gun, opts),
      ),
    );
});

define('renew', () => {
  program
    .command('renew')
    .description('re-sign a role with a fresh expiry (also when it has already expired)')
    .argument('<gun>', 'the collection')
    .option('--role <role>', 'root, targets (default), snapshot (when held here) or a delegated role')
    .option('--expires <lifetime>', 'the new lifetime, e.g. 90d (default: targets 3y)')
    .addHelpText('after', '\nExample:\n  tufa renew example.com/app --role targets')
    .action(
      action(async (ctx, gun: string, opts: { role?: string; expires?: string }) =>
        (await import('./commands/publish.js')).renew(ctx, gun, opts),
      ),
    );
});

define('delegation', () => {
  const delegation = program.command('delegation').description('delegate target paths to other keys');
  delegation
    .command('add')
    .description('stage a delegation of paths to a role held by other keys')
    .argument('<gun>', 'the collection')
    .argument('<role>', 'the delegated role name, e.g. releases')
    .option('--key <file>', 'a public key file (from tufa key export); repeatable', collect, [])
    .option('--paths <pattern>', "a path pattern, e.g. 'releases/*'; repeatable", collect, [])
    .option('--threshold <n>', 'signatures needed (default 1)')
    .option('--terminating', 'stop the search at this role for matching paths')
    .option('--parent <role>', 'delegate from this role instead of targets')
    .addHelpText(
      'after',
      "\nExample:\n  tufa delegation add example.com/app releases --key alice.pub --paths 'releases/*'",
    )
    .action(
      action(async (ctx, gun: string, role: string, opts: Record<string, never>) =>
        (await import('./commands/delegation.js')).delegationAdd(ctx, gun, role, opts),
      ),
    );
  delegation
    .command('remove')
    .description('stage the removal of a delegation')
    .argument('<gun>', 'the collection')
    .argument('<role>', 'the delegated role')
    .option('--parent <role>', 'the delegating role (default targets)')
    .addHelpText('after', '\nExample:\n  tufa delegation remove example.com/app releases')
    .action(
      action(async (ctx, gun: string, role: string, opts: { parent?: string }) =>
        (await import('./commands/delegation.js')).delegationRemove(ctx, gun, role, opts),
      ),
    );
  delegation
    .command('list')
    .description('list the trusted delegations')
    .argument('<gun>', 'the collection')
    .addHelpText('after', '\nExample:\n  tufa delegation list example.com/app')
    .action(
      action(async (ctx, gun: string) => (await import('./commands/delegation.js')).delegationList(ctx, gun)),
    );
});

define('notary', () => {
  const notary = program.command('notary').description('coming from Notary v1 (Docker Content Trust)');
  notary
    .command('import')
    .description(
      "verify a Notary collection by Notary's rules, then publish it as a tufa collection and check every tag again",
    )
    .argument('<notary-url>', 'the Notary server, e.g. https://notary.example.com')
    .argument('<gun>', 'the Notary collection')
    .option(
      '--trust-dir <dir>',
      "Notary's trust dir: its root (rotations chain from it) and, with --keep-keys, its keys (default ~/.notary)",
    )
    .option('--into <gun>', 'the tufa collection to create (default: the same GUN)')
    .option(
      '--keep-keys',
      "sign with Notary's root, targets and delegation keys (NOTARY_*_PASSPHRASE), re-encrypted into the keystore",
    )
    .option('--root-cert-id <id>', 'pin the Notary root: a root certificate key id (repeatable)', collect, [])
    .addHelpText(
      'after',
      '\nPrints what was imported, how delegations were mapped, what could not be carried, and the new root\nkey id to pin. Exits 1 (IMPORT_MISMATCH) when a tag resolves differently through tufa afterwards.\n\nExample:\n  tufa notary import https://notary.example.com registry.example.com/team/app --trust-dir ~/.docker/trust',
    )
    .action(
      action(async (ctx, url: string, gun: string, opts: Record<string, never>) =>
        (await import('./commands/notary.js')).notaryImport(ctx, url, gun, opts),
      ),
    );
});

define('key', () => {
  const key = program.command('key').description('manage private keys in TUFA_HOME/private');
  key
    .command('generate')
    .description(
      'generate a key: in the keystore, encrypted with a passphrase (ed25519, or ECDSA P-256 with --type ecdsa), or on a PKCS#11 token (--pkcs11, P-256)',
    )
    .addOption(
      new Option('--role <role>', 'what the key is for')
        .choices(['root', 'targets', 'snapshot', 'delegation'])
        .default('targets'),
    )
    .addOption(
      new Option(
        '--type <type>',
        'the key type (ecdsa: ecdsa-sha2-nistp256; default ed25519, with --pkcs11 ecdsa)',
      ).choices(['ed25519', 'ecdsa']),
    )
    .option('--gun <gun>', 'the collection the key is for')
    .option('--pkcs11', 'make the key pair on a PKCS#11 token (P-256; PIN: TUFA_PKCS11_PIN or a prompt)')
    .option('--module <path>', 'with --pkcs11: the PKCS#11 module (default: TUFA_PKCS11_MODULE)')
    // Not --token: that is the global option for the server's access token.
    .option('--token-label <label>', 'with --pkcs11: the token (needed when the module has several)')
    .option('--label <name>', 'with --pkcs11: the key’s label on the token (default "tufa ROLE")')
    .option('--id <hex>', 'with --pkcs11: the key’s id on the token (YubiKey PIV: 02 is slot 9c)')
    .addHelpText(
      'after',
      '\nExamples:\n  TUFA_DELEGATION_PASSPHRASE=… tufa key generate --role delegation\n  TUFA_TARGETS_PASSPHRASE=… tufa key generate --role targets --type ecdsa\n  TUFA_PKCS11_PIN=… tufa key generate --pkcs11 --module /usr/lib/softhsm/libsofthsm2.so --token-label tufa --role root',
    )
    .action(
      action(async (ctx, opts: Record<string, string | boolean | undefined>) =>
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
    .description(
      'import a private key file written by `tufa key export --private`, or adopt a key on a PKCS#11 token (--pkcs11-uri)',
    )
    .argument('[file]', 'the key file')
    .option('--pkcs11-uri <uri>', 'a key pair on a token, by RFC 7512 URI: pkcs11:token=…;object=…;id=…')
    .addOption(
      new Option('--role <role>', 'with --pkcs11-uri: what the key is for').choices([
        'root',
        'targets',
        'snapshot',
        'delegation',
      ]),
    )
    .option('--gun <gun>', 'with --pkcs11-uri: the collection the key is for')
    .option('--module <path>', 'with --pkcs11-uri: the PKCS#11 module (default: TUFA_PKCS11_MODULE)')
    .addHelpText(
      'after',
      "\nExamples:\n  TUFA_TARGETS_PASSPHRASE=… tufa key import ./3f1c.key\n  tufa key import --pkcs11-uri 'pkcs11:token=YubiKey%20PIV;id=%02' --module /usr/lib/x86_64-linux-gnu/libykcs11.so --role root",
    )
    .action(
      action(async (ctx, file: string | undefined, opts: Record<string, string | undefined>) =>
        (await import('./commands/key.js')).keyImport(ctx, file, opts),
      ),
    );

  key
    .command('rotate')
    .description('replace the key of a role: a new root names it, signed by the current root keys')
    .argument('<gun>', 'the collection')
    .argument('<role>', 'root, targets, snapshot or timestamp')
    .option('--server-managed', 'snapshot: let the server hold the new key')
    .option('--yes', 'do not ask for confirmation (root)')
    .option('--key-id <keyid>', 'move the role onto a key already in this home (keystore or PKCS#11 token)')
    .addHelpText(
      'after',
      '\nExamples:\n  tufa key rotate example.com/app targets\n  tufa key rotate example.com/app targets --key-id 3f1c…',
    )
    .action(
      action(
        async (
          ctx,
          gun: string,
          role: string,
          opts: { serverManaged?: boolean; yes?: boolean; keyId?: string },
        ) => (await import('./commands/rotate.js')).keyRotate(ctx, gun, role, opts),
      ),
    );

  key
    .command('add')
    .description(
      'add keys to a role (a new root, or the delegator of a delegated role); signed as its threshold requires',
    )
    .argument('<gun>', 'the collection')
    .argument('<role>', 'root, targets or a delegated role')
    .argument('<pubfile...>', 'public key files from tufa key export, or key ids of keys in this home')
    .option('--threshold <k>', 'the new threshold of the role (default: unchanged)')
    .option(
      '--pending-expires <lifetime>',
      'when signatures are missing: how long they may take (default 7d)',
    )
    .addHelpText('after', '\nExample:\n  tufa key add example.com/app root dave.pub erin.pub --threshold 3')
    .action(
      action(async (ctx, gun: string, role: string, files: string[], opts: Record<string, string>) =>
        (await import('./commands/threshold.js')).keyAdd(ctx, gun, role, files, opts),
      ),
    );
  key
    .command('remove')
    .description('remove a key from a role; signed as its threshold requires')
    .argument('<gun>', 'the collection')
    .argument('<role>', 'root, targets or a delegated role')
    .argument('<keyid>', 'the key id')
    .option('--threshold <k>', 'the new threshold of the role (default: unchanged)')
    .option(
      '--pending-expires <lifetime>',
      'when signatures are missing: how long they may take (default 7d)',
    )
    .addHelpText('after', '\nExample:\n  tufa key remove example.com/app targets 3f1c…')
    .action(
      action(async (ctx, gun: string, role: string, keyid: string, opts: Record<string, string>) =>
        (await import('./commands/threshold.js')).keyRemove(ctx, gun, role, keyid, opts),
      ),
    );
});

define('threshold', () => {
  program
    .command('threshold')
    .description('threshold signing: how many keys of a role must sign')
    .command('set')
    .description('set the threshold of a role (a new root, or the delegator of a delegated role)')
    .argument('<gun>', 'the collection')
    .argument('<role>', 'root, targets or a delegated role')
    .argument('<k>', 'signatures needed')
    .option(
      '--pending-expires <lifetime>',
      'when signatures are missing: how long they may take (default 7d)',
    )
    .addHelpText('after', '\nExample:\n  tufa threshold set example.com/app targets 2')
    .action(
      action(async (ctx, gun: string, role: string, k: string, opts: { pendingExpires?: string }) =>
        (await import('./commands/threshold.js')).thresholdSet(ctx, gun, role, k, opts),
      ),
    );
});

define('pending', () => {
  const pending = program.command('pending').description('threshold signing: updates waiting for signatures');
  pending
    .command('list')
    .description(
      'each pending update: roles, versions, who signed, how many more are needed, what it changes',
    )
    .argument('<gun>', 'the collection')
    .addHelpText('after', '\nExample:\n  tufa pending list example.com/app')
    .action(
      action(async (ctx, gun: string) => (await import('./commands/pending.js')).pendingList(ctx, gun)),
    );
  pending
    .command('drop')
    .description('drop a pending update of a role (superseded ones too)')
    .argument('<gun>', 'the collection')
    .argument('<role>', 'a role of the pending update')
    .option('--version <v>', 'the proposed version')
    .option('--id <prefix>', 'the pending update id (when several match)')
    .addHelpText('after', '\nExample:\n  tufa pending drop example.com/app targets --id 3f1c2a')
    .action(
      action(async (ctx, gun: string, role: string, opts: { version?: string; id?: string }) =>
        (await import('./commands/pending.js')).pendingDrop(ctx, gun, role, opts),
      ),
    );
});

define('sign', () => {
  program
    .command('sign')
    .description(
      'review a pending update against the trusted state, sign it with the keys here and upload the signatures',
    )
    .argument('<gun>', 'the collection')
    .argument('<role>', 'the role to sign')
    .option('--version <v>', 'the proposed version')
    .option('--id <prefix>', 'the pending update id (when several match)')
    .option('--yes', 'sign without asking (scripts: read the summary first)')
    .addHelpText('after', '\nExample:\n  TUFA_TARGETS_PASSPHRASE=… tufa sign example.com/app targets')
    .action(
      action(async (ctx, gun: string, role: string, opts: { version?: string; id?: string; yes?: boolean }) =>
        (await import('./commands/pending.js')).sign(ctx, gun, role, opts),
      ),
    );
});

async function main(argv: string[]): Promise<void> {
  // Not commander's .version(): it would take `sign … --version V` and `pending drop … --version V` too.
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
    process.stdout.write(`${packageJson.version}\n`);
    return;
  }
  try {
    defineCommands(argv);
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; anything else commander refuses is a usage error.
      if (err.exitCode !== 0 && jsonOutput) {
        const message =
          err.code === 'commander.help'
            ? 'give a command (tufa --help lists them)'
            : err.message.replace(/^error: /, '');
        reportError(new TufaError('INVALID_ARGUMENT', message, { details: { usage: err.code } }), {
          json: true,
          debug: false,
        });
      }
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    process.exitCode = reportError(err, { json: jsonOutput, debug: argv.includes('--debug') });
  }
}

// Not awaited at the top level: the bundle is CommonJS (scripts/bundle-cli.mjs); main reports its own errors.
void main(process.argv);
