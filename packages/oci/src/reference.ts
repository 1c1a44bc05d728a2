/**
 * Image references as Docker reads them: `[REGISTRY/]REPOSITORY[:TAG]`, with Docker's defaults
 * (no registry is docker.io, a one-segment repository there is `library/NAME`, no tag is
 * `latest`). The collection of an image is `REGISTRY/REPOSITORY`, as Docker Content Trust named it.
 */
import { checkGun, TufaError } from '@tufa/core';

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API answers (docker.io itself does not). */
export const DOCKER_HUB_API = 'registry-1.docker.io';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface ImageReference {
  /** The registry as named in the GUN: `docker.io`, `registry.example.com`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** The repository inside the registry: `team/app`, `library/alpine`. */
  readonly repository: string;
  readonly tag: string;
  /** `REGISTRY/REPOSITORY`: the collection whose targets are this repository's tags. */
  readonly gun: string;
  /** The host[:port] whose `/v2/` API serves the repository. */
  readonly apiHost: string;
}

/** Whether the first segment of a name is a registry host (Docker's rule: a `.`, a `:`, or localhost). */
function isRegistryHost(segment: string): boolean {
  return segment.includes('.') || segment.includes(':') || segment === 'localhost' || segment.startsWith('[');
}

/**
 * Parses `[REGISTRY/]REPOSITORY[:TAG]` (an image with a tag, not a digest: tufa resolves tags).
 * INVALID_ARGUMENT says what is wrong; the GUN follows core's grammar (lowercase, no empty segment).
 */
export function parseImageReference(text: string): ImageReference {
  if (typeof text !== 'string' || text.length === 0 || text.length > 512) {
    throw new TufaError('INVALID_ARGUMENT', 'an image reference is [REGISTRY/]REPOSITORY[:TAG]', {
      found: typeof text === 'string' ? text.slice(0, 80) : typeof text,
    });
  }
  if (text.includes('@')) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${text.slice(0, 120)}: give a tag (REPOSITORY:TAG), not a digest: tufa resolves a tag to the digest its publisher signed`,
      { found: text.slice(0, 120) },
    );
  }
  const slash = text.lastIndexOf('/');
  const colon = text.lastIndexOf(':');
  let name = text;
  let tag = 'latest';
  if (colon > slash) {
    name = text.slice(0, colon);
    tag = text.slice(colon + 1);
    if (!TAG.test(tag)) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `not a tag: ${JSON.stringify(tag.slice(0, 130))} (1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)`,
        { found: tag.slice(0, 130) },
      );
    }
  }
  const segments = name.split('/');
  let registry: string;
  let repository: string;
  if (segments.length > 1 && isRegistryHost(segments[0]!)) {
    registry = segments[0]!;
    repository = segments.slice(1).join('/');
  } else {
    registry = DOCKER_HUB;
    repository = name;
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  const gun = checkGun(`${registry}/${repository}`);
  return { registry, repository, tag, gun, apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry };
}

/** `sha256:HEX` as a manifest digest, else INVALID_ARGUMENT. */
export function checkManifestDigest(digest: string): string {
  if (!DIGEST.test(digest)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `not a manifest digest: ${digest.slice(0, 80)} (sha256:64 hex digits)`,
      {
        expected: 'sha256:HEX',
        found: digest.slice(0, 80),
      },
    );
  }
  return digest;
}

/** `REGISTRY/REPOSITORY@DIGEST`: what docker pull, kubectl and podman take. */
export function pinnedReference(ref: ImageReference, digest: string): string {
  return `${ref.gun}@${digest}`;
}
