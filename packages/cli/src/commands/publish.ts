/** `tufa publish | renew | status`. */
import {
  allDelegatedRoles,
  bumpVersion,
  DEFAULT_EXPIRY,
  expiresIn,
  isTufaError,
  type Metadata,
  type Root,
  type Signed,
  serializeMetadata,
  type TargetFile,
  TufaError,
} from '@tufa/core';
import type { Context } from '../context.js';
import { EXIT, oneLine, printable } from '../output.js';
import {
  type CollectionView,
  holdsSnapshotKey,
  localSnapshot,
  nextTargets,
  openCollection,
  type PartialSigning,
  parseLifetime,
  prefetchSigners,
  publishWithRetry,
  signRole,
} from '../publishing.js';
import { applyChanges, changedRoles, isTargetChange } from '../staging.js';
import { pendingLines } from './pending.js';
import { roleForTag, staging, targetDigest } from './stage.js';

/** Signs the next version of each role and, when the snapshot key is here, a snapshot too. */
async function buildRoles(
  ctx: Context,
  view: CollectionView,
  roles: readonly string[],
  change: (role: string, signed: Signed) => Signed,
  now: number,
  lifetime?: number,
  partial?: PartialSigning,
): Promise<Map<string, Uint8Array>> {
  const documents = new Map<string, Uint8Array>();
  const versions = new Map<string, number>();
  for (const name of roles) {
    const role = await view.role(name);
    const next = nextTargets(role, (t) => change(name, t) as typeof t, now, lifetime);
    documents.set(name, serializeMetadata(await signRole(ctx, name, next, role, partial)));
    versions.set(name, next.version);
  }
  // A pending update never carries snapshot: the server signs it once the update is published.
  if (partial !== undefined && partial.incomplete.length > 0) return documents;
  if (await holdsSnapshotKey(ctx, view.root.signed)) {
    documents.set('snapshot', await localSnapshot(ctx, view, documents, versions, now));
  }
  return documents;
}

export async function publish(
  ctx: Context,
  gun: string,
  options: { expires?: string; pendingExpires?: string } = {},
): Promise<void> {
  const lifetime = options.expires === undefined ? undefined : parseLifetime(options.expires);
  const pendingExpiresIn =
    options.pendingExpires === undefined ? undefined : parseLifetime(options.pendingExpires) / 1000;
  const stage = staging(ctx);
  const staged = await stage.list(gun);
  if (staged.length === 0) {
    ctx.out.result({ gun, published: false, versions: {} }, `${gun}: nothing staged to publish`);
    return;
  }
  const now = Date.now();
  const stagedRoles = changedRoles(staged);
  // Key decryption (about 0.1 s of scrypt) overlaps the download of the trusted state.
  prefetchSigners(ctx, gun, [
    ...(stagedRoles.includes('targets') ? (['targets'] as const) : []),
    ...(stagedRoles.some((r) => r !== 'targets') ? (['delegation'] as const) : []),
    'snapshot',
  ]);
  const result = await publishWithRetry(
    ctx,
    gun,
    (view, partial) => {
      // Staged without the trusted state at hand (offline), a tag of a binned collection goes to its bin now.
      const targets = view.set.targets?.signed;
      const changes = staged.map((c) =>
        isTargetChange(c) ? { ...c, role: roleForTag(targets, c.role, c.path) } : c,
      );
      return buildRoles(
        ctx,
        view,
        changedRoles(changes),
        (role, signed) => applyChanges(role, signed as never, changes),
        now,
        lifetime,
        partial,
      );
    },
    { allowPending: true, ...(pendingExpiresIn === undefined ? {} : { pendingExpiresIn }) },
  );
  await stage.reset(gun);
  if (result.pending !== undefined && !result.pending.published) {
    const pending = result.pending;
    ctx.out.result(
      {
        gun,
        published: false,
        pending: { id: pending.id, needed: pending.status.needed, status: pending.status },
      },
      [
        `${gun}: not enough keys here to publish; uploaded as pending update ${pending.id.slice(0, 12)}`,
        ...pendingLines(pending.status),
        `co-signers review and sign it with: tufa sign ${gun} ${pending.status.roles[0]?.role ?? 'targets'}`,
      ],
    );
    return;
  }
  ctx.out.result(
    { gun, published: true, versions: result.versions, retried: result.retried, changes: staged.length },
    `published ${gun}: ${Object.entries(result.versions)
      .map(([r, v]) => `${r} v${v}`)
      .join(', ')}`,
  );
}

/** Re-signs a role with a fresh expiry; works on a role that has already expired. */
export async function renew(
  ctx: Context,
  gun: string,
  options: { role?: string; expires?: string },
): Promise<void> {
  const role = options.role ?? 'targets';
  const lifetime = options.expires === undefined ? undefined : parseLifetime(options.expires);
  const now = Date.now();
  const result = await publishWithRetry(
    ctx,
    gun,
    async (view) => {
      if (role === 'root') return renewRoot(ctx, view, now);
      if (role === 'snapshot') {
        if (!(await holdsSnapshotKey(ctx, view.root.signed))) {
          throw new TufaError(
            'INVALID_ARGUMENT',
            'the server holds the snapshot key and renews snapshot itself',
          );
        }
        return new Map([['snapshot', await localSnapshot(ctx, view, new Map(), new Map(), now)]]);
      }
      if (role === 'timestamp') {
        throw new TufaError(
          'INVALID_ARGUMENT',
          'the server holds the timestamp key and renews timestamp itself',
        );
      }
      const current = await view.role(role);
      if (current.current === undefined) {
        throw new TufaError('NOT_FOUND', `${role}: nothing published yet, nothing to renew`, { role });
      }
      return buildRoles(ctx, view, [role], (_r, signed) => signed, now, lifetime);
    },
    { expiredOk: true },
  );
  ctx.out.result(
    { gun, renewed: role, versions: result.versions },
    `renewed ${role} of ${gun}: ${Object.entries(result.versions)
      .map(([r, v]) => `${r} v${v}`)
      .join(', ')}`,
  );
}

/** Root N+1 with a fresh expiry, signed by the root keys held here. */
async function renewRoot(ctx: Context, view: CollectionView, now: number): Promise<Map<string, Uint8Array>> {
  const root: Root = bumpVersion(view.root.signed, expiresIn(now, DEFAULT_EXPIRY.root));
  const signed = await signRole(ctx, 'root', root, view.root.signed.roles.root);
  return new Map([['root', serializeMetadata(signed)]]);
}

const DAY = 24 * 3600 * 1000;

/** How a role stands: `expiring` within the warning window, `unreadable` when it does not verify. */
export type RoleState = 'ok' | 'expiring' | 'expired' | 'unreadable';

interface RoleStatus {
  role: string;
  version: number;
  expires: string;
  state: RoleState;
  message: string;
  /** The server re-signs it (timestamp, and snapshot when the server holds its key). */
  resignedByServer: boolean;
}

/**
 * Staged changes with their digests (old → new), and how every role stands. Exits 1 (a cron job
 * alerts on it) when a role has expired, expires within the window (default 30 days) or does not
 * verify; roles the server re-signs count only once expired.
 */
export async function status(ctx: Context, gun: string, options: { within?: string } = {}): Promise<void> {
  const window = options.within === undefined ? 30 * DAY : parseLifetime(options.within);
  const changes = await staging(ctx).list(gun);
  const view = await openCollection(ctx, gun, true);
  const now = Date.now();
  const roles: RoleStatus[] = [];
  const add = (role: string, md: Metadata | undefined, resignedByServer = false) => {
    if (md === undefined) return;
    const left = md.signed.expiresAt - now;
    const hours = Math.ceil(left / 3_600_000);
    const days = Math.round(left / DAY);
    const when =
      left < DAY
        ? `expires in ${hours} hour${hours === 1 ? '' : 's'}`
        : `expires in ${days} day${days === 1 ? '' : 's'}`;
    const [state, message]: [RoleState, string] =
      left <= 0
        ? ['expired', `expired at ${md.signed.expires}`]
        : resignedByServer
          ? ['ok', 're-signed by the server']
          : [left <= window ? 'expiring' : 'ok', when];
    roles.push({
      role,
      version: md.signed.version,
      expires: md.signed.expires,
      state,
      message,
      resignedByServer,
    });
  };
  add('root', view.set.root);
  add('targets', view.set.targets);
  add('snapshot', view.set.snapshot, !(await holdsSnapshotKey(ctx, view.root.signed)));
  add('timestamp', view.set.timestamp, true);
  for (const d of allDelegatedRoles(view.set.targets?.signed.delegations)) {
    try {
      add(d.name, (await view.role(d.name)).current);
    } catch (err) {
      roles.push({
        role: d.name,
        version: 0,
        expires: '-',
        state: 'unreadable',
        message: isTufaError(err) ? `${err.code}: ${err.message}` : 'does not verify',
        resignedByServer: false,
      });
    }
  }
  const staged = [];
  for (const c of changes) {
    if (c.op !== 'add' && c.op !== 'remove') {
      staged.push({ op: c.op, role: c.role, name: c.name });
      continue;
    }
    let published: TargetFile | undefined;
    try {
      const targets = (await view.role(c.role)).current?.signed.targets ?? {};
      published = Object.hasOwn(targets, c.path) ? targets[c.path] : undefined;
    } catch (err) {
      // Delegated only by a staged change, or unreadable (reported with the roles below).
      if (!isTufaError(err)) throw err;
    }
    staged.push({
      op: c.op,
      role: c.role,
      path: c.path,
      previous:
        published === undefined ? null : { digest: targetDigest(published), length: published.length },
      ...(c.op === 'add' ? { digest: targetDigest(c.target), length: c.target.length } : {}),
    });
  }
  const warnings = roles.filter((r) => r.state !== 'ok');
  ctx.out.result(
    {
      gun,
      staged,
      roles,
      warnings: warnings.map((w) => `${w.role}: ${w.state === 'expired' ? 'EXPIRED' : w.message}`),
    },
    [
      `${gun}`,
      changes.length === 0 ? 'no staged changes' : `staged changes (${changes.length}):`,
      ...staged.map((c) => {
        if (!('path' in c)) return `  ${c.op} ${printable(c.name)} (${printable(c.role)})`;
        const before = c.previous === null ? '(new)' : c.previous.digest;
        const after = c.op === 'add' ? c.digest : '(removed)';
        return `  ${c.op} ${printable(c.path)} (${printable(c.role)}): ${before} → ${after}`;
      }),
      'roles:',
      ...roles.map(
        (r) =>
          `  ${printable(r.role).padEnd(12)} v${r.version}  expires ${r.expires}  ${r.state}: ${oneLine(r.message)}`,
      ),
      ...warnings.map(
        (w) =>
          `warning: ${printable(w.role)} ${oneLine(w.message)}${w.state === 'unreadable' ? '' : ` — run tufa renew ${gun} --role ${printable(w.role)}`}`,
      ),
    ],
  );
  if (warnings.length > 0) process.exitCode = EXIT.REFUSED;
}
