/**
 * `npm run soak [-- --minutes N]`: tufa under hostile load for a bounded time, on loopback (issue
 * 17, section 2). Two tufa-server processes on one PostgreSQL take readers (refresh + lookup
 * through the client), publishers (raw API, racing pairs across both servers, the CLI), a fuzzer
 * of uploads and a mix of large uploads, while faults are injected: kill -9 of a server, a
 * restart of the PostgreSQL under both, a client against a malicious repository. One table at the
 * end, PASS/MISS against the targets of the issue. See bench/README.md. Never part of `npm test`.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createClient } from '@tufa/client';
import { metaFileFor, toHex } from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { SERVER_ENVIRONMENT, SERVER_NODE_OPTIONS } from '@tufa/server';
import { endless, NOW, RepoSim, sign } from '@tufa/testing';
import { startTestPostgres, type TestPostgres } from '@tufa/testing/postgres';
import { body, keys, rootFor, targetsV } from '@tufa/testing/publisher';
import {
  freeLoopbackPort,
  log,
  REPO,
  removeTempDirs,
  rssOf,
  type Service,
  serviceOutputs,
  startService,
  stopServices,
  tempDir,
  waitForHttp,
} from './lib/util.js';

/** One crypto provider for the whole run (its key caches are the run's). */
const crypto = createNodeCrypto();

const run = promisify(execFile);
const SERVER_BIN = join(REPO, 'packages/server/dist/bin.js');
const CLI_BIN = join(REPO, 'packages/cli/dist/bundle/tufa.js');
const MASTER_KEY = 'ef'.repeat(32);
const MiB = 1024 * 1024;

function minutesArg(): number {
  const at = process.argv.indexOf('--minutes');
  if (at < 0) return 5;
  const value = Number(process.argv[at + 1]);
  if (!(value > 0 && value <= 24 * 60)) throw new Error('--minutes takes a number of minutes above 0');
  return value;
}

const MINUTES = minutesArg();
const started = Date.now();
const end = started + MINUTES * 60_000;
const running = () => Date.now() < end;

// ---------------------------------------------------------------------------------------------
// What is counted

/** Answers by source and status ('ERR' for a transport failure). */
const statuses = new Map<string, number>();
const count = (source: string, status: number | string) => {
  const key = `${source} ${status}`;
  statuses.set(key, (statuses.get(key) ?? 0) + 1);
};
/** Latencies of the read probes outside fault windows, ms. */
const readLatencies: number[] = [];
/** Fault windows [from, to): a read during one is not a stall, a refusal in one is expected. */
const faultWindows: { from: number; to: number }[] = [];
const inFault = (t: number) => faultWindows.some((w) => t >= w.from - 250 && t < w.to + 1000);
const recoveries: { fault: string; ms: number; verified: boolean }[] = [];
const verificationFailures: string[] = [];
const peakRss = new Map<string, number>();
/** 5xx answers other than 503 (a deliberate, retryable refusal): each one is a server failure. */
const serverErrors: string[] = [];
/** A worker of the soak itself that failed: the run did not measure what it says. */
const workerFailures: string[] = [];

// ---------------------------------------------------------------------------------------------
// Servers

interface TufaServer {
  name: string;
  port: number;
  base: string;
  service: Service;
}

async function startTufaServer(name: string, port: number, databaseUrl: string): Promise<TufaServer> {
  const args = [
    ...SERVER_NODE_OPTIONS,
    SERVER_BIN,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--database-url',
    databaseUrl,
    '--data-dir',
    tempDir(`soak-${name}`),
    '--log-level',
    'warn',
    '--resign-interval',
    '10s',
    // The soak measures load and faults, not tokens: every loopback caller may write.
    '--allow-anonymous-writes',
    // Every reader, publisher and fuzzer comes from 127.0.0.1: the per-address cap is not the subject.
    '--max-concurrent-per-address',
    '10000',
  ];
  const service = startService(`tufa-server ${name}`, process.execPath, args, {
    ...process.env,
    ...SERVER_ENVIRONMENT,
    TUFA_MASTER_KEY: MASTER_KEY,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/_health`, service, 90_000);
  return { name, port, base, service };
}

function sampleRss(servers: TufaServer[]): void {
  for (const s of servers) {
    const pid = s.service.child.pid;
    if (pid === undefined || s.service.child.exitCode !== null || s.service.child.signalCode !== null)
      continue;
    try {
      const rss = rssOf(pid);
      peakRss.set(s.name, Math.max(peakRss.get(s.name) ?? 0, rss));
    } catch {
      // exited between the check and the read
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Answer {
  status: number;
  text: string;
}

/** One request on its own connection (no agent): a fault never leaves a broken kept-alive socket behind. */
function send(
  base: string,
  method: string,
  path: string,
  payload?: Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((done) => {
    const req = request(
      `${base}${path}`,
      {
        method,
        agent: false,
        headers: {
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': String(payload.length) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (chunks.length < 64) chunks.push(c);
        });
        res.on('error', () => done({ status: 0, text: '' }));
        res.on('end', () => done({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    req.on('error', () => done({ status: 0, text: '' }));
    req.end(payload);
  });
}

const trust = (gun: string, file = '') => `/v2/${gun}/_trust/tuf/${file}`;

function record(source: string, answer: Answer, at: number): void {
  count(source, answer.status === 0 ? 'ERR' : answer.status);
  if (answer.status >= 500 && answer.status !== 503) {
    serverErrors.push(`${source}: ${answer.status} ${answer.text.slice(0, 200)}`);
  }
  if (answer.status === 503 && !inFault(at)) count(`${source} (503 outside a fault)`, 503);
}

/** The latest version of a role as the latest snapshot lists it (the snapshot is small; targets may be 30 MB). */
async function currentVersion(base: string, gun: string, role = 'targets'): Promise<number | undefined> {
  const answer = await send(base, 'GET', trust(gun, 'snapshot.json'));
  if (answer.status !== 200) return undefined;
  try {
    const snapshot = JSON.parse(answer.text) as { signed: { meta: Record<string, { version: number }> } };
    return snapshot.signed.meta[`${role}.json`]?.version;
  } catch {
    return undefined; // cut short by a fault: the caller asks again
  }
}

/** A collection with root v1 and targets v1 (tag app/v1), published through `base`. */
async function createCollection(base: string, gun: string): Promise<void> {
  const root = sign(await rootFor(base, gun), keys.root);
  const targets = sign(targetsV(1, { 'app/v1': 'v1' }), keys.targets);
  const answer = await send(base, 'POST', trust(gun), Buffer.from(body({ root, targets })));
  if (answer.status !== 200) throw new Error(`creating ${gun}: ${answer.status} ${answer.text}`);
}

function targetsBody(version: number, tags: Record<string, string>): Buffer {
  return Buffer.from(body({ targets: sign(targetsV(version, tags), keys.targets) }));
}

// ---------------------------------------------------------------------------------------------
// Workers

/** Refresh + lookup through the client, as a deploy script does, over and over. */
async function reader(servers: () => TufaServer[], gun: string, id: number): Promise<void> {
  const cacheDir = tempDir(`soak-reader-${id}`);
  while (running()) {
    const server = servers()[id % 2]!;
    const at = Date.now();
    try {
      const client = createClient({ server: server.base, gun }, { repositoryCacheDir: cacheDir });
      await client.refresh();
      await client.getTarget('app/v1');
      count('reader', 'ok');
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERR';
      count('reader', code);
      // Only a transport failure during a fault is expected; any other refusal is a verification failure.
      const duringFault = inFault(at) || inFault(Date.now());
      if (!(duringFault && (code === 'NETWORK' || code === 'TIMEOUT'))) {
        verificationFailures.push(`reader ${id} via ${server.name}: ${code}: ${(err as Error).message}`);
      }
    }
    await sleep(20);
  }
}

/** A GET of timestamp.json every 20 ms on each server: the read latency and the worst stall. */
/**
 * GETs timestamp.json on both servers every 20 ms from a child process (bench/lib/prober.ts), so
 * that the soak's own work (it sends hundreds of megabytes of uploads) is never measured as the
 * servers' stall. The servers keep their ports across restarts.
 */
async function prober(servers: () => TufaServer[], gun: string): Promise<void> {
  const urls = servers().map((s) => `${s.base}${trust(gun, 'timestamp.json')}`);
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/lib/prober.ts'), ...urls], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let rest = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const [at, status, ms] = line.split(' ').map(Number) as [number, number, number];
      record('probe GET', { status, text: '' }, at);
      if (status === 200 && !inFault(at) && !inFault(at + ms)) {
        readLatencies.push(ms);
        if (ms > worstRead.ms) Object.assign(worstRead, { ms, at });
      }
    }
  });
  while (running()) await sleep(200);
  child.kill('SIGTERM');
  await new Promise((done) => child.once('exit', done));
}

/** When the worst read outside faults was, for the log. */
const worstRead = { ms: 0, at: 0 };

interface PublishLog {
  gun: string;
  acknowledged: number[];
}

/** Raw API publishes of targets v2, v3, … on its own GUN, each retried until acknowledged. */
async function publisher(
  servers: () => TufaServer[],
  gun: string,
  id: number,
  log: PublishLog,
): Promise<void> {
  let version = 2;
  while (running()) {
    const server = servers()[id % 2]!;
    const at = Date.now();
    const answer = await send(
      server.base,
      'POST',
      trust(gun),
      targetsBody(version, { [`app/v${version}`]: `v${version}` }),
    );
    record('publish', answer, at);
    if (answer.status === 200) {
      log.acknowledged.push(version);
      version++;
    } else if (answer.status === 0 || answer.status === 503) {
      // Unknown outcome: the version may have been committed before the answer was lost.
      const now = await currentVersion(server.base, gun);
      if (now !== undefined && now >= version) version = now + 1;
      await sleep(100);
    } else {
      // A refusal (counted by record): the version was taken meanwhile, or the answer is a bug shown in the table.
      const now = await currentVersion(server.base, gun);
      version = (now ?? version) + 1;
    }
    await sleep(50);
  }
}

/** Two publishers, one on each server, racing for each next version of one GUN. */
async function racers(servers: () => TufaServer[], gun: string, wins: Map<number, string[]>): Promise<void> {
  while (running()) {
    const [a, b] = servers();
    const now = await currentVersion(a!.base, gun);
    if (now === undefined) {
      await sleep(200);
      continue;
    }
    const next = now + 1;
    const at = Date.now();
    const answers = await Promise.all(
      [a!, b!].map((s) =>
        send(s.base, 'POST', trust(gun), targetsBody(next, { [`race/${s.name}`]: `${next}` })),
      ),
    );
    answers.forEach((answer, i) => {
      record('race', answer, at);
      if (answer.status === 200) wins.set(next, [...(wins.get(next) ?? []), [a!, b!][i]!.name]);
    });
    await sleep(30);
  }
}

/** `tufa add` + `tufa publish` from a CLI home, every few seconds. */
async function cliPublisher(server: () => TufaServer, gun: string, log: PublishLog): Promise<void> {
  const home = tempDir('soak-cli');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    TUFA_HOME: home,
    TUFA_ROOT_PASSPHRASE: 'root pass',
    TUFA_TARGETS_PASSPHRASE: 'targets pass',
    TUFA_SNAPSHOT_PASSPHRASE: 'snapshot pass',
  };
  const tufa = async (args: string[]) => {
    try {
      const r = await run(process.execPath, [CLI_BIN, ...args], {
        env: { ...env, TUFA_SERVER: server().base },
        timeout: 120_000,
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof e.code === 'number' ? e.code : -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      };
    }
  };
  const init = await tufa(['init', gun, '--json']);
  count('cli init', init.code);
  let n = 0;
  while (running()) {
    n++;
    const digest = `sha256:${toHex(crypto.hash('sha256', Buffer.from(`cli ${n}`)))}`;
    await tufa(['add', gun, `cli/v${n}`, '--digest', digest, '--length', String(4 + String(n).length)]);
    const published = await tufa(['publish', gun, '--json']);
    count('cli publish', published.code === 0 ? 'ok' : `exit ${published.code}`);
    if (published.code === 0) {
      const versions = (JSON.parse(published.stdout) as { versions?: { targets?: number } }).versions;
      if (versions?.targets !== undefined) log.acknowledged.push(versions.targets);
    }
    await sleep(2000);
  }
}

/** Mutated, truncated, oversized and malformed uploads: every answer must be a 4xx (or a 503 under a fault). */
async function fuzzer(servers: () => TufaServer[], gun: string): Promise<void> {
  const valid = targetsBody(2, { 'fuzz/v2': 'v2' });
  const mutations: (() => Buffer)[] = [
    () => {
      const b = Buffer.from(valid);
      // Distinct positions, each XORed with 1..255: the body never stays the valid one.
      const at = new Set(
        Array.from({ length: 1 + Math.floor(Math.random() * 8) }, () => Math.floor(Math.random() * b.length)),
      );
      for (const i of at) b[i] = b[i]! ^ (1 + Math.floor(Math.random() * 255));
      return b;
    },
    () => valid.subarray(0, Math.floor(Math.random() * valid.length)),
    () => Buffer.from(`{"targets":${'['.repeat(100_000)}`),
    () =>
      Buffer.from(
        `{"targets":{"signed":{"_type":"targets"},"signatures":[${'{"keyid":"00","sig":"00"},'.repeat(1000)}{}]}}`,
      ),
    () => Buffer.from(`{"targets":1,"targets":2}`),
    () => randomBytes(1024 + Math.floor(Math.random() * 64 * 1024)),
    () => Buffer.from(`{"${'x'.repeat(200)}":{}}`),
    () => Buffer.from(`{"root":${valid.toString()}}`),
  ];
  while (running()) {
    const server = servers()[Math.floor(Math.random() * 2)]!;
    const payload = mutations[Math.floor(Math.random() * mutations.length)]!();
    const at = Date.now();
    const answer = await send(server.base, 'POST', trust(gun), payload);
    record('fuzz', answer, at);
    await sleep(5);
  }
}

/**
 * The issue's upload mix, every 20 s: 10 concurrent publishes of one valid, signed targets
 * document of about 30 MB (300,000 targets) on one GUN, split between the servers: one wins,
 * the rest get 409, or 503 from the body budget. Then 10 bodies of 30 MiB of junk in one string.
 */
async function largeUploads(servers: () => TufaServer[], gun: string, published: PublishLog): Promise<void> {
  const junk = Buffer.concat([Buffer.from('{"targets":"'), Buffer.alloc(30 * MiB, 0x61), Buffer.from('"}')]);
  while (running()) {
    const [a, b] = servers();
    const now = (await currentVersion(a!.base, gun)) ?? 1;
    // About 29 MB: under the default body limit (32 MiB).
    const file = join(tempDir('soak-large'), 'body.json');
    await run(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'bench/lib/large-body.ts'), '260000', String(now + 1), file],
      {
        cwd: REPO,
        timeout: 300_000,
      },
    );
    const valid = await readFile(file);
    log(
      `large uploads: 10 × targets v${now + 1} (${(valid.length / 1e6).toFixed(1)} MB), then 10 junk bodies`,
    );
    let at = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => send((i % 2 === 0 ? a : b)!.base, 'POST', trust(gun), valid)),
    );
    for (const answer of answers) record('large publish', answer, at);
    const winners = answers.filter((x) => x.status === 200).length;
    if (winners > 0) published.acknowledged.push(now + 1);
    if (winners > 1) serverErrors.push(`large publish v${now + 1}: ${winners} winners`);
    at = Date.now();
    const refused = await Promise.all(
      Array.from({ length: 10 }, () => send(a!.base, 'POST', trust(gun), junk)),
    );
    for (const answer of refused) record('large junk upload', answer, at);
    await sleep(20_000);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

/** A fresh client (new cache folder, trust on first use) refreshes and looks app/v1 up through `server`. */
async function freshClientVerifies(server: TufaServer, gun: string): Promise<boolean> {
  try {
    const client = createClient({ server: server.base, gun }, { repositoryCacheDir: tempDir('soak-fresh') });
    await client.refresh();
    await client.getTarget('app/v1');
    return true;
  } catch (err) {
    verificationFailures.push(
      `fresh client via ${server.name}: ${(err as { code?: string }).code}: ${(err as Error).message}`,
    );
    return false;
  }
}

/** Time from `since` until every server is healthy and a fresh client verifies through each. */
async function recovery(fault: string, servers: TufaServer[], gun: string, since: number): Promise<void> {
  const until = Date.now() + 120_000;
  for (;;) {
    const healthy = await Promise.all(
      servers.map(async (s) => (await send(s.base, 'GET', '/_health')).status === 200),
    );
    if (healthy.every(Boolean)) break;
    if (Date.now() > until) {
      recoveries.push({ fault, ms: Number.POSITIVE_INFINITY, verified: false });
      return;
    }
    await sleep(50);
  }
  const ms = Date.now() - since;
  const verified = (await Promise.all(servers.map((s) => freshClientVerifies(s, gun)))).every(Boolean);
  recoveries.push({ fault, ms, verified });
}

async function maliciousRepository(): Promise<{ code: string; snapshotRequested: boolean }> {
  const sim = await RepoSim.start({ consistent: true });
  try {
    sim.publish();
    const real = sim.published.get('snapshot')!;
    sim.handlers.set('metadata/2.snapshot.json', endless());
    sim.publishTimestamp({
      snapshotMeta: { ...metaFileFor(crypto, real, 2), length: Number.MAX_SAFE_INTEGER },
    });
    const client = createClient(
      { metadataUrl: sim.metadataUrl },
      // The simulated repository's metadata is valid at its own fixed time.
      { repositoryCacheDir: join(tempDir('soak-malicious'), 'cache'), clock: () => NOW },
    );
    const code = await client.refresh().then(
      () => 'accepted',
      (err: { code?: string }) => err.code ?? 'ERR',
    );
    return { code, snapshotRequested: sim.requests.includes('metadata/2.snapshot.json') };
  } finally {
    await sim.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The run

/** A worker that fails is a finding in the table, never an unhandled rejection that ends the run. */
function guarded(work: Promise<void>): Promise<void> {
  return work.catch((err: unknown) => {
    workerFailures.push(`${(err as Error).stack ?? String(err)}`.slice(0, 500));
  });
}

async function main(): Promise<void> {
  log(`soak: ${MINUTES} min on loopback`);
  const pgs: TestPostgres = await startTestPostgres();
  const pgRestart = { pgs };
  try {
    const databaseUrl = await pgs.createDatabase();
    const ports = [await freeLoopbackPort(), await freeLoopbackPort()];
    let servers = [
      await startTufaServer('A', ports[0]!, databaseUrl),
      await startTufaServer('B', ports[1]!, databaseUrl),
    ];
    const current = () => servers;
    const readGun = 'soak/read';
    await createCollection(servers[0]!.base, readGun);
    const logs: PublishLog[] = [];
    const workers: Promise<void>[] = [];
    for (let i = 0; i < 2; i++) {
      const gun = `soak/publish-${i}`;
      await createCollection(servers[0]!.base, gun);
      const entry = { gun, acknowledged: [1] };
      logs.push(entry);
      workers.push(guarded(publisher(current, gun, i, entry)));
    }
    const raceGun = 'soak/race';
    await createCollection(servers[0]!.base, raceGun);
    const wins = new Map<number, string[]>();
    workers.push(guarded(racers(current, raceGun, wins)));
    const cliLog: PublishLog = { gun: 'soak/cli', acknowledged: [] };
    workers.push(guarded(cliPublisher(() => servers[0]!, cliLog.gun, cliLog)));
    await createCollection(servers[0]!.base, 'soak/fuzz');
    workers.push(guarded(fuzzer(current, 'soak/fuzz')));
    await createCollection(servers[0]!.base, 'soak/large');
    const largeLog: PublishLog = { gun: 'soak/large', acknowledged: [1] };
    logs.push(largeLog);
    workers.push(guarded(largeUploads(current, 'soak/large', largeLog)));
    for (let i = 0; i < 4; i++) workers.push(guarded(reader(current, readGun, i)));
    workers.push(guarded(prober(current, readGun)));
    const sampler = setInterval(() => sampleRss(servers), 200);

    const at = (fraction: number) => sleep(Math.max(0, started + fraction * (end - started) - Date.now()));
    const killAndRestart = async (index: number) => {
      const victim = servers[index]!;
      const from = Date.now();
      const window = { from, to: Number.POSITIVE_INFINITY };
      faultWindows.push(window);
      log(`fault: kill -9 of tufa-server ${victim.name}`);
      victim.service.child.kill('SIGKILL');
      await new Promise((done) => victim.service.child.once('exit', done));
      const fresh = await startTufaServer(victim.name, victim.port, databaseUrl);
      servers = servers.map((s, i) => (i === index ? fresh : s));
      await recovery(`kill -9 of server ${victim.name}`, servers, readGun, from);
      window.to = Date.now();
    };

    await at(0.2);
    await killAndRestart(0);
    await at(0.45);
    {
      const from = Date.now();
      const window = { from, to: Number.POSITIVE_INFINITY };
      faultWindows.push(window);
      log('fault: restart of the PostgreSQL under both servers');
      await pgRestart.pgs.restart({ down: () => sleep(1000) });
      const up = Date.now();
      await recovery('PostgreSQL restart under 2 servers', servers, readGun, up);
      window.to = Date.now();
    }
    await at(0.7);
    await killAndRestart(1);
    await at(0.85);
    log('fault: a client against a malicious repository');
    const malicious = await maliciousRepository();
    await sleep(Math.max(0, end - Date.now()));
    await Promise.all(workers);
    clearInterval(sampler);

    // What is present at the end, through server A.
    const base = servers[0]!.base;
    let lost = 0;
    let gaps = 0;
    let acknowledged = 0;
    for (const entry of [...logs, cliLog]) {
      acknowledged += entry.acknowledged.length;
      for (const v of entry.acknowledged) {
        if ((await send(base, 'GET', trust(entry.gun, `${v}.targets.json`))).status !== 200) lost++;
      }
      const latest = (await currentVersion(base, entry.gun)) ?? 0;
      for (let v = 1; v <= latest; v++) {
        if ((await send(base, 'GET', trust(entry.gun, `${v}.targets.json`))).status !== 200) gaps++;
      }
    }
    const doubleWins = [...wins.values()].filter((w) => w.length > 1).length;
    const raceLatest = (await currentVersion(base, raceGun)) ?? 0;
    for (let v = 1; v <= raceLatest; v++) {
      if ((await send(base, 'GET', trust(raceGun, `${v}.targets.json`))).status !== 200) gaps++;
    }
    report({ acknowledged, lost, gaps, doubleWins, raceVersions: raceLatest, malicious });
  } catch (err) {
    console.error(`soak failed: ${(err as Error).stack}\n${serviceOutputs()}`);
    process.exitCode = 1;
  } finally {
    await stopServices();
    await pgRestart.pgs.stop().catch(() => undefined);
    removeTempDirs();
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(outcome: {
  acknowledged: number;
  lost: number;
  gaps: number;
  doubleWins: number;
  raceVersions: number;
  malicious: { code: string; snapshotRequested: boolean };
}): void {
  const rows: [string, string, string, boolean | undefined][] = [];
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');
  rows.push([
    '5xx for client errors (other than 503)',
    String(serverErrors.length),
    '0',
    serverErrors.length === 0,
  ]);
  rows.push([
    'publishes acknowledged / lost',
    `${outcome.acknowledged} / ${outcome.lost}`,
    'none lost',
    outcome.lost === 0,
  ]);
  rows.push(['version gaps', String(outcome.gaps), '0', outcome.gaps === 0]);
  rows.push([
    'racing versions with two winners',
    `${outcome.doubleWins} of ${outcome.raceVersions}`,
    '0',
    outcome.doubleWins === 0,
  ]);
  for (const [name, rss] of [...peakRss].sort()) {
    rows.push([`peak RSS of server ${name}`, `${(rss / 1e6).toFixed(0)} MB`, '<= 300 MB', rss <= 300e6]);
  }
  rows.push([
    'read latency p50 / p99',
    `${percentile(readLatencies, 50).toFixed(1)} / ${percentile(readLatencies, 99).toFixed(1)} ms`,
    '',
    undefined,
  ]);
  const worst = readLatencies.length === 0 ? Number.NaN : Math.max(...readLatencies);
  rows.push(['worst read stall (outside faults)', `${worst.toFixed(0)} ms`, '<= 250 ms', worst <= 250]);
  for (const r of recoveries) {
    rows.push([
      `recovery: ${r.fault}`,
      `${Number.isFinite(r.ms) ? r.ms : '>120000'} ms, fresh client ${r.verified ? 'verifies' : 'FAILS'}`,
      '<= 5000 ms',
      r.ms <= 5000 && r.verified,
    ]);
  }
  rows.push(['soak workers that failed', String(workerFailures.length), '0', workerFailures.length === 0]);
  rows.push([
    'verification failures',
    String(verificationFailures.length),
    '0',
    verificationFailures.length === 0,
  ]);
  rows.push([
    'malicious repository (2^53-1 snapshot length)',
    `${outcome.malicious.code}${outcome.malicious.snapshotRequested ? ', snapshot requested' : ', nothing requested'}`,
    'TOO_LARGE before any request',
    outcome.malicious.code === 'TOO_LARGE' && !outcome.malicious.snapshotRequested,
  ]);
  const width = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  const lines = rows.map(
    ([m, v, t, ok]) => `${m.padEnd(width)}  ${v.padEnd(valueWidth)}  ${t.padEnd(30)}  ${verdict(ok)}`,
  );
  console.log(`\ntufa soak, ${MINUTES} min\n`);
  console.log(lines.join('\n'));
  if (worstRead.at > 0)
    console.log(`\nworst read: ${worstRead.ms.toFixed(0)} ms at ${new Date(worstRead.at).toISOString()}`);
  console.log('\nrequests by source and status:');
  for (const [k, n] of [...statuses].sort()) console.log(`  ${k}: ${n}`);
  for (const e of serverErrors.slice(0, 10)) console.log(`  5xx: ${e}`);
  for (const e of verificationFailures.slice(0, 10)) console.log(`  verification failure: ${e}`);
  for (const e of workerFailures) console.log(`  soak worker failed: ${e}`);
  if (rows.some((r) => r[3] === false)) process.exitCode = 1;
}

// Whatever ends the run, the servers it started are stopped.
process.once('uncaughtException', (err) => {
  console.error(`soak failed: ${err.stack}`);
  void stopServices().finally(() => {
    removeTempDirs();
    process.exit(1);
  });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopServices().finally(() => {
      removeTempDirs();
      process.exit(130);
    });
  });
}
await main();
