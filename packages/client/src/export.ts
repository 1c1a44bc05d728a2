/**
 * The trusted metadata written out in the standard repository layout, so that another TUF client
 * or an archive can use it: `root.json`, `timestamp.json`, `snapshot.json`, `targets.json` and
 * `ROLE.json` per delegated role (names as python-tuf escapes them, file-names.ts), plus
 * `VERSION.ROLE.json` copies (root always; the others when root asks for consistent snapshots).
 * Each file holds the exact bytes core's rules accepted. The folder appears whole or not at all.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileUnwritable, type Metadata, type TrustedMetadataSet, TufaError } from '@tufa/core';
import { syncDir } from './cache.js';
import { acceptedBytes } from './context.js';
import { repositoryFileName } from './file-names.js';

export interface ExportedMetadata {
  /** The folder written. */
  dir: string;
  /** Every file in it, sorted. */
  files: string[];
  /** Each role exported, with its version and its `ROLE.json` file name. */
  roles: { role: string; version: number; file: string }[];
}

/**
 * Writes the set's metadata into `dir`, which must not exist or be an empty folder. Two roles
 * whose file names this file system folds into one (case, Unicode) are refused, never merged.
 */
export async function exportMetadata(set: TrustedMetadataSet, dir: string): Promise<ExportedMetadata> {
  await checkDestination(dir);
  const consistent = set.root.signed.consistentSnapshot === true;
  const documents: { role: string; name: string; metadata: Metadata; versioned: boolean }[] = [
    { role: 'root', name: 'root', metadata: set.root, versioned: true },
    { role: 'timestamp', name: 'timestamp', metadata: set.timestamp!, versioned: false },
    { role: 'snapshot', name: 'snapshot', metadata: set.snapshot!, versioned: consistent },
    { role: 'targets', name: 'targets', metadata: set.targets!, versioned: consistent },
  ];
  for (const { role, metadata } of set.delegatedRoles()) {
    documents.push({ role, name: repositoryFileName(role), metadata, versioned: consistent });
  }
  const temp = join(dirname(dir), `.${basename(dir)}.tufa-export-${randomBytes(6).toString('hex')}`);
  const files: string[] = [];
  try {
    await mkdir(temp, { mode: 0o755 });
    for (const doc of documents) {
      const bytes = acceptedBytes(doc.metadata);
      if (bytes === undefined) {
        throw new TufaError('INTERNAL', `export: the bytes of ${doc.role} are not known`, { role: doc.role });
      }
      const names = [`${doc.name}.json`];
      if (doc.versioned) names.push(`${doc.metadata.signed.version}.${doc.name}.json`);
      for (const name of names) {
        await writeNew(join(temp, name), bytes, { dir, role: doc.role });
        files.push(name);
      }
    }
    await syncDir(temp);
    await rename(temp, dir).catch((err: unknown) => {
      throw fileUnwritable(dir, 'the export folder', err);
    });
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    if (err instanceof TufaError) throw err;
    throw fileUnwritable(dir, 'the export folder', err);
  }
  await syncDir(dirname(dir));
  return {
    dir,
    files: files.sort(),
    roles: documents.map((d) => ({
      role: d.role,
      version: d.metadata.signed.version,
      file: `${d.name}.json`,
    })),
  };
}

/** The folder must not exist, or be empty: an export never mixes with other files. */
async function checkDestination(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') return;
    throw fileUnwritable(dir, 'the export folder', err);
  }
  if (entries.length > 0) {
    throw new TufaError('FILE_UNWRITABLE', `the export folder: ${dir} is not empty`, {
      details: { path: dir, reason: 'ENOTEMPTY' },
    });
  }
}

/** Creates a file that must not exist yet (`wx`): a second name folded into the first fails. */
async function writeNew(
  file: string,
  bytes: Uint8Array,
  about: { dir: string; role: string },
): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'wx', 0o644);
  } catch (err) {
    const shown = join(about.dir, basename(file));
    if ((err as { code?: unknown }).code === 'EEXIST') {
      throw new TufaError(
        'FILE_UNWRITABLE',
        `the export folder: ${shown} (${about.role}) names the same file as another role on this file system (it folds case or Unicode)`,
        { role: about.role, details: { path: shown, reason: 'EEXIST' }, cause: err },
      );
    }
    throw fileUnwritable(shown, `the export folder (${about.role})`, err);
  }
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
