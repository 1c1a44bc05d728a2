/** The client tests' set-up: a simulated repository over HTTP, a temp cache folder, a client on both. */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClientOptions, createClient, type TufaClient } from '@tufa/client';
import { NOW } from './constants.js';
import { RepoSim } from './repository.js';

export interface Setup {
  sim: RepoSim;
  dir: string;
  client: TufaClient;
  /** A new client on the same cache folder (another process, later). */
  newClient(options?: ClientOptions): TufaClient;
  clock: { now: number };
  cleanup(): Promise<void>;
}

export async function setup(
  options: ClientOptions & { consistent?: boolean; prepare?: (sim: RepoSim) => void } = {},
): Promise<Setup> {
  const sim = await RepoSim.start({ consistent: options.consistent ?? true });
  options.prepare?.(sim);
  const dir = await mkdtemp(join(tmpdir(), 'tufa-client-'));
  const clock = { now: NOW };
  const rootV1 = sim.files.get('metadata/1.root.json')!;
  const { consistent: _c, prepare: _p, ...clientOptions } = options;
  const newClient = (extra: ClientOptions = {}) =>
    createClient(
      { metadataUrl: sim.metadataUrl, targetsUrl: sim.targetsUrl },
      {
        repositoryCacheDir: join(dir, 'cache'),
        clock: () => clock.now,
        trust: { rootFile: rootV1 },
        timeouts: { connectMs: 2000, idleMs: 2000, totalMs: 5000, minBytesPerSecond: 1, rateGraceMs: 2000 },
        ...clientOptions,
        ...extra,
      },
    );
  return {
    sim,
    dir,
    client: newClient(),
    newClient,
    clock,
    cleanup: async () => {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Versions of the metadata held in a client's cache folder, by file. */
export async function cachedVersions(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const visit = async (sub: string) => {
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch {
      return;
    }
    for (const name of names) {
      if (name === 'delegated') {
        await visit('delegated');
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const doc = JSON.parse(await readFile(join(dir, sub, name), 'utf8'));
      out[join(sub, name.slice(0, -5))] = doc.signed.version;
    }
  };
  await visit('');
  return out;
}
