/** Shared set-up for the client tests: a simulator, a temp cache folder, a client on both. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClientOptions, createClient, type TufaClient } from '@tufa/client';
import { NOW, RepoSim } from './simulator.js';

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

/** The TufaError code a promise rejects with (fails the test when it resolves). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw err;
  }
  throw new Error('expected a refusal, but the call succeeded');
}
