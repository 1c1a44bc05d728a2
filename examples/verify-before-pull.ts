/**
 * A deploy step: verify that TAG really maps to DIGEST in the signed, fresh TUF metadata of a
 * repository before pulling the image by digest. Exits 0 only when the mapping is trusted;
 * prints the refusal (code, role, expected, found) as JSON on stderr and exits 1 otherwise.
 *
 *   npx tsx --conditions=tufa-source examples/verify-before-pull.ts \
 *     --server https://notary.example.com --gun registry.example.com/team/app \
 *     --tag v1.2.3 --digest sha256:… [--root ./root.json] [--cache ./cache] [--no-tofu]
 *   (or --metadata-url URL instead of --server/--gun, for any TUF 1.0 repository)
 */
import { parseArgs } from 'node:util';
import { createClient, type RepositoryLocation, type TrustOptions } from '@tufa/client';
import { isTufaError } from '@tufa/client/errors';

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    gun: { type: 'string' },
    'metadata-url': { type: 'string' },
    tag: { type: 'string' },
    digest: { type: 'string' },
    root: { type: 'string' },
    cache: { type: 'string' },
    'no-tofu': { type: 'boolean', default: false },
  },
  strict: true,
});

function usage(message: string): never {
  process.stderr.write(`${JSON.stringify({ code: 'INVALID_ARGUMENT', message })}\n`);
  process.exit(2);
}

const { tag, digest } = values;
if (tag === undefined || digest === undefined) usage('--tag and --digest are required');
let location: RepositoryLocation;
if (values['metadata-url'] !== undefined) location = { metadataUrl: values['metadata-url'] };
else if (values.server !== undefined && values.gun !== undefined)
  location = { server: values.server, gun: values.gun };
else usage('give --server and --gun, or --metadata-url');

const trust: TrustOptions = { allowTofu: !values['no-tofu'] };
if (values.root !== undefined) trust.rootFile = values.root;

try {
  const client = createClient(location, {
    trust,
    ...(values.cache !== undefined ? { cacheDir: values.cache } : {}),
    // Trust on first use must never pass silently; stale cache files are routine.
    onNotice: (notice) => {
      if (notice.kind === 'tofu') process.stderr.write(`notice: ${notice.message}\n`);
    },
  });
  await client.refresh();
  const verified = await client.verifyDigest(tag, digest);
  process.stdout.write(`verified ${tag} -> ${verified.digest} (signed by ${verified.role})\n`);
  // The pull itself is simulated: a real script would now run `docker pull IMAGE@DIGEST`.
  const image = 'gun' in location ? location.gun : tag;
  process.stdout.write(`pull ${image}@${verified.digest}\n`);
} catch (err) {
  if (isTufaError(err)) process.stderr.write(`${JSON.stringify(err.toJSON())}\n`);
  else process.stderr.write(`${JSON.stringify({ code: 'INTERNAL', message: String(err) })}\n`);
  process.exit(1);
}
