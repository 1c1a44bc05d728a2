/**
 * The verification worker's thread (verifier.ts starts it): builds the collection's state as the
 * event loop's check loads it (store/state.ts, store/stored-roles.ts: documents for what delegates, entries for every
 * other role), checks one update at a time with the same function (update-check.ts), asks the
 * event loop for stored documents the steps request, and answers with the facts or the refusal,
 * never with the parsed documents.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import {
  parseSignedEnvelope,
  type Root,
  type Snapshot,
  type StoredRole,
  type StoredRoleEntry,
  type Targets,
  TufaError,
} from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { IndexedEntries, running, SnapshotEntries, StoredRoles } from './store/stored-roles.js';
import { checkingUpdate, errorMessage, withCurrentVersions } from './update-check.js';
import type {
  CheckOutcome,
  EntryColumns,
  StoredBytes,
  ToWorker,
  WorkerAnswer,
  WorkerAsk,
  WorkerJob,
  WorkerReply,
} from './verifier.js';

const crypto = createNodeCrypto();

function parsed(rows: readonly StoredBytes[]): Map<string, StoredRole> {
  const out = new Map<string, StoredRole>();
  for (const row of rows) {
    const type = (['root', 'snapshot', 'timestamp'] as const).find((t) => t === row.role) ?? 'targets';
    // A snapshot in the server's shape by one scan, as the event loop reads it (state.ts).
    const options = { role: row.role, sha256: row.sha256, snapshotOnDemand: true };
    out.set(row.role, parseSignedEnvelope(type, row.bytes, options));
  }
  return out;
}

function entriesOf(columns: EntryColumns): Map<string, StoredRoleEntry> {
  const out = new Map<string, StoredRoleEntry>();
  for (let i = 0; i < columns.names.length; i++) {
    out.set(columns.names[i]!, {
      version: columns.versions[i]!,
      length: columns.lengths[i]!,
      sha256: columns.sha256s[i]!,
    });
  }
  return out;
}

/** The replies the event loop sends to this thread's asks, by job. */
const replies = new Map<number, (reply: WorkerReply) => void>();

function asking(id: number, ask: WorkerAsk): Promise<WorkerReply> {
  return new Promise((resolve) => {
    replies.set(id, resolve);
    parentPort!.postMessage({ id, ask } satisfies WorkerAnswer);
  });
}

async function answer(job: WorkerJob): Promise<CheckOutcome> {
  let versions: () => Record<string, number> = () => ({ ...job.versions });
  try {
    const documents = parsed(job.parsed);
    const snapshot = documents.get('snapshot') as StoredRole<Snapshot> | undefined;
    let delegating = job.delegating;
    let entries: ReadonlyMap<string, StoredRoleEntry> | undefined =
      job.entries === undefined ? undefined : entriesOf(job.entries);
    if (entries === undefined && snapshot !== undefined) {
      const fromSnapshot = IndexedEntries.of(snapshot) ?? SnapshotEntries.of(snapshot.metadata.signed);
      if (fromSnapshot !== undefined) {
        entries = fromSnapshot;
        versions = () => {
          const out = { ...job.versions };
          fromSnapshot.versionsInto(out);
          return out;
        };
      }
    }
    if (entries === undefined) {
      // A server-signed snapshot without every entry the server writes: every role's row instead.
      const reply = await asking(job.id, { everyRow: true });
      for (const [role, stored] of parsed(reply.documents)) documents.set(role, stored);
      entries = entriesOf(reply.entries!);
      delegating = reply.delegating!;
      const all = reply.versions!;
      versions = () => ({ ...all });
    }
    const roles = new StoredRoles(entries, async (rows) => {
      const reply = await asking(job.id, { load: rows });
      return parsed(reply.documents);
    });
    for (const name of delegating) {
      const stored = documents.get(name);
      // A delegating role the update replaces is not sent: the update carries its new document.
      if (stored !== undefined) roles.delegators.set(name, stored as StoredRole<Targets>);
    }
    const steps = checkingUpdate({
      current: {
        root: documents.get('root') as StoredRole<Root> | undefined,
        targets: documents.get('targets') as StoredRole<Targets> | undefined,
        snapshot,
        delegated: roles,
      },
      replacedVersions: new Map(job.replacedVersions),
      uploads: new Map(job.uploads),
      now: job.now,
      serverKeyids: job.serverKeyids,
      maxDelegatedRoles: job.maxDelegatedRoles,
      maxHashBins: job.maxHashBins,
      crypto,
    });
    const facts = await running(steps, roles);
    return { id: job.id, facts, uploads: job.uploads };
  } catch (caught) {
    const err = withCurrentVersions(caught, versions);
    if (err instanceof TufaError) return { id: job.id, refusal: errorMessage(err) };
    return { id: job.id, failure: err instanceof Error ? err.message : String(err) };
  }
}

parentPort!.on('message', (message: ToWorker) => {
  if ('reply' in message) {
    replies.get(message.id)?.(message.reply);
    replies.delete(message.id);
    return;
  }
  void answer(message).then((reply) => {
    // The uploads go back as they came: moved, not copied.
    const buffers = new Set<ArrayBuffer>();
    if ('uploads' in reply) for (const [, bytes] of reply.uploads) buffers.add(bytes.buffer as ArrayBuffer);
    // What this thread holds after the check: the verifier keeps an idle worker only while it is small.
    const answered: WorkerAnswer = { ...reply, heap: getHeapStatistics().total_heap_size };
    parentPort!.postMessage(answered, [...buffers]);
  });
});
