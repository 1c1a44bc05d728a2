/**
 * Images as TUF targets: a tag of `REGISTRY/REPOSITORY` is a target of the collection of that
 * name; the target is the manifest (or index) the tag named when it was signed: its sha256, its
 * size, and its media type in `custom`.
 */
import { type ClientOptions, createClient, type TargetInfo, type TufaClient } from '@tufa/client';
import { type JsonValue, TufaError } from '@tufa/core';
import { type ImageReference, parseImageReference, pinnedReference } from './reference.js';
import {
  DEFAULT_MAX_MANIFEST_BYTES,
  MANIFEST_MEDIA_TYPES,
  RegistryClient,
  type RegistryOptions,
} from './registry.js';

/** Where the trusted metadata comes from: a tufa server (and client options), or a client per GUN. */
export type TrustSource =
  | { server: string; clientOptions?: ClientOptions }
  | { client: (gun: string) => TufaClient | Promise<TufaClient> };

export interface ResolvedImage {
  readonly reference: ImageReference;
  /** `sha256:HEX`: the signed manifest digest. */
  readonly digest: string;
  readonly length: number;
  /** The signed media type (custom.mediaType), when the publisher recorded one. */
  readonly mediaType: string | undefined;
  /** The role that signed the tag. */
  readonly role: string;
  /** `REGISTRY/REPOSITORY@sha256:HEX`: what to pull. */
  readonly pinned: string;
}

/** The custom data tufa signs with an image target. */
export function imageCustom(mediaType: string): JsonValue {
  return { mediaType };
}

function openTufaClient(source: TrustSource, gun: string): TufaClient | Promise<TufaClient> {
  return 'client' in source
    ? source.client(gun)
    : createClient({ server: source.server, gun }, source.clientOptions);
}

/** A trusted target as an image: a sha256 digest, a manifest-sized length, a manifest media type if any. */
function asImage(reference: ImageReference, target: TargetInfo): ResolvedImage {
  const name = `${reference.gun}:${reference.tag}`;
  const hex = target.hashes.sha256;
  if (hex === undefined) {
    throw new TufaError(
      'HASH_MISMATCH',
      `${name}: the signed target has no sha256, which every manifest digest is`,
      {
        role: target.role,
        expected: 'sha256',
        found: Object.keys(target.hashes),
      },
    );
  }
  const custom = target.custom as { mediaType?: unknown } | undefined | null;
  const mediaType = custom !== null && typeof custom === 'object' ? custom.mediaType : undefined;
  if (
    mediaType !== undefined &&
    (typeof mediaType !== 'string' || !MANIFEST_MEDIA_TYPES.includes(mediaType))
  ) {
    throw new TufaError(
      'INVALID_METADATA',
      `${name}: signed as ${JSON.stringify(mediaType).slice(0, 100)}, not an image manifest or index`,
      { role: target.role, expected: MANIFEST_MEDIA_TYPES, found: mediaType },
    );
  }
  const digest = `sha256:${hex}`;
  return {
    reference,
    digest,
    length: target.length,
    mediaType,
    role: target.role,
    pinned: pinnedReference(reference, digest),
  };
}

/**
 * `REGISTRY/REPOSITORY:TAG` → the digest its publisher signed, after the full TUF refresh (every
 * refusal a TufaError: EXPIRED, ROLLBACK, BAD_SIGNATURE, NOT_FOUND for an unsigned tag, …). The
 * registry is not asked.
 */
export async function resolveImage(ref: string | ImageReference, trust: TrustSource): Promise<ResolvedImage> {
  const reference = typeof ref === 'string' ? parseImageReference(ref) : ref;
  const client = await openTufaClient(trust, reference.gun);
  return asImage(reference, await client.getTarget(reference.tag));
}

export interface VerifiedImage extends ResolvedImage {
  /** The digest the registry's tag names now (HEAD), or null when it did not say or has no such tag. */
  readonly registryTagDigest: string | null;
  /** False when the registry's tag has moved away from the signed digest (pushed, not re-signed). */
  readonly tagMatches: boolean | null;
}

/**
 * resolveImage, then the registry: the manifest it serves for the signed digest must hash to it
 * and have the signed length (HASH_MISMATCH, LENGTH_MISMATCH), and where its tag points now is reported.
 */
export async function verifyImage(
  ref: string | ImageReference,
  trust: TrustSource,
  registry: RegistryOptions = {},
): Promise<VerifiedImage> {
  const resolved = await resolveImage(ref, trust);
  const client = new RegistryClient(resolved.reference, registry);
  if (resolved.length > (registry.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES)) {
    throw new TufaError(
      'TOO_LARGE',
      `${resolved.pinned}: signed with ${resolved.length} bytes, more than a manifest may have`,
      { role: resolved.role, found: resolved.length },
    );
  }
  const manifest = await client.getManifest(resolved.digest, { expectedLength: resolved.length });
  if (resolved.mediaType !== undefined && manifest.mediaType !== resolved.mediaType) {
    throw new TufaError(
      'INVALID_METADATA',
      `${resolved.pinned}: signed as ${resolved.mediaType}, the registry serves it as ${manifest.mediaType}`,
      { role: resolved.role, expected: resolved.mediaType, found: manifest.mediaType },
    );
  }
  let tagDigest: string | null = null;
  try {
    tagDigest = (await client.headManifest(resolved.reference.tag)).digest ?? null;
    if (tagDigest === null) tagDigest = (await client.getManifest(resolved.reference.tag)).digest;
  } catch (err) {
    if (!(err instanceof TufaError && err.code === 'NOT_FOUND')) throw err;
  }
  return {
    ...resolved,
    registryTagDigest: tagDigest,
    tagMatches: tagDigest === null ? null : tagDigest === resolved.digest,
  };
}

/** What a publisher signs for a tag: the manifest the registry serves for it now (or for a known digest). */
export async function inspectImage(
  ref: string | ImageReference,
  registry: RegistryOptions = {},
  options: { digest?: string } = {},
): Promise<{
  reference: ImageReference;
  digest: string;
  size: number;
  mediaType: string;
  tagDigest: string | null;
}> {
  const reference = typeof ref === 'string' ? parseImageReference(ref) : ref;
  const client = new RegistryClient(reference, registry);
  if (options.digest !== undefined) {
    const manifest = await client.getManifest(options.digest);
    let tagDigest: string | null = null;
    try {
      tagDigest = (await client.headManifest(reference.tag)).digest ?? null;
    } catch (err) {
      if (!(err instanceof TufaError && err.code === 'NOT_FOUND')) throw err;
    }
    return {
      reference,
      digest: manifest.digest,
      size: manifest.size,
      mediaType: manifest.mediaType,
      tagDigest,
    };
  }
  // HEAD first (cheap, and not counted by Docker Hub's pull limit), then the bytes of that digest:
  // the tag cannot move between the two.
  const head = await client.headManifest(reference.tag);
  const manifest = await client.getManifest(head.digest ?? reference.tag);
  return {
    reference,
    digest: manifest.digest,
    size: manifest.size,
    mediaType: manifest.mediaType,
    tagDigest: head.digest ?? manifest.digest,
  };
}
