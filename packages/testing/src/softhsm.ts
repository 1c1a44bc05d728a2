/** SoftHSM2 (Debian's softhsm2) as a PKCS#11 token for tests: a token store of its own in a temp folder. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess } from './process.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** A config file (for SOFTHSM2_CONF) naming a fresh token folder, with one token `label` in it. */
export async function softhsmToken(label: string, pin: string): Promise<{ dir: string; conf: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-softhsm-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const r = await runProcess(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', '87654321', '--pin', pin],
    { env: { PATH: process.env.PATH ?? '', SOFTHSM2_CONF: conf } },
  );
  if (r.code !== 0) throw new Error(`softhsm2-util --init-token exited ${r.code}: ${r.stderr}`);
  return { dir, conf };
}
