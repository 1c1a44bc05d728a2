/**
 * `tufa image add | resolve | verify` and `tufa pull`: container images as targets. The tag of
 * `REGISTRY/REPOSITORY` is a target of the collection named `REGISTRY/REPOSITORY`; what is signed
 * is the manifest (or index) digest the registry serves, with its size and media type.
 */
import { spawn } from 'node:child_process';
import { isTufaError, TufaError } from '@tufa/core';
import type { CredentialSource, ImageReference, RegistryOptions, TrustSource } from '@tufa/oci';
import type { Context } from '../context.js';
import { collecting } from '../output.js';

export interface RegistryFlags {
  insecureRegistry?: string[];
  registryUser?: string;
}

async function registryOptions(ctx: Context, flags: RegistryFlags): Promise<RegistryOptions> {
  const { dockerCredentials, staticCredentials } = await import('@tufa/oci');
  let credentials: CredentialSource;
  if (flags.registryUser !== undefined) {
    const password = ctx.env.TUFA_REGISTRY_PASSWORD;
    if (password === undefined || password === '') {
      throw new TufaError(
        'PASSPHRASE_REQUIRED',
        '--registry-user needs the password (or access token) in TUFA_REGISTRY_PASSWORD',
      );
    }
    credentials = staticCredentials(flags.registryUser, password, '--registry-user');
  } else {
    credentials = dockerCredentials({ env: ctx.env });
  }
  const fromEnv = (ctx.env.TUFA_INSECURE_REGISTRIES ?? '').split(/[\s,]+/).filter((h) => h !== '');
  const insecure = [...(flags.insecureRegistry ?? []), ...fromEnv];
  for (const host of insecure) {
    if (!/^[a-z0-9.-]+(:[1-9][0-9]{0,4})?$|^\[[0-9a-f:]+\](:[1-9][0-9]{0,4})?$/.test(host)) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `--insecure-registry and TUFA_INSECURE_REGISTRIES take HOST[:PORT], not ${host.slice(0, 80)}`,
      );
    }
  }
  return { insecureRegistries: insecure, credentials };
}

function trustSource(ctx: Context): TrustSource {
  return { client: async (gun) => (await import('../repo.js')).openClient(ctx, gun) };
}

function name(ref: ImageReference): string {
  return `${ref.gun}:${ref.tag}`;
}

export async function imageAdd(
  ctx: Context,
  image: string,
  options: RegistryFlags & {
    digest?: string;
    length?: string;
    mediaType?: string;
    registry?: boolean;
    role?: string;
    publish?: boolean;
    expires?: string;
  },
): Promise<void> {
  if (options.expires !== undefined && options.publish !== true) {
    throw new TufaError('INVALID_ARGUMENT', '--expires goes with --publish (or give it to tufa publish)');
  }
  const oci = await import('@tufa/oci');
  const ref = oci.parseImageReference(image);
  const registry = await registryOptions(ctx, options);
  const length = options.length === undefined ? undefined : Number(options.length);
  if (options.length !== undefined && (!/^\d+$/.test(options.length) || !Number.isSafeInteger(length))) {
    throw new TufaError('INVALID_ARGUMENT', '--length is the manifest size in bytes');
  }
  if (options.mediaType !== undefined && !oci.MANIFEST_MEDIA_TYPES.includes(options.mediaType)) {
    throw new TufaError('INVALID_ARGUMENT', `--media-type is one of ${oci.MANIFEST_MEDIA_TYPES.join(', ')}`, {
      found: options.mediaType.slice(0, 100),
    });
  }
  let digest: string;
  let size: number;
  let mediaType: string;
  let tagDigest: string | null = null;
  let checked = true;
  if (options.digest === undefined) {
    if (options.registry === false) {
      throw new TufaError('INVALID_ARGUMENT', '--no-registry goes with --digest, --length and --media-type');
    }
    const found = await oci.inspectImage(ref, registry);
    ({ digest, size, mediaType, tagDigest } = found);
  } else {
    digest = oci.checkManifestDigest(options.digest);
    let found: Awaited<ReturnType<typeof oci.inspectImage>> | undefined;
    if (options.registry !== false) {
      try {
        found = await oci.inspectImage(ref, registry, { digest });
      } catch (err) {
        // Unreachable is not refused: the build that printed the digest is the evidence.
        const offline = isTufaError(err, 'NETWORK') || isTufaError(err, 'TIMEOUT');
        if (!offline || length === undefined || options.mediaType === undefined) throw err;
        ctx.out.note(
          `tufa: note: cannot reach the registry of ${ref.gun} (${err.code}): staged without checking ${digest} there`,
        );
      }
    }
    if (found === undefined) {
      if (length === undefined || options.mediaType === undefined) {
        throw new TufaError(
          'INVALID_ARGUMENT',
          '--digest without the registry needs --length N and --media-type TYPE (from the build, e.g. buildx --metadata-file)',
        );
      }
      size = length;
      mediaType = options.mediaType;
      checked = false;
    } else {
      if (length !== undefined && length !== found.size) {
        throw new TufaError(
          'LENGTH_MISMATCH',
          `${ref.gun}@${digest}: the registry's manifest has ${found.size} bytes, not ${length}`,
          {
            expected: length,
            found: found.size,
          },
        );
      }
      if (options.mediaType !== undefined && options.mediaType !== found.mediaType) {
        throw new TufaError(
          'INVALID_METADATA',
          `${ref.gun}@${digest}: the registry serves it as ${found.mediaType}, not ${options.mediaType}`,
          { expected: options.mediaType, found: found.mediaType },
        );
      }
      ({ size, mediaType, tagDigest } = found);
    }
  }
  if (checked && tagDigest !== digest) {
    ctx.out.note(
      tagDigest === null
        ? `tufa: note: the registry has no tag ${ref.tag} for ${ref.gun} (yet): signing ${digest} as ${ref.tag}`
        : `tufa: warning: the registry's tag ${ref.tag} names ${tagDigest}, not ${digest}: signing ${digest}`,
    );
  }
  const { add } = await import('./stage.js');
  const staged = collecting(ctx);
  await add(staged.ctx, ref.gun, ref.tag, undefined, {
    digest,
    length: String(size),
    custom: JSON.stringify(oci.imageCustom(mediaType)),
    ...(options.role === undefined ? {} : { role: options.role }),
  });
  let published: unknown = null;
  if (options.publish === true) {
    const { publish } = await import('./publish.js');
    await publish(staged.ctx, ref.gun, options.expires === undefined ? {} : { expires: options.expires });
    published = staged.results[1] ?? null;
  }
  ctx.out.result(
    {
      image: name(ref),
      gun: ref.gun,
      tag: ref.tag,
      digest,
      length: size,
      mediaType,
      pinned: oci.pinnedReference(ref, digest),
      registryChecked: checked,
      registryTagDigest: tagDigest,
      staged: staged.results[0] ?? null,
      published,
    },
    [`${name(ref)} -> ${digest} (${mediaType}, ${size} bytes)`, ...staged.lines],
  );
}

export async function imageResolve(ctx: Context, image: string): Promise<void> {
  const { resolveImage } = await import('@tufa/oci');
  const resolved = await resolveImage(image, trustSource(ctx));
  ctx.out.result(resolvedJson(resolved), resolved.pinned);
}

function resolvedJson(
  r: Awaited<ReturnType<typeof import('@tufa/oci').resolveImage>>,
): Record<string, unknown> {
  return {
    image: name(r.reference),
    gun: r.reference.gun,
    tag: r.reference.tag,
    digest: r.digest,
    length: r.length,
    mediaType: r.mediaType ?? null,
    role: r.role,
    pinned: r.pinned,
  };
}

export async function imageVerify(ctx: Context, image: string, options: RegistryFlags): Promise<void> {
  const { verifyImage } = await import('@tufa/oci');
  const verified = await verifyImage(image, trustSource(ctx), await registryOptions(ctx, options));
  const ref = verified.reference;
  if (verified.tagMatches === false) {
    ctx.out.note(
      `tufa: warning: the registry's tag ${ref.tag} now points to ${verified.registryTagDigest}, not the signed ${verified.digest}: pushed without being signed (or a registry that lies); pull ${verified.pinned}`,
    );
  } else if (verified.tagMatches === null) {
    ctx.out.note(
      `tufa: note: the registry has no tag ${ref.tag} for ${ref.gun} now; the signed manifest is there`,
    );
  }
  ctx.out.result(
    {
      ...resolvedJson(verified),
      trusted: true,
      registryServes: true,
      registryTagDigest: verified.registryTagDigest,
      tagMatches: verified.tagMatches,
    },
    `trusted: ${name(ref)} -> ${verified.pinned} (${verified.length} bytes, signed by ${verified.role}); the registry serves these bytes`,
  );
}

/** Runs the engine with stdin and stderr shared; stdout too, unless --json keeps it for the document. */
async function runEngine(ctx: Context, engine: string, args: string[]): Promise<void> {
  const { withoutTufaSecrets } = await import('@tufa/oci');
  return new Promise((done, fail) => {
    const child = spawn(engine, args, {
      stdio: ['inherit', ctx.out.json ? 'pipe' : 'inherit', 'inherit'],
      env: withoutTufaSecrets(ctx.env),
    });
    child.stdout?.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        new TufaError(
          err.code === 'ENOENT' ? 'INVALID_ARGUMENT' : 'ENGINE_FAILED',
          err.code === 'ENOENT'
            ? `the container engine ${engine} is not on PATH (--engine or TUFA_ENGINE names another)`
            : `cannot run ${engine}: ${err.code ?? err.message}`,
          { details: { engine } },
        ),
      ),
    );
    child.on('close', (code, signal) => {
      if (code === 0) done();
      else
        fail(
          new TufaError('ENGINE_FAILED', `${engine} ${args[0]} exited ${code ?? signal}`, {
            details: { engine, args, status: code },
          }),
        );
    });
  });
}

export async function pull(
  ctx: Context,
  image: string,
  extra: string[],
  options: { engine?: string; tagLocal?: boolean },
): Promise<void> {
  const engine = options.engine ?? (ctx.env.TUFA_ENGINE || undefined) ?? 'docker';
  if (engine === '' || /[\u0000-\u001f]/.test(engine)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'the container engine is a program name or path, e.g. docker or podman',
    );
  }
  const { resolveImage } = await import('@tufa/oci');
  // Resolved (every check) before the engine runs: nothing is pulled unless the tag is trusted.
  const resolved = await resolveImage(image, trustSource(ctx));
  ctx.out.note(
    `tufa: ${name(resolved.reference)} is signed as ${resolved.digest}: pulling ${resolved.pinned}`,
  );
  await runEngine(ctx, engine, ['pull', ...extra, resolved.pinned]);
  let tagged: string | null = null;
  if (options.tagLocal === true) {
    tagged = name(resolved.reference);
    await runEngine(ctx, engine, ['tag', resolved.pinned, tagged]);
  }
  ctx.out.result(
    { ...resolvedJson(resolved), engine, pulled: resolved.pinned, tagged },
    tagged === null ? [] : [`tagged ${resolved.pinned} as ${tagged}`],
  );
}
