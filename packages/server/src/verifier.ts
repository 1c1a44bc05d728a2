/**
 * Large updates are parsed and checked off the event loop (ADR 0013). Parsing a targets document
 * of tens of megabytes builds a graph of objects in one synchronous call that cannot yield: on the
 * event loop it stalls every read for a second and holds hundreds of megabytes per concurrent
 * upload. Past a size, the check runs in one worker thread, one update at a time, with a bounded
 * heap and a bounded queue; it answers with the facts the store needs (update-check.ts), never
 * the parsed documents. Small updates stay on the event loop, checked in steps.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type BodyHold, HttpStatusError } from './http.js';
import { type ErrorMessage, errorFromMessage, type UpdateFacts } from './update-check.js';

export interface VerifierOptions {
  /** Updates with more bytes to parse than this (uploads and the stored documents read) go to the worker. */
  readonly threshold: number;
  /** The worker's heap, MiB: an update whose check needs more is refused (TOO_LARGE). */
  readonly memoryMb: number;
  /** Updates that may wait for the worker beyond the one it checks; more are refused 503. */
  readonly queue: number;
  /**
   * Update bodies larger than `threshold` held at once, read or checked (default 1): one more is
   * refused 503 as it passes the threshold, before the rest of it is read.
   */
  readonly largeBodies?: number;
  /**
   * How long the worker stays once no update waits, ms (default 10 s; 0: it stops at once). A check
   * that finds it running skips its start: a thread, an isolate, the modules and a cold JIT, about
   * 120 ms of CPU (a 10,000-target publish: 150 ms of CPU with a start, 30 ms without; ADR 0017).
   */
  readonly idleMs?: number;
  /**
   * The worker stays idle only while its heap after the last check is at most this, MiB (default
   * 24; a 10,000-target targets leaves 19): after a check that grew it beyond (100,000 targets: 38;
   * an update of a few hundred hash bins: 31), it stops at once and that memory goes back (V8
   * keeps a grown heap while the thread lives).
   */
  readonly idleHeapMb?: number;
}

const IDLE_HEAP_MB = 24;

export const DEFAULT_VERIFIER: VerifierOptions = Object.freeze({
  threshold: 1024 * 1024,
  memoryMb: 512,
  queue: 4,
  largeBodies: 1,
  idleMs: 10_000,
  idleHeapMb: IDLE_HEAP_MB,
});

/** A stored document's bytes, for the worker to parse. */
export interface StoredBytes {
  readonly role: string;
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

/** Every stored delegated role's entry, column by column (one array each, not an object per role). */
export interface EntryColumns {
  readonly names: readonly string[];
  readonly versions: readonly number[];
  readonly lengths: readonly number[];
  readonly sha256s: readonly string[];
}

/**
 * One update for the worker: its uploads and the collection's state as the event loop's check
 * loads it (store/state.ts), the rest of the check. No bin's document is sent unless asked for.
 */
export interface WorkerJob {
  readonly id: number;
  readonly uploads: readonly (readonly [string, Uint8Array])[];
  /** Root, targets, snapshot and the stored roles that delegate, less the ones the update replaces. */
  readonly parsed: readonly StoredBytes[];
  /** The stored roles that delegate, in the rows' order (a replaced one too: the update carries it). */
  readonly delegating: readonly string[];
  /**
   * Every stored delegated role's entry when the latest snapshot is not the server's; otherwise
   * the worker takes them from that snapshot (and asks for these when it cannot).
   */
  readonly entries: EntryColumns | undefined;
  /** Every role's latest version, when `entries` are given: a ROLLBACK names them. */
  readonly versions: Readonly<Record<string, number>>;
  /** The stored versions of targets and snapshot when the update replaces them (documents not sent). */
  readonly replacedVersions: readonly (readonly [string, number])[];
  readonly now: number;
  readonly serverKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  readonly maxDelegatedRoles: number;
  readonly maxHashBins: number;
}

/**
 * What the worker asks of the event loop during a check: the stored documents of these roles
 * (core's RoleRequest), or every role's entry (a server-signed snapshot lacking one).
 */
export type WorkerAsk =
  | { readonly load: readonly { readonly role: string; readonly version: number }[] }
  | { readonly everyRow: true };

/** The event loop's reply to a WorkerAsk. */
export interface WorkerReply {
  /** The documents asked for (for `everyRow`: those of the roles that may delegate, not yet sent). */
  readonly documents: readonly StoredBytes[];
  readonly entries?: EntryColumns;
  readonly delegating?: readonly string[];
  readonly versions?: Readonly<Record<string, number>>;
}

/** Main thread to worker: a job, or the reply to its ask. */
export type ToWorker = WorkerJob | { readonly id: number; readonly reply: WorkerReply };

/** How a check ended. */
export type CheckOutcome =
  | {
      readonly id: number;
      readonly facts: UpdateFacts;
      /** The uploads' bytes, handed back (they were moved to the worker, not copied). */
      readonly uploads: readonly (readonly [string, Uint8Array])[];
    }
  | { readonly id: number; readonly refusal: ErrorMessage }
  | { readonly id: number; readonly failure: string };

/** Worker to main thread: an ask, or a check's outcome with the worker's heap after it (V8's total_heap_size, bytes). */
export type WorkerAnswer =
  | { readonly id: number; readonly ask: WorkerAsk }
  | (CheckOutcome & { readonly heap: number });

/** An accepted update's facts, and its uploads' bytes (the ones given to check() are moved to the worker). */
export interface Checked {
  readonly facts: UpdateFacts;
  readonly uploads: ReadonlyMap<string, Uint8Array>;
}

interface Pending {
  readonly job: WorkerJob;
  readonly ask: (ask: WorkerAsk) => Promise<WorkerReply>;
  readonly done: (checked: Checked) => void;
  readonly fail: (err: Error) => void;
}

const RETRY = { 'Retry-After': '1' };
const YOUNG_MB = 8;

/**
 * The buffers under the uploads, moved to the worker rather than copied (a copy costs the event
 * loop a memcpy and the process the document twice). Only a buffer of its own: one of Node's
 * shared pool (small buffers) would take every other buffer in the pool with it.
 */
function movable(uploads: WorkerJob['uploads']): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const [, bytes] of uploads) {
    const buffer = bytes.buffer;
    if (buffer instanceof ArrayBuffer && buffer.byteLength > Buffer.poolSize) out.add(buffer);
  }
  return [...out];
}

/** The worker's entry: built JavaScript, or (tests and benchmarks on the sources) TypeScript through tsx. */
function startWorker(memoryMb: number): Worker {
  // A small young generation: what a parse makes mostly lives on (the document), copying it costs memory.
  const resourceLimits = { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: YOUNG_MB };
  if (import.meta.url.endsWith('.js')) {
    return new Worker(new URL('./verify-worker.js', import.meta.url), { resourceLimits });
  }
  const entry = JSON.stringify(new URL('./verify-worker.ts', import.meta.url).href);
  // tsx's ESM API, found from this file (not from the working directory the process runs in).
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsx = JSON.stringify(pathToFileURL(join(dirname(tsxPackage), 'dist/esm/api/index.mjs')).href);
  return new Worker(`import(${tsx}).then(({ register }) => { register(); return import(${entry}); })`, {
    eval: true,
    execArgv: ['--conditions=tufa-source'],
    resourceLimits,
  });
}

/**
 * One worker thread checking one update at a time, started on first use and stopped when idle.
 * A worker that runs out of memory or stops refuses its update cleanly (413, 503) and the next
 * update gets a new one.
 */
export class UpdateVerifier {
  private worker: Worker | undefined;
  /** The update being checked, and the worker checking it. */
  private running: { pending: Pending; worker: Worker } | undefined;
  private readonly waiting: Pending[] = [];
  private nextId = 1;
  /** Requests holding a large update body (holdBody). */
  private largeBodies = 0;
  private idle: NodeJS.Timeout | undefined;
  /** The worker's heap after its last check, bytes. */
  private heap = 0;

  constructor(readonly options: VerifierOptions = DEFAULT_VERIFIER) {}

  /**
   * `hold` (a request's share of the body budget), also counting the request among the large
   * update bodies once it passes the threshold: the body a large update is checked from is held
   * by at most `largeBodies` requests at once (the worker checks one at a time anyway). Past
   * that, 503 `NETWORK` with Retry-After, the rest of the body unread (the connection closes).
   * Its `release` gives back the count only (the request releases `hold` when it answers).
   */
  holdBody(hold: BodyHold): BodyHold {
    let size = 0;
    let counted = false;
    let released = false;
    return {
      take: (bytes) => {
        if (released) return;
        size += bytes;
        if (!counted && size > this.options.threshold) {
          const limit = this.options.largeBodies ?? 1;
          if (this.largeBodies >= limit) {
            throw new HttpStatusError(
              503,
              'NETWORK',
              `the server is taking as many large updates as it may (${limit}): retry shortly`,
              { largeUpdates: limit },
              { ...RETRY, Connection: 'close' },
            );
          }
          this.largeBodies++;
          counted = true;
        }
        hold.take(bytes);
      },
      // Only the count: the budget's share stays the request's until its answer is written.
      release: () => {
        if (released) return;
        released = true;
        if (counted) this.largeBodies--;
      },
    };
  }

  /** Whether an update with this many bytes to parse is checked in the worker. */
  inWorker(bytes: number): boolean {
    return bytes > this.options.threshold;
  }

  /** The running worker's thread id (undefined: none runs). */
  get workerThread(): number | undefined {
    return this.worker?.threadId;
  }

  /** Updates in the worker or waiting for it. */
  get load(): number {
    return this.waiting.length + (this.running === undefined ? 0 : 1);
  }

  /**
   * The facts of an accepted update, or its refusal, exactly as the event loop's check gives them.
   * The uploads' own buffers move to the worker: use the bytes handed back, not the ones given.
   */
  check(job: Omit<WorkerJob, 'id'>, ask: (ask: WorkerAsk) => Promise<WorkerReply>): Promise<Checked> {
    if (this.running !== undefined && this.waiting.length >= this.options.queue) {
      return Promise.reject(
        new HttpStatusError(
          503,
          'NETWORK',
          `the server is checking as many large updates as it may (${this.options.queue + 1}): retry shortly`,
          { queue: this.options.queue + 1 },
          RETRY,
        ),
      );
    }
    return new Promise((done, fail) => {
      this.waiting.push({ job: { ...job, id: this.nextId++ }, ask, done, fail });
      this.next();
    });
  }

  /** Stops the worker; the update it was checking is refused 503, the next one gets a new worker. */
  async close(): Promise<void> {
    clearTimeout(this.idle);
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  private next(): void {
    if (this.running !== undefined) return;
    const pending = this.waiting.shift();
    if (pending === undefined) {
      const idleMs = this.options.idleMs ?? 0;
      if (idleMs === 0 || this.heap > (this.options.idleHeapMb ?? IDLE_HEAP_MB) * 1024 * 1024) {
        void this.close();
        return;
      }
      clearTimeout(this.idle);
      this.idle = setTimeout(() => void this.close(), idleMs);
      this.idle.unref();
      return;
    }
    clearTimeout(this.idle);
    const worker = this.ensureWorker();
    this.running = { pending, worker };
    worker.postMessage(pending.job, movable(pending.job.uploads));
  }

  private ensureWorker(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = startWorker(this.options.memoryMb);
    // Never what keeps the process alive: an update in flight has its request waiting for it.
    worker.unref();
    let failure: Error | undefined;
    worker.on('message', (answer: WorkerAnswer) => {
      if (this.running?.worker !== worker || this.running.pending.job.id !== answer.id) return;
      const { pending } = this.running;
      if ('ask' in answer) {
        // Answered while this check still runs: a reply to a stopped worker goes nowhere.
        pending.ask(answer.ask).then(
          (reply) => {
            if (this.running?.pending === pending)
              worker.postMessage({ id: answer.id, reply } satisfies ToWorker);
          },
          (err: unknown) => {
            if (this.running?.pending !== pending) return;
            this.running = undefined;
            pending.fail(err instanceof Error ? err : new Error(String(err)));
            // The worker waits for this reply: a new one for the next update.
            void this.close().then(() => this.next());
          },
        );
        return;
      }
      this.running = undefined;
      this.heap = answer.heap;
      if ('facts' in answer) pending.done({ facts: answer.facts, uploads: new Map(answer.uploads) });
      else if ('refusal' in answer) pending.fail(errorFromMessage(answer.refusal));
      else pending.fail(new Error(`the verification worker failed: ${answer.failure}`));
      this.next();
    });
    worker.on('error', (err: Error & { code?: string }) => {
      failure =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new HttpStatusError(
              413,
              'TOO_LARGE',
              `checking this update needs more memory than this server gives one update (${this.options.memoryMb} MiB)`,
              { limit: this.options.memoryMb * 1024 * 1024 },
            )
          : undefined;
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      if (this.running?.worker !== worker) return;
      const { pending } = this.running;
      this.running = undefined;
      pending.fail(
        failure ??
          new HttpStatusError(
            503,
            'NETWORK',
            'the verification worker stopped while checking this update: retry shortly',
            {},
            RETRY,
          ),
      );
      this.next();
    });
    this.worker = worker;
    return worker;
  }
}
