// Starts a server on an embedded PostgreSQL in a temporary folder, publishes a collection and reads it back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ed25519Signer,
  expiresIn,
  generateEd25519Key,
  type Key,
  newRoot,
  newTargets,
  parseMetadata,
  serializeMetadata,
  signMetadata,
  targetFileFor,
  utf8Encode,
  withTarget,
} from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { parseCommandLine, startServer } from '@tufa/server';

const dataDir = mkdtempSync(join(tmpdir(), 'tufa-example-'));
const { config } = parseCommandLine(['--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {});
const server = await startServer(config);
const gun = 'registry.example.com/team/app';
const base = `${server.url}/v2/${gun}/_trust/tuf`;
try {
  // Writes need a token (`tufa-server token create` does the same from a shell); reads are anonymous.
  const { token } = await server.tokens.create('publisher', ['push:registry.example.com/*']);
  const authorization = `Bearer ${token}`;
  // The server's online keys go into the root; the publisher keeps root and targets keys offline.
  const onlineKey = async (role: string): Promise<Key> => ({
    ...(await (await fetch(`${base}/${role}.key`, { headers: { authorization } })).json()),
    extra: {},
  });
  const crypto = createNodeCrypto();
  const rootKey = generateEd25519Key(crypto);
  const targetsKey = generateEd25519Key(crypto);
  const day = 24 * 3600 * 1000;
  const root = newRoot({
    expires: expiresIn(Date.now(), 365 * day),
    roles: {
      root: { keys: [rootKey.key] },
      targets: { keys: [targetsKey.key] },
      snapshot: { keys: [await onlineKey('snapshot')] },
      timestamp: { keys: [await onlineKey('timestamp')] },
    },
  });
  const targets = withTarget(
    newTargets({ expires: expiresIn(Date.now(), 90 * day) }),
    'v1.0.0',
    targetFileFor(crypto, utf8Encode('the image manifest')),
  );
  const body = {
    root: await signMetadata(root, [ed25519Signer(crypto, rootKey.privateKey)]),
    targets: await signMetadata(targets, [ed25519Signer(crypto, targetsKey.privateKey)]),
  };
  const text = `{${Object.entries(body)
    .map(([role, md]) => `"${role}":${new TextDecoder().decode(serializeMetadata(md))}`)
    .join(',')}}`;
  const res = await fetch(`${base}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: text,
  });
  console.log(`publish: ${res.status} ${JSON.stringify(await res.json())}`);

  const timestamp = parseMetadata(
    'timestamp',
    new Uint8Array(await (await fetch(`${base}/timestamp.json`)).arrayBuffer()),
  );
  console.log(
    `timestamp v${timestamp.signed.version} names snapshot v${timestamp.signed.snapshotMeta.version}`,
  );
} finally {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
}
