/**
 * The verification worker's thread (verifier.ts starts it): parses and checks one update at a
 * time with the same function as the event loop (update-check.ts), and answers with its facts or
 * its refusal, never with the parsed documents.
 */
import { parentPort } from 'node:worker_threads';
import {
  type CollectionState,
  parseSignedEnvelope,
  type Root,
  type Snapshot,
  type StoredRole,
  type Targets,
  TufaError,
} from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { checkingUpdate, errorMessage } from './update-check.js';
import type { WorkerAnswer, WorkerJob } from './verifier.js';

const crypto = createNodeCrypto();

/** The stored documents the job carries, parsed: the collection's state less what the update replaces. */
function stateOf(job: WorkerJob): CollectionState {
  const delegated = new Map<string, StoredRole<Targets>>();
  let root: StoredRole<Root> | undefined;
  let targets: StoredRole<Targets> | undefined;
  let snapshot: StoredRole<Snapshot> | undefined;
  for (const row of job.stored) {
    const type = row.role === 'root' || row.role === 'snapshot' ? row.role : 'targets';
    const stored = parseSignedEnvelope(type, row.bytes, { role: row.role, sha256: row.sha256 });
    if (row.role === 'root') root = stored as StoredRole<Root>;
    else if (row.role === 'snapshot') snapshot = stored as StoredRole<Snapshot>;
    else if (row.role === 'targets') targets = stored as StoredRole<Targets>;
    else delegated.set(row.role, stored as StoredRole<Targets>);
  }
  return { root, targets, snapshot, delegated };
}

function answer(job: WorkerJob): WorkerAnswer {
  try {
    const steps = checkingUpdate({
      current: stateOf(job),
      replacedVersions: new Map(job.replacedVersions),
      uploads: new Map(job.uploads),
      now: job.now,
      serverKeyids: job.serverKeyids,
      maxDelegatedRoles: job.maxDelegatedRoles,
      crypto,
    });
    // Off the event loop: nothing to yield to between the steps.
    let step = steps.next();
    while (step.done !== true) step = steps.next();
    return { id: job.id, facts: step.value.facts, uploads: job.uploads };
  } catch (err) {
    if (err instanceof TufaError) return { id: job.id, refusal: errorMessage(err) };
    return { id: job.id, failure: err instanceof Error ? err.message : String(err) };
  }
}

parentPort!.on('message', (job: WorkerJob) => {
  const reply = answer(job);
  // The uploads go back as they came: moved, not copied.
  const buffers = new Set<ArrayBuffer>();
  if ('uploads' in reply) for (const [, bytes] of reply.uploads) buffers.add(bytes.buffer as ArrayBuffer);
  parentPort!.postMessage(reply, [...buffers]);
});
