/**
 * Stored documents kept parsed in memory for validating updates. Parsing and hashing are pure
 * functions of the bytes: a document read or written once is never parsed again while it is held,
 * and a parsed one knows its own digest (core's SignedEnvelope: hashed at most once).
 */
import { createHash } from 'node:crypto';
import type { StoredRole } from '@tufa/core';

/** Bytes of stored documents kept parsed (parsed, several times that). */
export const STORED_DOCUMENTS_BYTES = 8 * 1024 * 1024;

/** The roles every update reads parsed, beside the delegated roles that delegate. */
export const TOP_LEVEL_ROLES: ReadonlySet<string> = new Set(['root', 'targets', 'snapshot', 'timestamp']);

/** Whether a stored document is worth keeping parsed: one that every update of its collection parses. */
export function keptParsed(role: string, delegates: boolean): boolean {
  return TOP_LEVEL_ROLES.has(role) || delegates;
}

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Entry {
  readonly collectionId: string;
  readonly role: string;
  readonly sha256: string;
  readonly stored: StoredRole;
}

/**
 * The latest document of each role of a collection, by collection id, role and the sha256 of its
 * bytes. A new version of a role replaces the older one of that collection; past the byte budget
 * other collections' documents go first (oldest first), never the one being written: a large
 * collection publishing again finds its state parsed. A lookup and a replacement are O(1); an
 * eviction steps over at most the writing collection's own documents.
 */
export class DocumentCache {
  /** Every document, oldest first (a Map keeps insertion order). */
  private readonly order = new Map<string, Entry>();
  /** The same entries by collection, then role: no scan to find a role's older version. */
  private readonly byCollection = new Map<string, Map<string, Entry>>();
  private size = 0;

  constructor(private readonly maxBytes = STORED_DOCUMENTS_BYTES) {}

  /** The parsed document of a collection's role whose bytes have this sha256, if held. */
  get(collectionId: string, role: string, sha256: string): StoredRole | undefined {
    const entry = this.byCollection.get(collectionId)?.get(role);
    return entry?.sha256 === sha256 ? entry.stored : undefined;
  }

  /** Holds a stored document (and its digest); an older version of that role goes. */
  remember(collectionId: string, role: string, sha256: string, stored: StoredRole): void {
    const old = this.byCollection.get(collectionId)?.get(role);
    if (old?.sha256 === sha256) return;
    if (old !== undefined) this.drop(old);
    let roles = this.byCollection.get(collectionId);
    if (roles === undefined) {
      roles = new Map();
      this.byCollection.set(collectionId, roles);
    }
    const entry: Entry = { collectionId, role, sha256, stored };
    roles.set(role, entry);
    this.order.set(orderKey(collectionId, role), entry);
    this.size += stored.bytes.length;
    for (const other of this.order.values()) {
      if (this.size <= this.maxBytes) break;
      if (other.collectionId !== collectionId) this.drop(other);
    }
  }

  /** What is held: documents, their bytes and the collections they belong to. */
  get stats(): { documents: number; bytes: number; collections: number } {
    return { documents: this.order.size, bytes: this.size, collections: this.byCollection.size };
  }

  private drop(entry: Entry): void {
    this.order.delete(orderKey(entry.collectionId, entry.role));
    const roles = this.byCollection.get(entry.collectionId)!;
    roles.delete(entry.role);
    if (roles.size === 0) this.byCollection.delete(entry.collectionId);
    this.size -= entry.stored.bytes.length;
  }
}

function orderKey(collectionId: string, role: string): string {
  return `${collectionId}\u0000${role}`;
}
