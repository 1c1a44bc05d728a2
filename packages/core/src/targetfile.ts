/**
 * Checking artifacts against a trusted target entry: a digest string (`sha256:HEX`) or bytes
 * streamed through every supported hash the entry states, with the length bounded as it goes.
 */
import {
  type CryptoProvider,
  HASH_HEX_LENGTH,
  type HashAlgorithm,
  type IncrementalHash,
  isHashAlgorithm,
} from './crypto.js';
import { toHex } from './encoding.js';
import { TufaError } from './errors.js';
import type { TargetFile } from './metadata.js';

export interface Digest {
  readonly algorithm: HashAlgorithm;
  readonly hex: string;
}

/** Parses `ALGORITHM:HEX` (as `docker pull img@sha256:…` writes it), strictly. */
export function parseDigest(text: string): Digest {
  const at = text.indexOf(':');
  const algorithm = at > 0 ? text.slice(0, at) : '';
  const hex = text.slice(at + 1);
  if (!isHashAlgorithm(algorithm)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `digest must be ALGORITHM:HEX with one of sha256, sha384, sha512`,
      {
        found: text.length > 80 ? `${text.slice(0, 77)}...` : text,
      },
    );
  }
  if (hex.length !== HASH_HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${algorithm} digest must be ${HASH_HEX_LENGTH[algorithm]} lowercase hex digits`,
      {
        found: hex.length > 80 ? `${hex.slice(0, 77)}...` : hex,
      },
    );
  }
  return { algorithm, hex };
}

export function formatDigest(digest: Digest): string {
  return `${digest.algorithm}:${digest.hex}`;
}

/** The strongest digest the target states that tufa computes (sha256 first: what registries pin). */
export function preferredDigest(target: TargetFile, role?: string): Digest {
  for (const algorithm of ['sha256', 'sha512', 'sha384'] as const) {
    const hex = target.hashes[algorithm];
    if (hex !== undefined) return { algorithm, hex };
  }
  throw new TufaError('HASH_MISMATCH', 'the target states no hash that tufa can compute', {
    role,
    expected: 'sha256, sha384 or sha512',
    found: Object.keys(target.hashes).join(', '),
  });
}

/**
 * Compares a digest with the target's. The target must state that algorithm: a digest of
 * another algorithm cannot be checked and is refused.
 */
export function checkDigest(
  target: TargetFile,
  digest: Digest,
  options: { path?: string; role?: string } = {},
): void {
  const expected = target.hashes[digest.algorithm];
  const name = options.path ?? 'target';
  if (expected === undefined) {
    throw new TufaError('HASH_MISMATCH', `${name}: the trusted metadata states no ${digest.algorithm} hash`, {
      role: options.role,
      expected: Object.keys(target.hashes).join(', '),
      found: digest.algorithm,
    });
  }
  if (expected !== digest.hex) {
    throw new TufaError('HASH_MISMATCH', `${name}: ${digest.algorithm} differs from the trusted one`, {
      role: options.role,
      expected: formatDigest({ algorithm: digest.algorithm, hex: expected }),
      found: formatDigest(digest),
    });
  }
}

/**
 * Streams content through every supported hash the target states; `update` refuses as soon as
 * more bytes arrive than the trusted length (so an endless stream stops at the bound), and
 * `finish` checks the length and each hash.
 */
export class TargetVerifier {
  private readonly hashers: [HashAlgorithm, IncrementalHash][];
  private received = 0;

  constructor(
    crypto: CryptoProvider,
    private readonly target: TargetFile,
    private readonly options: { path?: string; role?: string } = {},
  ) {
    const algorithms = Object.keys(target.hashes).filter(isHashAlgorithm);
    if (algorithms.length === 0) preferredDigest(target, options.role); // throws the clear error
    this.hashers = algorithms.map((a) => [a, crypto.createHash(a)]);
  }

  get bytesReceived(): number {
    return this.received;
  }

  update(chunk: Uint8Array): void {
    this.received += chunk.length;
    if (this.received > this.target.length) {
      throw new TufaError(
        'LENGTH_MISMATCH',
        `${this.options.path ?? 'target'}: more than the trusted ${this.target.length} bytes`,
        { role: this.options.role, expected: this.target.length, found: `> ${this.target.length}` },
      );
    }
    for (const [, h] of this.hashers) h.update(chunk);
  }

  finish(): void {
    const name = this.options.path ?? 'target';
    if (this.received !== this.target.length) {
      throw new TufaError(
        'LENGTH_MISMATCH',
        `${name}: ${this.received} bytes where ${this.target.length} are trusted`,
        {
          role: this.options.role,
          expected: this.target.length,
          found: this.received,
        },
      );
    }
    for (const [algorithm, h] of this.hashers) {
      const found = toHex(h.digest());
      const expected = this.target.hashes[algorithm]!;
      if (found !== expected) {
        throw new TufaError('HASH_MISMATCH', `${name}: ${algorithm} differs from the trusted one`, {
          role: this.options.role,
          expected: `${algorithm}:${expected}`,
          found: `${algorithm}:${found}`,
        });
      }
    }
  }
}
