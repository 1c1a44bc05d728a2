// Create a root and targets, sign them, serialize, and verify them as a client would.
import {
  checkDigest,
  DEFAULT_EXPIRY,
  ed25519Signer,
  expiresIn,
  generateEd25519Key,
  isTufaError,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  newTimestamp,
  parseDigest,
  serializeMetadata,
  signMetadata,
  TrustedMetadataSet,
  targetFileFor,
  withTarget,
} from '@tufa/core';
// The caller picks the crypto provider: node:crypto here; `createNobleCrypto` from `@tufa/core/noble` needs no Node.
import { createNodeCrypto } from '@tufa/core/node';

const crypto = createNodeCrypto();
const now = Date.now();
const [rootKey, targetsKey, snapshotKey, timestampKey] = [1, 2, 3, 4].map(() => generateEd25519Key(crypto));

// The repository side: root names the keys of every role; targets maps a tag to a digest.
const root = newRoot({
  expires: expiresIn(now, DEFAULT_EXPIRY.root),
  roles: {
    root: { keys: [rootKey!.key] },
    targets: { keys: [targetsKey!.key] },
    snapshot: { keys: [snapshotKey!.key] },
    timestamp: { keys: [timestampKey!.key] },
  },
});
const artifact = new TextEncoder().encode('release 1.0 bytes');
const targets = withTarget(
  newTargets({ expires: expiresIn(now, DEFAULT_EXPIRY.targets) }),
  'app/1.0',
  targetFileFor(crypto, artifact),
);

const rootBytes = serializeMetadata(await signMetadata(root, [ed25519Signer(crypto, rootKey!.privateKey)]));
const targetsBytes = serializeMetadata(
  await signMetadata(targets, [ed25519Signer(crypto, targetsKey!.privateKey)]),
);
const snapshotBytes = serializeMetadata(
  await signMetadata(
    newSnapshot({
      expires: expiresIn(now, DEFAULT_EXPIRY.snapshot),
      meta: { 'targets.json': metaFileFor(crypto, targetsBytes, 1) },
    }),
    [ed25519Signer(crypto, snapshotKey!.privateKey)],
  ),
);
const timestampBytes = serializeMetadata(
  await signMetadata(
    newTimestamp({
      expires: expiresIn(now, DEFAULT_EXPIRY.timestamp),
      snapshotMeta: metaFileFor(crypto, snapshotBytes, 1),
    }),
    [ed25519Signer(crypto, timestampKey!.privateKey)],
  ),
);

// The client side: every rule of the TUF workflow, in order; any refusal throws a TufaError.
const trusted = TrustedMetadataSet.fromTrustedRoot(rootBytes, { crypto, now });
trusted.updateTimestamp(timestampBytes);
trusted.updateSnapshot(snapshotBytes);
const verified = trusted.updateTargets(targetsBytes);
const entry = verified.signed.targets['app/1.0']!;
checkDigest(entry, parseDigest(`sha256:${entry.hashes.sha256}`));
console.log(`app/1.0 -> sha256:${entry.hashes.sha256} (${entry.length} bytes), trusted`);

// A tampered targets file is refused with a code a caller can branch on.
const tampered = Uint8Array.from(targetsBytes);
tampered[tampered.length - 10] ^= 1;
const again = TrustedMetadataSet.fromTrustedRoot(rootBytes, { crypto, now });
again.updateTimestamp(timestampBytes);
again.updateSnapshot(snapshotBytes);
try {
  again.updateTargets(tampered);
} catch (err) {
  if (isTufaError(err)) console.log(`refused: ${err.code}: ${err.message}`);
}
