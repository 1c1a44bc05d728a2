/**
 * Threshold signing from the command line: `tufa pending list | drop` and `tufa sign`. A co-signer
 * never signs what the server says: the pending documents are checked against this home's own
 * trusted state with core's proposal rules, and the summary of what they change is computed here.
 */
import {
  addSignatures,
  type CollectionState,
  checkProposal,
  describeProposal,
  isTufaError,
  mergeSignatures,
  type ProposalStatus,
  proposalDocuments,
  type RoleChanges,
  TOP_LEVEL_ROLES,
  TufaError,
} from '@tufa/core';
import type { Context } from '../context.js';
import { oneLine, printable } from '../output.js';
import { collectionState, localSigners, openCollection } from '../publishing.js';
import {
  addPendingSignatures,
  dropPending,
  getPending,
  listPending,
  type PendingStatus,
  type PendingSummary,
} from '../remote.js';
import { pinRoot, remoteOptions } from '../repo.js';

const short = (id: string) => `${id.slice(0, 12)}…`;

/** One line per threshold: who signed and how many more are needed. */
export function pendingLines(status: PendingStatus | ProposalStatus): string[] {
  const lines: string[] = [];
  for (const role of status.roles) {
    // A role that several delegators name is trusted through any one of them.
    if (role.oneOf) lines.push(`  ${role.role} v${role.version}: one of these thresholds is enough`);
    for (const t of role.thresholds) {
      const who = t.signed.length === 0 ? 'nobody' : t.signed.map(short).join(', ');
      lines.push(
        `  ${printable(role.role)} v${role.version}: ${t.signed.length} of ${t.threshold} signatures by keys of ${t.by} (${who})${t.needed > 0 ? `, ${t.needed} more needed` : ', met'}`,
      );
    }
  }
  return lines;
}

/** What a proposal changes, for people. */
export function changeLines(changes: readonly RoleChanges[]): string[] {
  const lines: string[] = [];
  for (const c of changes) {
    lines.push(`  ${printable(c.role)}: v${c.from ?? '-'} → v${c.to}, expires ${c.expires}`);
    for (const t of c.targets?.added ?? []) lines.push(`    + ${printable(t)}`);
    for (const t of c.targets?.removed ?? []) lines.push(`    - ${printable(t)}`);
    for (const t of c.targets?.changed ?? [])
      lines.push(`    ~ ${printable(t)} (new digest, length or custom data)`);
    for (const d of c.delegations?.added ?? []) lines.push(`    + delegation ${printable(d)}`);
    for (const d of c.delegations?.removed ?? []) lines.push(`    - delegation ${printable(d)}`);
    for (const d of c.delegations?.changed ?? []) lines.push(`    ~ delegation ${printable(d)}`);
    for (const k of c.keys ?? []) {
      const parts = [...k.added.map((id) => `+${short(id)}`), ...k.removed.map((id) => `-${short(id)}`)];
      const threshold =
        k.threshold.from === k.threshold.to ? '' : `threshold ${k.threshold.from ?? '-'} → ${k.threshold.to}`;
      lines.push(`    ${k.role} keys: ${[parts.join(' '), threshold].filter((x) => x !== '').join('; ')}`);
    }
  }
  return lines;
}

/** The pending update of `role` (at `version`, or with an id starting with `id`). */
async function choose(
  ctx: Context,
  gun: string,
  role: string,
  options: { version?: string; id?: string },
  states: readonly PendingSummary['state'][],
): Promise<PendingSummary> {
  const version = options.version === undefined ? undefined : Number(options.version);
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) {
    throw new TufaError('INVALID_ARGUMENT', '--version must be a positive integer', {
      found: options.version,
    });
  }
  if (options.id !== undefined && !/^[0-9a-f]{4,64}$/.test(options.id)) {
    throw new TufaError('INVALID_ARGUMENT', '--id is the start of a pending update id (hex)', {
      found: options.id,
    });
  }
  const all = await listPending(await remoteOptions(ctx), gun);
  const matches = all.filter(
    (p) =>
      states.includes(p.state) &&
      p.roles.some((r) => r.role === role && (version === undefined || r.version === version)) &&
      (options.id === undefined || p.id.startsWith(options.id)),
  );
  if (matches.length === 0) {
    throw new TufaError(
      'NOT_FOUND',
      `${gun}: no ${states.join(' or ')} update of ${role}${version === undefined ? '' : ` v${version}`}`,
      { role },
    );
  }
  if (matches.length > 1) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${gun}: ${matches.length} pending updates of ${role}: choose one with --id (${matches.map((m) => m.id.slice(0, 12)).join(', ')})`,
      { role, found: matches.map((m) => m.id) },
    );
  }
  return matches[0]!;
}

export async function pendingList(ctx: Context, gun: string): Promise<void> {
  const pending = await listPending(await remoteOptions(ctx), gun);
  const lines: string[] = [];
  for (const p of pending) {
    lines.push(
      `${p.id.slice(0, 12)}  ${p.state}  ${p.roles.map((r) => `${printable(r.role)} v${r.version}`).join(', ')}  proposed ${p.created}, expires ${p.expires}`,
    );
    if (p.status !== undefined) {
      lines.push(...pendingLines(p.status));
      lines.push(`  ${p.status.needed} more signature(s) needed`);
    }
    if (p.state === 'superseded')
      lines.push(`  superseded: drop it with tufa pending drop ${gun} ROLE --id ${p.id.slice(0, 12)}`);
    if (p.error !== undefined) lines.push(`  invalid: ${p.error.code}: ${oneLine(p.error.message)}`);
    lines.push(...changeLines(p.changes as RoleChanges[]));
  }
  ctx.out.result({ gun, pending }, pending.length === 0 ? `${gun}: no pending updates` : lines);
}

export async function pendingDrop(
  ctx: Context,
  gun: string,
  role: string,
  options: { version?: string; id?: string },
): Promise<void> {
  const chosen = await choose(ctx, gun, role, options, ['pending', 'superseded', 'invalid']);
  await dropPending(await remoteOptions(ctx), gun, chosen.id);
  ctx.out.result({ gun, dropped: chosen.id }, `${gun}: dropped pending update ${chosen.id.slice(0, 12)}`);
}

/** This home's trusted state of the collection, as core's proposal rules take it. */
async function trustedState(ctx: Context, gun: string, roles: readonly string[]): Promise<CollectionState> {
  const view = await openCollection(ctx, gun);
  // A delegated role may have several delegators, any of which can trust it: load the whole tree, verified.
  if (roles.some((role) => !(TOP_LEVEL_ROLES as readonly string[]).includes(role))) {
    await view.client.listDelegations();
  }
  return collectionState(view);
}

/** A root v1 is only signed for a collection that has none yet: a server cannot pass off a second first root. */
async function nothingPublished(ctx: Context, gun: string): Promise<CollectionState> {
  try {
    const view = await openCollection(ctx, gun);
    throw new TufaError(
      'ROLLBACK',
      `${gun} already has root v${view.root.signed.version}: a root v1 proposal is stale`,
      {
        role: 'root',
        expected: view.root.signed.version + 1,
        found: 1,
      },
    );
  } catch (err) {
    if (isTufaError(err, 'NOT_FOUND')) return { delegated: new Map() };
    throw err;
  }
}

async function confirm(question: string): Promise<void> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    if (answer.trim() !== 'yes') throw new TufaError('INVALID_ARGUMENT', 'not signed');
  } finally {
    rl.close();
  }
}

export async function sign(
  ctx: Context,
  gun: string,
  role: string,
  options: { version?: string; id?: string; yes?: boolean },
): Promise<void> {
  const remote = await remoteOptions(ctx);
  const chosen = await choose(ctx, gun, role, options, ['pending']);
  const pending = await getPending(remote, gun, chosen.id);
  const documents = proposalDocuments(pending.documents);
  // Root v1 of a new collection: nothing is trusted yet, the proposal is checked on its own.
  const rootV1 = documents.get('root')?.signed.version === 1;
  const current: CollectionState = rootV1
    ? await nothingPublished(ctx, gun)
    : await trustedState(ctx, gun, [...documents.keys()]);
  const status = checkProposal({ current, crypto: ctx.crypto, uploads: pending.documents, now: Date.now() });
  if (status.id !== chosen.id) {
    throw new TufaError(
      'BAD_SIGNATURE',
      `pending update ${short(chosen.id)}: its documents do not match its id`,
      {
        expected: chosen.id,
        found: status.id,
      },
    );
  }
  const changes = describeProposal(current, pending.documents);
  const roleStatus = status.roles.find((r) => r.role === role);
  if (roleStatus === undefined)
    throw new TufaError('NOT_FOUND', `${role} is not part of this pending update`, { role });
  const summary = [
    `pending update ${short(chosen.id)} of ${gun}, proposed ${pending.created}, expires ${pending.expires}`,
    'changes (against this home’s trusted state):',
    ...changeLines(changes),
    'signatures (verified here):',
    ...pendingLines(status),
  ];
  const unsigned = [...new Set(roleStatus.thresholds.flatMap((t) => t.missing))];
  const signers = await localSigners(ctx, unsigned);
  if (signers.length === 0) {
    throw new TufaError(
      'NOT_FOUND',
      `${role}: this home holds no key of the role that has not signed already`,
      {
        role,
        expected: unsigned,
      },
    );
  }
  if (options.yes !== true) {
    if (!process.stdin.isTTY) {
      for (const line of summary) ctx.out.note(line);
      throw new TufaError(
        'INVALID_ARGUMENT',
        'signing needs --yes when not run on a terminal (read the summary first)',
      );
    }
    for (const line of summary) process.stderr.write(`${line}\n`);
    await confirm(`Sign ${role} v${roleStatus.version} with ${signers.length} key(s)? Type yes: `);
  }
  const md = documents.get(role)!;
  const added = (await addSignatures(md, signers)).signatures.filter((s) =>
    signers.some((x) => x.keyid === s.keyid),
  );
  const result = await addPendingSignatures(remote, gun, chosen.id, {
    [role]: added.map((s) => ({ keyid: s.keyid, sig: s.sig })),
  });
  if (result.published && rootV1) {
    // The first root, reviewed here and now published: this home pins it (no trust on first use later).
    const rootBytes = pending.documents.get('root')!;
    await pinRoot(ctx, gun, role === 'root' ? mergeSignatures(rootBytes, 'root', added) : rootBytes);
  }
  ctx.out.result(
    {
      gun,
      id: chosen.id,
      role,
      signed: added.map((s) => s.keyid),
      published: result.published,
      versions: result.versions ?? {},
      status: result.status,
      changes,
    },
    [
      ...summary,
      `signed ${role} v${roleStatus.version} with ${added.map((s) => short(s.keyid)).join(', ')}`,
      result.published
        ? `every threshold is met: published ${Object.entries(result.versions ?? {})
            .map(([r, v]) => `${r} v${v}`)
            .join(', ')}`
        : `still pending: ${result.status.needed} more signature(s) needed`,
    ],
  );
}
