/** The administration commands: `token create|list|revoke` and `audit`, straight on the database. */
import { checkGun, TufaError } from '@tufa/core';
import type { Logger } from 'pino';
import { listAudit, parseSince } from './audit.js';
import type { ParsedCommand } from './config.js';
import { describePlan, openAdminDatabase, planDatabase } from './server.js';
import { checkTokenName, parseScope, TokenStore } from './tokens.js';

interface Writable {
  write(text: string): unknown;
}

/** Who made a change from the command line, in the audit log. */
const LOCAL = { tokenName: undefined, remoteAddr: 'local (tufa-server command)', requestId: undefined };

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Runs one administration command; returns the exit code. */
export async function runAdminCommand(
  parsed: ParsedCommand,
  logger: Logger,
  out: Writable,
  notes: Writable = process.stderr,
): Promise<number> {
  const { admin, config } = parsed;
  // The arguments are checked before the database is touched.
  if (admin.name !== undefined) checkTokenName(admin.name);
  for (const scope of admin.scopes) parseScope(scope);
  const gun = admin.gun === undefined ? undefined : checkGun(admin.gun);
  const since = admin.since === undefined ? undefined : parseSince(admin.since, Date.now());
  const plan = planDatabase(config);
  // Said first, on stderr: a token made on the wrong database is refused by the server later.
  notes.write(`tufa-server: using ${describePlan(plan)}\n`);
  const db = await openAdminDatabase(config, logger, plan);
  try {
    const tokens = new TokenStore(db.pool);
    switch (parsed.command) {
      case 'token-create': {
        const created = await tokens.createAudited(admin.name!, admin.scopes, LOCAL);
        if (admin.json) out.write(`${JSON.stringify({ ...created.info, token: created.token }, null, 2)}\n`);
        else {
          out.write(`${created.token}\n`);
          notes.write(
            `token ${created.info.name} created (${created.info.scopes.join(' ')}): it is shown only this once\n`,
          );
        }
        return 0;
      }
      case 'token-list': {
        const list = await tokens.list();
        if (admin.json) out.write(`${JSON.stringify({ tokens: list }, null, 2)}\n`);
        else {
          const rows = [['NAME', 'SCOPES', 'CREATED', 'LAST USED', 'REVOKED']];
          for (const t of list) {
            rows.push([t.name, t.scopes.join(' '), t.created_at, t.last_used_at ?? '-', t.revoked_at ?? '-']);
          }
          out.write(`${list.length === 0 ? 'no tokens' : table(rows)}\n`);
        }
        return 0;
      }
      case 'token-revoke': {
        const name = admin.name!;
        const revoked = await tokens.revokeAudited(name, LOCAL);
        if (!revoked) throw new TufaError('NOT_FOUND', `no live token named ${name}`);
        out.write(admin.json ? `${JSON.stringify({ revoked: name })}\n` : `token ${name} revoked\n`);
        return 0;
      }
      case 'audit': {
        const records = await listAudit(db.pool, {
          gun,
          since,
          limit: admin.limit ?? 1000,
        });
        if (admin.json) out.write(`${JSON.stringify({ count: records.length, records }, null, 2)}\n`);
        else {
          const rows = [['ID', 'TIME', 'TOKEN', 'ADDRESS', 'GUN', 'ACTION', 'ROLES', 'OUTCOME', 'REQUEST']];
          for (const r of records) {
            rows.push([
              r.id,
              r.at,
              r.token_name ?? '-',
              r.remote_addr ?? '-',
              r.gun ?? '-',
              r.action,
              Object.entries(r.roles)
                .map(([k, v]) => `${k}=${v}`)
                .join(',') || '-',
              r.outcome,
              r.request_id ?? '-',
            ]);
          }
          out.write(`${records.length === 0 ? 'no audit records' : table(rows)}\n`);
        }
        return 0;
      }
      default:
        throw new TufaError('INTERNAL', `not an administration command: ${parsed.command}`);
    }
  } finally {
    await db.close();
  }
}
