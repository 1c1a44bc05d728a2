/**
 * Served metadata kept in memory: every GET of timestamp.json or targets.json would otherwise be
 * a database round trip carrying the whole document. Correct across many server processes on one
 * database: every transaction that writes metadata (publish, re-sign, delete) sends
 * `NOTIFY tufa_metadata, 'GUN'`, delivered at commit; each process LISTENs and drops that GUN.
 *
 * A read that raced a commit never poisons the cache: each GUN has a generation, taken before the
 * query and compared before storing. While the LISTEN connection is down, the cache is off.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

export const NOTIFY_CHANNEL = 'tufa_metadata';

export interface CachedFile {
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly version: number;
  /** ms since the epoch; the timestamp's expiry decides whether a GET re-signs first. */
  readonly expiresAt: number;
}

export class MetadataCache {
  private readonly entries = new Map<string, Entry>();
  /** The keys of `entries` by GUN: dropping a GUN touches its own files only. */
  private readonly byGun = new Map<string, Set<string>>();
  private readonly generations = new Map<string, number>();
  /** Bumped whenever the whole cache is dropped (connection lost): older reads must not store. */
  private epoch = 0;
  private size = 0;
  private listener: pg.Client | undefined;
  private active = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(
    private readonly connect: () => pg.Client,
    private readonly logger: Logger | undefined,
    /** Bytes of documents held at most (default 64 MiB); the oldest go first. */
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  /** Starts listening; resolves once the cache is on (or failed to start, and stays off). */
  async start(): Promise<void> {
    if (this.stopped) return;
    const client = this.connect();
    client.on('notification', (msg) => {
      if (msg.channel === NOTIFY_CHANNEL && msg.payload !== undefined) this.invalidate(msg.payload);
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      this.listener = client;
      this.active = true;
      if (this.warned) this.logger?.info('metadata cache on again');
      this.warned = false;
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.listener !== undefined && this.listener !== client) return;
    const wasActive = this.active;
    this.active = false;
    this.listener = undefined;
    this.clear();
    client.end().catch(() => {});
    if (this.stopped) return;
    // Said once when the cache goes off (or cannot start), not at every retry.
    if (wasActive || !this.warned) {
      this.warned = true;
      this.logger?.warn(
        { err: err.message },
        'metadata cache off (no LISTEN connection): serving from the database; retrying',
      );
    }
    this.retry ??= setTimeout(() => {
      this.retry = undefined;
      void this.start();
    }, 1000);
    this.retry.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.active = false;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.clear();
    const client = this.listener;
    this.listener = undefined;
    await client?.end().catch(() => {});
  }

  /** The GUN's generation: read before a query, handed back to `set`. */
  generation(gun: string): string {
    return `${this.epoch}/${this.generations.get(gun) ?? 0}`;
  }

  get(gun: string, role: string, version?: number): CachedFile | undefined {
    if (!this.active) return undefined;
    const hit = this.entries.get(cacheKey(gun, role, version));
    // A hit only marks the entry (the map is not reordered on the hot path): see evict.
    if (hit !== undefined) hit.referenced = true;
    return hit?.file;
  }

  set(gun: string, role: string, version: number | undefined, file: CachedFile, generation: string): void {
    if (!this.active || this.generation(gun) !== generation || file.bytes.length > this.maxBytes / 4) return;
    const key = cacheKey(gun, role, version);
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.size -= old.file.bytes.length;
      this.entries.delete(key);
    }
    this.entries.set(key, { gun, file, referenced: false });
    let keys = this.byGun.get(gun);
    if (keys === undefined) {
      keys = new Set();
      this.byGun.set(gun, keys);
    }
    keys.add(key);
    this.size += file.bytes.length;
    this.evict();
  }

  /**
   * Second chance (CLOCK) over the map's insertion order, O(1) per step: the oldest entry goes,
   * unless it was read since it last came round, in which case it moves to the back unmarked.
   * Each entry moves at most once before the oldest unmarked one is found.
   */
  private evict(): void {
    while (this.size > this.maxBytes) {
      const first = this.entries.entries().next();
      if (first.done === true) return;
      const [k, v] = first.value;
      this.entries.delete(k);
      if (v.referenced) {
        v.referenced = false;
        this.entries.set(k, v);
      } else {
        this.size -= v.file.bytes.length;
        this.unindex(v.gun, k);
      }
    }
  }

  /** Drops everything cached for a GUN (its latest and its versioned files): O(its files). */
  invalidate(gun: string): void {
    this.generations.set(gun, (this.generations.get(gun) ?? 0) + 1);
    const keys = this.byGun.get(gun);
    if (keys === undefined) return;
    this.byGun.delete(gun);
    for (const k of keys) {
      this.size -= this.entries.get(k)!.file.bytes.length;
      this.entries.delete(k);
    }
  }

  clear(): void {
    this.epoch++;
    this.generations.clear();
    this.entries.clear();
    this.byGun.clear();
    this.size = 0;
  }

  /** What is held: files, their bytes and the GUNs they belong to. */
  get stats(): { files: number; bytes: number; guns: number } {
    return { files: this.entries.size, bytes: this.size, guns: this.byGun.size };
  }

  private unindex(gun: string, key: string): void {
    const keys = this.byGun.get(gun)!;
    keys.delete(key);
    if (keys.size === 0) this.byGun.delete(gun);
  }

  get enabled(): boolean {
    return this.active;
  }
}

interface Entry {
  readonly gun: string;
  readonly file: CachedFile;
  /** Read since the eviction hand last passed it. */
  referenced: boolean;
}

function cacheKey(gun: string, role: string, version: number | undefined): string {
  return `${gun}\u0000${role}\u0000${version ?? 'latest'}`;
}
