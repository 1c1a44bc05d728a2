/**
 * The client row of the bench alone, in one process (the static server in a child): cold refresh
 * + one lookup at N targets, median of RUNS, beside its floor (sha256 + JSON.parse + one ed25519
 * verify of the same targets.json), and the mean CPU time of each (this process's, all threads).
 * `node --import tsx bench/client-alone.ts [TARGETS] [RUNS]`;
 * under `--cpu-prof` it profiles what the bench row measures.
 */
import { createHash, sign as cryptoSign, verify as cryptoVerify, generateKeyPairSync } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { createClient } from '@tufa/client';
import { createNodeCrypto } from '@tufa/core/node';
import { writeStaticRepository } from './lib/tufa.js';
import { median, startService, tempDir } from './lib/util.js';

const targets = Number(process.argv[2] ?? 100_000);
const runs = Number(process.argv[3] ?? 5);
const delegations = Number(process.env.DELEGATIONS ?? 0);
const REPO = join(import.meta.dirname, '..');

const dir = tempDir('static');
const { tag, root } = writeStaticRepository(join(dir, 'repo'), {
  targets,
  ...(delegations > 0 ? { delegations } : {}),
});
const service = startService('static server', process.execPath, [
  '--import',
  'tsx',
  join(REPO, 'bench/lib/static-server.ts'),
  dir,
]);
const port = await new Promise<number>((done) => {
  service.child.stdout!.on('data', () => {
    const m = /\{"port":(\d+)\}/.exec(service.output());
    if (m !== null) done(Number(m[1]));
  });
});
const crypto = createNodeCrypto();
const url = `http://127.0.0.1:${port}/repo/metadata/`;
async function once(): Promise<number> {
  const cacheDir = tempDir('client');
  try {
    const start = performance.now();
    const client = createClient(
      { metadataUrl: url },
      {
        repositoryCacheDir: cacheDir,
        crypto,
        trust: { rootFile: root },
        maxSizes: { targets: 64 * 2 ** 20, snapshot: 16 * 2 ** 20 },
      },
    );
    await client.refresh();
    await client.getTarget(tag);
    return performance.now() - start;
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
await once();
// PROFILE=FILE: a CPU profile of the measured runs only (not of writing the repository).
const profile = process.env.PROFILE;
const session = profile === undefined ? undefined : new Session();
if (session !== undefined) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
}
const times: number[] = [];
// CPU time of this process (all its threads: GC helpers and libuv's pool too), a steadier figure
// than wall clock on a loaded machine; the static server's is its own.
const cpuStart = process.cpuUsage();
for (let i = 0; i < runs; i++) times.push(await once());
const cpu = process.cpuUsage(cpuStart);
if (session !== undefined && profile !== undefined) {
  const { profile: taken } = await session.post('Profiler.stop');
  writeFileSync(profile, JSON.stringify(taken));
}
const bytes = readFileSync(join(dir, 'repo', 'metadata', '1.targets.json'));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signature = cryptoSign(null, bytes, privateKey);
const floorOnce = () => {
  const start = performance.now();
  createHash('sha256').update(bytes).digest();
  JSON.parse(bytes.toString('utf8'));
  if (!cryptoVerify(null, bytes, publicKey, signature)) throw new Error('floor: no');
  return performance.now() - start;
};
floorOnce();
const floorCpuStart = process.cpuUsage();
const floor = median(Array.from({ length: 5 }, floorOnce));
const floorCpu = process.cpuUsage(floorCpuStart);
const cpuMs = (u: NodeJS.CpuUsage, n: number) => (u.user + u.system) / 1000 / n;
const t = median(times);
console.log(
  JSON.stringify({
    targets,
    delegations,
    client_ms: +t.toFixed(1),
    floor_ms: +floor.toFixed(1),
    ratio: +(t / floor).toFixed(2),
    client_cpu_ms: +cpuMs(cpu, runs).toFixed(1),
    floor_cpu_ms: +cpuMs(floorCpu, 5).toFixed(1),
    cpu_ratio: +(cpuMs(cpu, runs) / cpuMs(floorCpu, 5)).toFixed(2),
    runs: times.map((x) => +x.toFixed(1)),
  }),
);
await service.stop();
rmSync(dir, { recursive: true, force: true });
