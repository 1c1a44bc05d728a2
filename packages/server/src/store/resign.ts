/**
 * Freshness: finding collections whose server-signed timestamp (or snapshot) is in the last part
 * of its lifetime, and re-signing them under the collection's lock, checked again with fresh data
 * so that any number of processes make one new version per step.
 */
import { isSnapshotOnline, type Metadata, sha256Of, snapshotMetaForState } from '@tufa/core';
import { transaction } from '../db.js';
import { collectionId, lockCollection } from './collection.js';
import type { OnlineRole } from './keys.js';
import { type PublishContext, signOnline } from './publish.js';
import { loadState } from './state.js';

/**
 * Collections whose latest timestamp or server-held snapshot has entered the re-sign window
 * (the last `fraction` of its lifetime), or expired.
 */
export async function dueForResign(
  ctx: PublishContext,
  options: { fraction: number; limit: number },
): Promise<string[]> {
  const r = await ctx.pool.query<{ gun: string }>(
    // The newest timestamp and snapshot of each collection: one index descent per role.
    `SELECT c.gun FROM collections c
     CROSS JOIN (VALUES ('timestamp'), ('snapshot')) AS r (role)
     JOIN LATERAL (SELECT m.expires, m.created_at, m.server_signed FROM metadata m
                   WHERE m.collection_id = c.id AND m.role = r.role
                   ORDER BY m.version DESC LIMIT 1) latest ON true
     WHERE latest.server_signed AND latest.expires - (latest.expires - latest.created_at) * $2::double precision
           <= to_timestamp($1::double precision / 1000)
     GROUP BY c.gun LIMIT $3`,
    [ctx.now(), options.fraction, options.limit],
  );
  return r.rows.map((row) => row.gun);
}

/**
 * Re-signs a collection's timestamp (and its server-held snapshot) if, under the collection's
 * lock and with fresh data, they are still due. `wait: false` skips a collection another
 * process holds. Returns the roles re-signed.
 */
export async function resign(
  ctx: PublishContext,
  options: { gun: string; fraction: number; wait: boolean },
): Promise<OnlineRole[]> {
  const { gun } = options;
  const result = await transaction(ctx.pool, async (client): Promise<OnlineRole[]> => {
    const id = await collectionId(client, gun);
    if (id === undefined) return [];
    if (options.wait) await lockCollection(client, { gun, create: false, lockTimeout: ctx.lockTimeout });
    else {
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [id]);
      if (!got.rows[0]!.ok) return [];
    }
    const now = ctx.now();
    const { state, timestamp } = await loadState(client, { id, documents: ctx.documents });
    if (state.root === undefined || state.targets === undefined || timestamp === undefined) return [];
    const due = (md: Metadata, createdAt: number) =>
      md.signed.expiresAt - (md.signed.expiresAt - createdAt) * options.fraction <= now;
    const created = await client.query<{ role: string; created: string }>(
      `SELECT r.role, (extract(epoch FROM l.created_at) * 1000)::text AS created
       FROM (VALUES ('timestamp'), ('snapshot')) AS r (role)
       JOIN LATERAL (SELECT created_at FROM metadata WHERE collection_id = $1 AND role = r.role
                     ORDER BY version DESC LIMIT 1) l ON true`,
      [id],
    );
    const createdAt = new Map(created.rows.map((row) => [row.role, Number(row.created)]));
    const root = state.root.metadata.signed;
    const serverSnapshotKeys = await client.query<{ keyid: string }>(
      "SELECT keyid FROM online_keys WHERE collection_id = $1 AND role = 'snapshot'",
      [id],
    );
    // Core's rule, the one CollectionUpdate applies to every upload: the server signs snapshot for this root.
    const snapshotOnline = isSnapshotOnline(
      root,
      serverSnapshotKeys.rows.map((row) => row.keyid),
    );
    const snapshotDue =
      snapshotOnline &&
      state.snapshot !== undefined &&
      due(state.snapshot.metadata, createdAt.get('snapshot') ?? now);
    const timestampDue = snapshotDue || due(timestamp.metadata, createdAt.get('timestamp') ?? now);
    if (!timestampDue) return [];
    const { snapshot } = state;
    await signOnline(ctx, {
      client,
      id,
      onlineKeyids: { timestamp: root.roles.timestamp.keyids, snapshot: root.roles.snapshot.keyids },
      snapshotOnline,
      resignSnapshot: snapshotDue,
      snapshotMeta: () =>
        snapshotMetaForState(ctx.crypto, { targets: state.targets!, delegated: state.delegated }),
      currentSnapshot: snapshot && {
        bytes: snapshot.bytes,
        version: snapshot.metadata.signed.version,
        sha256: () => sha256Of(ctx.crypto, snapshot),
      },
      currentTimestampVersion: timestamp.metadata.signed.version,
      now,
    });
    return snapshotDue ? ['snapshot', 'timestamp'] : ['timestamp'];
  });
  // This process's own readers must not wait for the NOTIFY to come back.
  ctx.cache?.invalidate(gun);
  return result;
}
