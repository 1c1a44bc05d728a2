/**
 * `npm run bench`: tufa against the tools people would use instead (notary-server and the notary
 * client, tuf-js's Updater, sha256sum), on this machine, in one run. Prints one table with
 * PASS/MISS against the targets of issue 7 and writes the same as JSON in bench/results/.
 * See bench/README.md. Never part of `npm test`.
 */
import { execFileSync } from 'node:child_process';
import {
  createHash,
  sign as cryptoSign,
  verify as cryptoVerify,
  generateKeyPairSync,
  randomBytes,
} from 'node:crypto';
import { copyFileSync, createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { createClient } from '@tufa/client';
import type { CryptoProvider } from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { type RunningPostgres, SERVER_ENVIRONMENT, SERVER_NODE_OPTIONS, startPostgres } from '@tufa/server';
import { testPostgresBinaries } from '@tufa/testing/postgres';
import pg from 'pg';
import { Updater } from 'tuf-js';
import { startFloor } from './lib/floor.js';
import { type LoadResult, type LoadTool, measureGet, pickLoadTool } from './lib/load.js';
import { type Notary, notaryAvailable, startNotary } from './lib/notary.js';
import {
  createBinnedCollection,
  createCollection,
  gunUrl,
  postUpdate,
  type Remote,
  successiveBinUpdates,
  successiveUpdates,
  targetEntry,
  writeStaticRepository,
} from './lib/tufa.js';
import {
  cpuMsOf,
  freeLoopbackPort,
  log,
  median,
  REPO,
  removeTempDirs,
  rssOf,
  runOk,
  type Service,
  serviceOutputs,
  startService,
  stopServices,
  tempDir,
  timed,
  tufaServerArgs,
  waitForHttp,
  which,
} from './lib/util.js';

const QUICK = process.env.TUFA_BENCH_QUICK === '1';
/** TUFA_BENCH_ONLY=get,publish,cli,client,verify: a subset, while working on one part. */
const ONLY = new Set((process.env.TUFA_BENCH_ONLY ?? 'get,publish,bins,cli,client,verify').split(','));
/** Issue 15's collection in succinct hash bins: 1,000,000 targets in 2^14 = 16,384 bins (QUICK: 100,000 in 1,024). */
const BIN_TARGETS = QUICK ? 100_000 : 1_000_000;
const BIN_BITS = QUICK ? 10 : 14;
const BIN_PUBLISHES = 100;
/** Bin publishes from two servers on one database, alternating. */
const BIN_TURNS = 40;
const GET_SECONDS = QUICK ? 1 : 2;
const GET_RUNS = QUICK ? 1 : 3;
const PUBLISH_SIZES = QUICK ? [1000, 10_000] : [1000, 10_000, 100_000];
const PUBLISHES_FOR_MEMORY = 100;
const CLI_RUNS = 9;
const BIG_FILE_MIB = QUICK ? 128 : 1024;
const MASTER_KEY = 'cd'.repeat(32);
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Results

type Verdict = 'PASS' | 'MISS' | '';

interface Row {
  section: string;
  metric: string;
  tufa: string;
  baseline: string;
  ratio: string;
  target: string;
  verdict: Verdict;
  values: Record<string, number | string | null>;
}

const rows: Row[] = [];
const notes: string[] = [];

function row(
  r: Omit<Row, 'ratio' | 'target' | 'verdict'> & Partial<Pick<Row, 'ratio' | 'target' | 'verdict'>>,
) {
  rows.push({ ratio: '', target: '', verdict: '', ...r });
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
const ms = (n: number) => `${fmt(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`;
const mb = (bytes: number) => `${fmt(bytes / 1e6, 1)} MB`;
const verdict = (ok: boolean): Verdict => (ok ? 'PASS' : 'MISS');
/** A ratio with enough digits to stay readable when it is tiny. */
const times = (r: number) => `${fmt(r, r < 0.01 ? 4 : r < 0.1 ? 3 : 2)}x`;

// ---------------------------------------------------------------------------------------------
// Tools

/** Installs Debian's wrk and notary when absent and installable (root, apt); a notice otherwise. */
function ensureDebianTools(): void {
  const missing = [
    ['wrk', 'wrk'],
    ['notary', 'notary-server'],
  ]
    .filter(([, program]) => which(program!) === undefined)
    .map(([pkg]) => pkg!);
  if (missing.length === 0) return;
  if (
    process.env.TUFA_BENCH_NO_INSTALL === '1' ||
    process.getuid?.() !== 0 ||
    which('apt-get') === undefined
  ) {
    notes.push(`not installed and not installing: ${missing.join(', ')} (root and apt-get needed)`);
    return;
  }
  try {
    log(`apt-get update, then install ${missing.join(' ')} if Debian has them`);
    execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 180_000 });
    const policy = execFileSync('apt-cache', ['policy', ...missing], { encoding: 'utf8', timeout: 60_000 });
    const installable = missing.filter((pkg) => {
      const m = new RegExp(`^${pkg}:\\n(?:.*\\n)*?\\s+Candidate: (\\S+)`, 'm').exec(policy);
      return m !== null && m[1] !== '(none)';
    });
    if (installable.length > 0) {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...installable], {
        stdio: 'ignore',
        timeout: 300_000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    }
    for (const pkg of missing.filter((p) => !installable.includes(p))) {
      notes.push(`Debian has no installable ${pkg} package here`);
    }
  } catch (err) {
    notes.push(`installing ${missing.join(', ')} failed: ${(err as Error).message.split('\n')[0]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Servers

interface TufaServer extends Remote {
  readonly name: string;
  readonly base: string;
  readonly token: string | undefined;
  readonly service: Service;
  rss(): number;
}

/** A PostgreSQL for the server, started as the server tests start theirs (fsync off: a throwaway). */
async function startBenchPostgres(): Promise<{ postgres: RunningPostgres; url: string }> {
  const dir = tempDir('pg');
  const postgres = await startPostgres({
    binaries: await testPostgresBinaries(),
    dataDir: join(dir, 'data'),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('CREATE DATABASE tufa_bench');
  await admin.end();
  return { postgres, url: postgres.url.replace(/\/postgres$/, '/tufa_bench') };
}

const SERVER_BIN = join(REPO, 'packages/server/dist/bin.js');
/** Extra node options for the tufa-server processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const SERVER_NODE_ARGS = (process.env.TUFA_BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** A publishing token (push, pull, delete on every GUN) when the server has access control. */
async function createToken(dbArgs: string[], name = 'bench'): Promise<string | undefined> {
  const help = await runOk(process.execPath, [SERVER_BIN, '--help']);
  if (!help.stdout.includes('token create')) return undefined;
  const r = await runOk(
    process.execPath,
    [
      SERVER_BIN,
      'token',
      'create',
      '--name',
      name,
      '--scope',
      'push:*',
      '--scope',
      'pull:*',
      '--scope',
      'delete:*',
      '--log-level',
      'warn',
      ...dbArgs,
    ],
    { env: { ...process.env, TUFA_MASTER_KEY: MASTER_KEY }, timeoutMs: 90_000 },
  );
  const token = r.stdout.trim().split('\n').pop()!.trim();
  if (!/^[A-Za-z0-9._~+/-]+=*$/.test(token)) throw new Error(`token create printed no token: ${r.stdout}`);
  return token;
}

async function startTufaServer(
  name: string,
  databaseUrl: string | undefined,
  extraArgs: string[] = [],
): Promise<TufaServer> {
  const port = await freeLoopbackPort();
  const dataDir = tempDir(`srv-${name}`);
  const dbArgs = [
    '--data-dir',
    dataDir,
    ...(databaseUrl === undefined ? [] : ['--database-url', databaseUrl]),
  ];
  const args = [
    ...tufaServerArgs([...SERVER_NODE_OPTIONS, ...SERVER_NODE_ARGS], SERVER_BIN, port, dbArgs),
    ...extraArgs,
  ];
  const service = startService(`tufa-server (${name})`, process.execPath, args, {
    ...process.env,
    ...SERVER_ENVIRONMENT,
    TUFA_MASTER_KEY: MASTER_KEY,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/_health`, service, 90_000);
  // After the start: administration commands never create (or migrate) a database themselves.
  // Token names are one per database: a second server on it (bins-2) names its own.
  const token = await createToken(dbArgs, `bench-${name}`);
  return { name, base, token, service, rss: () => rssOf(service.child.pid!) };
}

// ---------------------------------------------------------------------------------------------
// 1. Server GET

interface GetTarget {
  name: string;
  timestampUrl: string;
  targetsUrl: string;
}

/**
 * Every server in turn for each file and connection count (tufa on both databases, the bare
 * node:http floor, notary-server), so that a change in the machine's load falls on all of them.
 */
async function benchGets(tool: LoadTool, servers: GetTarget[]): Promise<Map<string, LoadResult>> {
  const results = new Map<string, LoadResult>();
  for (const [file, headers] of [
    ['timestamp.json', {}],
    ['targets.json', {}],
    [GZIP_FILE, { 'Accept-Encoding': 'gzip' }],
  ] as const) {
    for (const connections of [1, 10]) {
      for (const s of servers) {
        const url = file === 'timestamp.json' ? s.timestampUrl : s.targetsUrl;
        log(`GET ${file} on ${s.name}, ${connections} connection(s)`);
        results.set(
          `${s.name}|${file}|${connections}`,
          await measureGet(tool, url, { connections, seconds: GET_SECONDS, runs: GET_RUNS, headers }),
        );
      }
    }
  }
  return results;
}

/** targets.json asked for with `Accept-Encoding: gzip`. */
const GZIP_FILE = 'targets.json, Accept-Encoding: gzip';

function getRows(results: Map<string, LoadResult>, sizes: Record<string, number>, haveNotary: boolean) {
  for (const file of ['timestamp.json', 'targets.json', GZIP_FILE] as const) {
    for (const connections of [1, 10]) {
      const notary = results.get(`notary|${file}|${connections}`);
      const floor = results.get(`floor|${file}|${connections}`);
      if (floor !== undefined) {
        const ratio = notary === undefined ? Number.NaN : floor.rps / notary.rps;
        row({
          section: 'server GET',
          metric: `${file}, c=${connections}, the floor: bare node:http answering tufa's bytes and headers from memory`,
          tufa: `${fmt(floor.rps)} req/s, p50 ${ms(floor.p50ms)}, p99 ${ms(floor.p99ms)}`,
          baseline: notary === undefined ? '' : `${fmt(notary.rps)} req/s (notary)`,
          ratio: notary === undefined ? '' : times(ratio),
          values: {
            rps: floor.rps,
            p50_ms: floor.p50ms,
            p99_ms: floor.p99ms,
            notary_rps: notary?.rps ?? null,
            ratio: notary === undefined ? null : ratio,
          },
        });
      }
      for (const backend of ['postgres', 'embedded'] as const) {
        const r = results.get(`${backend}|${file}|${connections}`)!;
        const ratio = notary === undefined ? Number.NaN : r.rps / notary.rps;
        const need = file === 'timestamp.json' ? 2 : file === GZIP_FILE ? 3 : 1.5;
        row({
          section: 'server GET',
          metric: `${file} (${fmt(sizes[file]! / 1024, 1)} KB), c=${connections}, tufa on ${backend}`,
          tufa: `${fmt(r.rps)} req/s, p50 ${ms(r.p50ms)}, p99 ${ms(r.p99ms)}`,
          baseline:
            notary === undefined
              ? haveNotary
                ? 'n/a'
                : 'notary not installed'
              : `${fmt(notary.rps)} req/s, p50 ${ms(notary.p50ms)}, p99 ${ms(notary.p99ms)}`,
          ratio: notary === undefined ? '' : times(ratio),
          target: `>= ${need}x notary`,
          verdict: notary === undefined ? '' : verdict(ratio >= need),
          values: {
            rps: r.rps,
            p50_ms: r.p50ms,
            p99_ms: r.p99ms,
            notary_rps: notary?.rps ?? null,
            notary_p50_ms: notary?.p50ms ?? null,
            notary_p99_ms: notary?.p99ms ?? null,
            ratio: notary === undefined ? null : ratio,
            of_floor: floor === undefined ? null : r.rps / floor.rps,
          },
        });
      }
    }
  }
}

/** The bytes a GET of `url` puts on the wire with `headers`, and their Content-Encoding. */
function wireSize(
  url: string,
  headers: Record<string, string>,
): Promise<{ bytes: number; encoding: string }> {
  return new Promise((done, fail) => {
    httpGet(url, { headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => done({ bytes, encoding: String(res.headers['content-encoding'] ?? 'identity') }));
    }).on('error', fail);
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Server publish

async function timePublishes(remote: Remote, gun: string, bodies: Buffer[]): Promise<number[]> {
  const times: number[] = [];
  for (const body of bodies) times.push(await timed(() => postUpdate(remote, gun, body)));
  return times;
}

/**
 * The server's own time for requests to a route so far (sum and count of its latency histogram
 * on /metrics, seconds): between two readings, the mean time spent inside the server.
 */
async function serverTime(remote: Remote, route: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${remote.base}/metrics`)).text();
  const value = (name: string) => {
    const m = new RegExp(
      `^tufa_http_request_duration_seconds_${name}\\{route="${route}"\\} (\\S+)$`,
      'm',
    ).exec(text);
    return m === null ? Number.NaN : Number(m[1]);
  };
  return { sum: value('sum'), count: value('count') };
}

// ---------------------------------------------------------------------------------------------
// 2b. Succinct hash bins (TAP 15) at registry scale

/**
 * A collection of BIN_TARGETS targets in 2^BIN_BITS bins on its own tufa-server (PostgreSQL, the
 * default limits): creating it, one-target publishes into one bin,
 * a client's cold refresh + lookup from that server, and the server's RSS after BIN_PUBLISHES.
 */
async function benchBins(clusterUrl: string): Promise<void> {
  // A database of its own in the same cluster: its own tokens, nothing shared with the other rows.
  const admin = new pg.Client({ connectionString: clusterUrl });
  await admin.connect();
  await admin.query('CREATE DATABASE tufa_bench_bins');
  await admin.end();
  const databaseUrl = new URL(clusterUrl);
  databaseUrl.pathname = '/tufa_bench_bins';
  // The default limits: bins count against --max-hash-bins (65,536), not --max-delegated-roles.
  const server = await startTufaServer('bins', databaseUrl.toString());
  const gun = 'bench.example.com/bins';
  const binCount = 2 ** BIN_BITS;
  log(`bins: ${fmt(BIN_TARGETS)} targets in ${fmt(binCount)} bins: generating, signing, uploading`);
  const c = await createBinnedCollection(server, gun, {
    targets: BIN_TARGETS,
    bits: BIN_BITS,
    perUpdate: 1000,
  });
  const total = c.buildMs + c.uploadMs;
  row({
    section: 'bins',
    baseline: '',
    metric: `create ${fmt(BIN_TARGETS)} targets in ${fmt(binCount)} bins + first publish (${c.updates} updates of <= 1,000 roles)`,
    tufa: `${ms(total)} (generate + sign ${ms(c.buildMs)}, upload ${ms(c.uploadMs)})`,
    target: '< 60 s',
    verdict: verdict(total < 60_000),
    values: { total_ms: total, build_ms: c.buildMs, upload_ms: c.uploadMs, updates: c.updates },
  });
  const snapshotUrl = gunUrl(server.base, gun, 'snapshot.json');
  const snapshotBytes = (await (await fetch(snapshotUrl)).arrayBuffer()).byteLength;

  log(`bins: ${BIN_PUBLISHES} publishes of one target into one bin`);
  const bodies = successiveBinUpdates(c, BIN_TARGETS, BIN_PUBLISHES + 1);
  await timePublishes(server, gun, bodies.slice(0, 1)); // warms the paths (and the server's caches)
  const before = await serverTime(server, 'collection');
  const cpuBefore = cpuMsOf(server.service.child.pid!);
  const measured = await timePublishes(server, gun, bodies.slice(1));
  const cpuPerPublish = (cpuMsOf(server.service.child.pid!) - cpuBefore) / measured.length;
  const after = await serverTime(server, 'collection');
  const serverMean = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
  const rss = server.rss();
  row({
    section: 'bins',
    baseline: '',
    metric: `POST adding 1 target to one bin of ${fmt(binCount)} (median of ${measured.length})`,
    tufa: `${ms(median(measured))} (in the server: mean ${ms(serverMean)}, CPU ${ms(cpuPerPublish)} a publish)`,
    target: '<= 20 ms',
    verdict: verdict(median(measured) <= 20),
    values: {
      median_ms: median(measured),
      min_ms: Math.min(...measured),
      max_ms: Math.max(...measured),
      server_mean_ms: serverMean,
      server_cpu_ms: cpuPerPublish,
    },
  });
  row({
    section: 'bins',
    baseline: '',
    metric: `tufa-server RSS after ${BIN_PUBLISHES} bin publishes (PostgreSQL)`,
    tufa: mb(rss),
    target: '<= 120 MB',
    verdict: verdict(rss <= 120 * 1_000_000),
    values: { rss_bytes: rss },
  });

  // N servers on one database: each publish meets a snapshot the other process wrote.
  log(`bins: ${BIN_TURNS} publishes into one bin from two servers in turn`);
  const second = await startTufaServer('bins-2', databaseUrl.toString());
  const turns = successiveBinUpdates(c, BIN_TARGETS + BIN_PUBLISHES + 1, BIN_TURNS + 1);
  await timePublishes(second, gun, turns.slice(0, 1));
  const bothCpu = () => cpuMsOf(server.service.child.pid!) + cpuMsOf(second.service.child.pid!);
  const turnsCpuBefore = bothCpu();
  const inTurn: number[] = [];
  for (const [i, body] of turns.slice(1).entries()) {
    inTurn.push(...(await timePublishes(i % 2 === 0 ? server : second, gun, [body])));
  }
  const cpuPerTurn = (bothCpu() - turnsCpuBefore) / inTurn.length;
  await second.service.stop();
  row({
    section: 'bins',
    baseline: '',
    metric: `POST adding 1 target to one bin of ${fmt(binCount)}, two servers in turn (median of ${inTurn.length})`,
    tufa: `${ms(median(inTurn))} (CPU of both servers ${ms(cpuPerTurn)} a publish)`,
    target: '<= 20 ms',
    verdict: verdict(median(inTurn) <= 20),
    values: { median_ms: median(inTurn), server_cpu_ms: cpuPerTurn },
  });

  log('bins: client cold refresh + lookup (root, timestamp, snapshot, targets, one bin)');
  const crypto = createNodeCrypto();
  const rootBytes = await (await fetch(gunUrl(server.base, gun, '1.root.json'))).arrayBuffer();
  const refreshes: number[] = [];
  let requests = 0;
  for (let i = 0; i < 6; i++) {
    const cacheDir = tempDir('bins-client');
    const seen: string[] = [];
    const fetcher = (input: string, init: { signal: AbortSignal; redirect: 'follow' }) => {
      seen.push(input);
      return fetch(input, init);
    };
    const t = await timed(async () => {
      const client = createClient(
        { server: server.base, gun },
        {
          cacheDir,
          crypto,
          fetch: fetcher,
          trust: { rootFile: new Uint8Array(rootBytes) },
          maxSizes: { snapshot: 16 * MiB },
        },
      );
      await client.refresh();
      await client.getTarget(c.tag);
    });
    rmSync(cacheDir, { recursive: true, force: true });
    if (i > 0) refreshes.push(t); // the first warms the JIT and the key caches
    requests = seen.length;
  }
  row({
    section: 'bins',
    baseline: '',
    metric: `client cold refresh + lookup in ${fmt(binCount)} bins (median of ${refreshes.length}; ${requests} requests)`,
    tufa: ms(median(refreshes)),
    target: '<= 100 ms',
    verdict: verdict(median(refreshes) <= 100),
    values: { median_ms: median(refreshes), requests },
  });
  row({
    section: 'bins',
    baseline: '',
    metric: `snapshot.json with ${fmt(binCount)} bins (grows linearly: about ${fmt(snapshotBytes / binCount)} B per bin)`,
    tufa: `${fmt(snapshotBytes / 1024, 0)} KB`,
    values: { snapshot_bytes: snapshotBytes, bins: binCount },
  });
  await server.service.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. CLI

interface Cli {
  home: string;
  run(args: string[]): ReturnType<typeof runOk>;
}

function tufaCli(server: Remote): Cli {
  const home = tempDir('home');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    TUFA_HOME: home,
    TUFA_SERVER: server.base,
    ...(server.token === undefined ? {} : { TUFA_TOKEN: server.token }),
    TUFA_ROOT_PASSPHRASE: 'bench root passphrase',
    TUFA_TARGETS_PASSPHRASE: 'bench targets passphrase',
    TUFA_SNAPSHOT_PASSPHRASE: 'bench snapshot passphrase',
  };
  return {
    home,
    run: (args) =>
      runOk(process.execPath, [join(REPO, 'packages/cli/dist/bundle/tufa.js'), ...args], { env }),
  };
}

/** Stages `n` targets the way `tufa add --digest` does, without n process starts. */
function stageTufaTargets(home: string, gun: string, n: number): void {
  const changes = [];
  for (let i = 0; i < n; i++) {
    const t = targetEntry(i);
    changes.push({
      op: 'add',
      role: 'targets',
      path: t.path,
      target: { length: t.file.length, hashes: t.file.hashes },
    });
  }
  mkdirSync(join(home, 'staged'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, 'staged', `${encodeURIComponent(gun)}.json`), JSON.stringify(changes), {
    mode: 0o600,
  });
}

async function benchCli(tufa: Remote, notary: Notary | undefined): Promise<void> {
  const gun = 'bench.example.com/cli';
  const cli = tufaCli(tufa);
  log('CLI: tufa init, 1,000 targets staged and published');
  await cli.run(['init', gun]);
  stageTufaTargets(cli.home, gun, 1000);
  await cli.run(['publish', gun]);
  const addPublish = async (cycle: number) => {
    const t = targetEntry(5000 + cycle);
    return timed(async () => {
      await cli.run(['add', gun, t.path, '--digest', t.digest, '--length', String(t.file.length)]);
      await cli.run(['publish', gun]);
    });
  };
  const addAndPublish = async (cycle: number) => {
    const t = targetEntry(6000 + cycle);
    return timed(() =>
      cli.run(['add', gun, t.path, '--digest', t.digest, '--length', String(t.file.length), '--publish']),
    );
  };
  await addPublish(0);
  await addAndPublish(0);
  const tufaTimes: number[] = [];
  const tufaOneTimes: number[] = [];
  // Alternated, so that both forms see the same machine.
  for (let i = 1; i <= CLI_RUNS; i++) {
    tufaTimes.push(await addPublish(i));
    tufaOneTimes.push(await addAndPublish(i));
  }
  const probe = targetEntry(7);
  const verifyOnce = () => cli.run(['verify', gun, probe.path, '--digest', probe.digest]);
  const lookupOnce = () => cli.run(['lookup', gun, probe.path]);
  await verifyOnce(); // fills the cache: every later run is warm
  const verifyTimes: number[] = [];
  const lookupTimes: number[] = [];
  for (let i = 0; i < CLI_RUNS; i++) {
    verifyTimes.push((await verifyOnce()).ms);
    lookupTimes.push((await lookupOnce()).ms);
  }

  let notaryMedian = Number.NaN;
  const notaryLookups: number[] = [];
  const notaryOneTimes: number[] = [];
  if (notary !== undefined) {
    log('CLI: notary init, 1,000 targets staged and published');
    await notary.client(['init', gun]);
    await notary.client(['publish', gun]);
    notary.stageTargets(gun, 1000);
    await notary.client(['publish', gun]);
    const cycle = async (k: number) => {
      const t = targetEntry(5000 + k);
      return timed(async () => {
        await notary.client([
          'addhash',
          gun,
          t.path,
          String(t.file.length),
          '--sha256',
          t.file.hashes.sha256!,
        ]);
        await notary.client(['publish', gun]);
      });
    };
    const cycleP = async (k: number) => {
      const t = targetEntry(6000 + k);
      return timed(() =>
        notary.client([
          'addhash',
          gun,
          t.path,
          String(t.file.length),
          '--sha256',
          t.file.hashes.sha256!,
          '-p',
        ]),
      );
    };
    await cycle(0);
    await cycleP(0);
    const times: number[] = [];
    for (let i = 1; i <= CLI_RUNS; i++) {
      times.push(await cycle(i));
      notaryOneTimes.push(await cycleP(i));
    }
    notaryMedian = median(times);
    // notary's lookup with its trust dir filled by the publishes above: its warm cache.
    await notary.client(['lookup', gun, probe.path]);
    for (let i = 0; i < CLI_RUNS; i++)
      notaryLookups.push(await timed(() => notary.client(['lookup', gun, probe.path])));
  }
  const tufaMedian = median(tufaTimes);
  row({
    section: 'CLI',
    metric: `add + publish of 1 target into 1,000 (wall clock, median of ${CLI_RUNS})`,
    tufa: ms(tufaMedian),
    baseline: notary === undefined ? 'notary not installed' : `notary addhash + publish ${ms(notaryMedian)}`,
    ratio: notary === undefined ? '' : times(tufaMedian / notaryMedian),
    target: '<= notary',
    verdict: notary === undefined ? '' : verdict(tufaMedian <= notaryMedian),
    values: {
      tufa_ms: tufaMedian,
      notary_ms: notary === undefined ? null : notaryMedian,
      runs: tufaTimes.length,
    },
  });
  const oneMedian = median(tufaOneTimes);
  const notaryOne = notary === undefined ? Number.NaN : median(notaryOneTimes);
  row({
    section: 'CLI',
    metric: `add --publish of 1 target into 1,000, one process (wall clock, median of ${CLI_RUNS})`,
    tufa: `${ms(oneMedian)} (two commands: ${ms(tufaMedian)}, ${times(oneMedian / tufaMedian)})`,
    baseline: notary === undefined ? 'notary not installed' : `notary addhash -p ${ms(notaryOne)}`,
    ratio: notary === undefined ? '' : times(oneMedian / notaryOne),
    target: '<= notary',
    verdict: notary === undefined ? '' : verdict(oneMedian <= notaryOne),
    values: {
      tufa_ms: oneMedian,
      tufa_two_commands_ms: tufaMedian,
      notary_ms: notary === undefined ? null : notaryOne,
    },
  });
  const notaryLookup = notary === undefined ? Number.NaN : median(notaryLookups);
  for (const [name, runs] of [
    ['verify --digest', verifyTimes],
    ['lookup', lookupTimes],
  ] as const) {
    const t = median(runs);
    row({
      section: 'CLI',
      metric: `${name}, warm cache, 1,000 targets (wall clock, median of ${CLI_RUNS})`,
      tufa: ms(t),
      baseline: notary === undefined ? 'notary not installed' : `notary lookup ${ms(notaryLookup)}`,
      ratio: notary === undefined ? '' : times(t / notaryLookup),
      target: '<= 50 ms',
      verdict: verdict(t <= 50),
      values: { tufa_ms: t, notary_lookup_ms: notary === undefined ? null : notaryLookup },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Client refresh vs tuf-js

async function tufaRefresh(
  metadataUrl: string,
  root: Uint8Array,
  tag: string,
  crypto: CryptoProvider,
): Promise<number> {
  const cacheDir = tempDir('client');
  try {
    return await timed(async () => {
      const client = createClient(
        { metadataUrl },
        {
          repositoryCacheDir: cacheDir,
          crypto,
          trust: { rootFile: root },
          maxSizes: { targets: 64 * MiB, snapshot: 16 * MiB },
        },
      );
      await client.refresh();
      await client.getTarget(tag);
    });
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

async function tufjsRefresh(metadataUrl: string, root: Uint8Array, tag: string): Promise<number> {
  const dir = tempDir('tufjs');
  try {
    mkdirSync(join(dir, 'metadata'));
    mkdirSync(join(dir, 'targets'));
    writeFileSync(join(dir, 'metadata', 'root.json'), root);
    return await timed(async () => {
      const updater = new Updater({
        metadataDir: join(dir, 'metadata'),
        metadataBaseUrl: metadataUrl,
        targetDir: join(dir, 'targets'),
        config: { fetchRetries: 0, targetsMaxLength: 64 * MiB, snapshotMaxLength: 16 * MiB },
      });
      await updater.refresh();
      const info = await updater.getTargetInfo(tag);
      if (info === undefined) throw new Error(`tuf-js did not find ${tag}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The floor of a cold refresh at this size: sha256, JSON.parse and one ed25519 verify (node:crypto)
 * of the same targets.json bytes, in this process, median of 5 after a warm-up; beside the client's.
 */
function floorRow(targetsFile: string, clientMs: number): void {
  const bytes = readFileSync(targetsFile);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const signature = cryptoSign(null, bytes, privateKey);
  const once = () => {
    const start = performance.now();
    createHash('sha256').update(bytes).digest();
    JSON.parse(bytes.toString('utf8'));
    if (!cryptoVerify(null, bytes, publicKey, signature))
      throw new Error('floor: the signature does not verify');
    return performance.now() - start;
  };
  once();
  const floor = median(Array.from({ length: 5 }, once));
  row({
    section: 'client',
    metric: `cold refresh + lookup at 100,000 targets against its floor (sha256 + JSON.parse + 1 ed25519 verify of the same ${mb(bytes.length)})`,
    tufa: ms(clientMs),
    baseline: `floor ${ms(floor)}`,
    ratio: times(clientMs / floor),
    target: '<= 1.5x floor',
    verdict: verdict(clientMs <= 1.5 * floor),
    values: { tufa_ms: clientMs, floor_ms: floor, bytes: bytes.length },
  });
}

async function benchClient(): Promise<void> {
  const dir = tempDir('static');
  const service = startService('static server', process.execPath, [
    '--import',
    'tsx',
    join(REPO, 'bench/lib/static-server.ts'),
    dir,
  ]);
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`static server did not start: ${service.output()}`)),
      30_000,
    );
    service.child.stdout!.on('data', () => {
      const m = /\{"port":(\d+)\}/.exec(service.output());
      if (m !== null) {
        clearTimeout(timer);
        done(Number(m[1]));
      }
    });
  });
  // One provider for every run, as an integrator keeps one: its key caches outlive a client.
  const crypto = createNodeCrypto();
  const cases: { name: string; targets: number; delegations?: number; runs: number; tufjsRuns: number }[] = [
    { name: '1,000 targets', targets: 1000, runs: 7, tufjsRuns: 5 },
    { name: '10,000 targets', targets: 10_000, runs: 5, tufjsRuns: 1 },
    ...(QUICK ? [] : [{ name: '100,000 targets', targets: 100_000, runs: 3, tufjsRuns: 0 }]),
    { name: '256 delegated roles', targets: 100, delegations: 256, runs: 7, tufjsRuns: 5 },
  ];
  for (const c of cases) {
    const sub = `repo-${c.targets}-${c.delegations ?? 0}`;
    log(`client: writing a static repository with ${c.name}`);
    const { tag, root } = writeStaticRepository(join(dir, sub), {
      targets: c.targets,
      ...(c.delegations === undefined ? {} : { delegations: c.delegations }),
    });
    const url = `http://127.0.0.1:${port}/${sub}/metadata/`;
    log(`client: cold refresh + lookup, ${c.name}`);
    await tufaRefresh(url, root, tag, crypto); // warm-up: JIT, the static server's memory, the key caches
    const tufaTimes: number[] = [];
    for (let i = 0; i < c.runs; i++) tufaTimes.push(await tufaRefresh(url, root, tag, crypto));
    const tufjs: number[] = [];
    for (let i = 0; i < c.tufjsRuns; i++) tufjs.push(await tufjsRefresh(url, root, tag));
    const t = median(tufaTimes);
    const j = median(tufjs);
    const isTarget = c.targets === 10_000 && c.delegations === undefined;
    row({
      section: 'client',
      metric: `cold refresh + lookup, ${c.name} (median of ${c.runs}${c.tufjsRuns > 0 ? `/${c.tufjsRuns}` : ''})`,
      tufa: ms(t),
      baseline: c.tufjsRuns === 0 ? 'tuf-js not run (quadratic: minutes)' : `tuf-js ${ms(j)}`,
      ratio: c.tufjsRuns === 0 ? '' : times(t / j),
      target: isTarget ? '<= 0.5x tuf-js' : '',
      verdict: isTarget ? verdict(t <= 0.5 * j) : '',
      values: { tufa_ms: t, tufjs_ms: c.tufjsRuns === 0 ? null : j },
    });
    if (c.targets === 100_000) floorRow(join(dir, sub, 'metadata', '1.targets.json'), t);
    rmSync(join(dir, sub), { recursive: true, force: true });
  }
  await service.stop();
}

// ---------------------------------------------------------------------------------------------
// 5. Artifact verification

async function writeBigFile(path: string, mib: number): Promise<void> {
  const block = randomBytes(64 * MiB); // written again and again: its content does not matter to a hash
  const out = createWriteStream(path);
  for (let written = 0; written < mib; written += 64) {
    const part = block.subarray(0, Math.min(64, mib - written) * MiB);
    if (!out.write(part)) await new Promise<void>((done) => out.once('drain', () => done()));
  }
  await new Promise<void>((done, fail) => out.end((err?: Error | null) => (err ? fail(err) : done())));
}

async function benchVerifyFile(tufa: Remote): Promise<void> {
  const dir = tempDir('bigfile');
  const file = join(dir, 'artifact.bin');
  try {
    log(`verify --file: writing a ${BIG_FILE_MIB} MiB file`);
    await writeBigFile(file, BIG_FILE_MIB);
    const first = await runOk('sha256sum', [file]); // also warms the page cache
    const digest = first.stdout.slice(0, 64);
    const gun = 'bench.example.com/artifact';
    const cli = tufaCli(tufa);
    await cli.run(['init', gun]);
    await cli.run([
      'add',
      gun,
      'big',
      '--digest',
      `sha256:${digest}`,
      '--length',
      String(BIG_FILE_MIB * MiB),
    ]);
    await cli.run(['publish', gun]);
    await cli.run(['verify', gun, 'big', '--file', file]);
    const tufaTimes: number[] = [];
    const sum: number[] = [];
    for (let i = 0; i < 3; i++) {
      sum.push((await runOk('sha256sum', [file])).ms);
      tufaTimes.push((await cli.run(['verify', gun, 'big', '--file', file])).ms);
    }
    const t = (BIG_FILE_MIB / median(tufaTimes)) * 1000;
    const s = (BIG_FILE_MIB / median(sum)) * 1000;
    row({
      section: 'verify',
      metric: `verify --file of ${BIG_FILE_MIB} MiB, page cache warm (median of 3, process start and refresh included)`,
      tufa: `${fmt(t)} MiB/s (${ms(median(tufaTimes))})`,
      baseline: `sha256sum ${fmt(s)} MiB/s (${ms(median(sum))})`,
      ratio: times(t / s),
      target: '>= 0.9x sha256sum',
      verdict: verdict(t >= 0.9 * s),
      values: { tufa_mib_s: t, sha256sum_mib_s: s, ratio: t / s },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The run

function printTable(): string {
  const header = ['section', 'metric', 'tufa', 'baseline', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [r.section, r.metric, r.tufa, r.baseline, r.ratio, r.target, r.verdict]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  ensureDebianTools();
  const tool = pickLoadTool();
  const haveNotary = notaryAvailable();
  if (!haveNotary) notes.push('notary is not installed: the notary columns are skipped');
  log(`load generator: ${tool}; notary: ${haveNotary ? 'yes' : 'no'}${QUICK ? '; QUICK mode' : ''}`);

  log('starting PostgreSQL and tufa-server (PostgreSQL, embedded)');
  const { postgres, url } = await startBenchPostgres();
  // Ctrl-C or a kill: stop every server started here before leaving.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the servers`);
      void stopServices()
        .then(() => postgres.stop())
        .catch(() => undefined)
        .finally(() => {
          removeTempDirs();
          process.exit(130);
        });
    });
  }
  try {
    const pgServer = await startTufaServer('postgres', url);
    const embedded = await startTufaServer('embedded', undefined);
    const rssIdle = pgServer.rss();
    const gun = 'bench.example.com/app';
    for (const s of [pgServer, embedded]) await createCollection(s, gun, 1000);

    let notary: Notary | undefined;
    const getTargets: GetTarget[] = [pgServer, embedded].map((s) => ({
      name: s.name,
      timestampUrl: gunUrl(s.base, gun, 'timestamp.json'),
      targetsUrl: gunUrl(s.base, gun, 'targets.json'),
    }));
    if (haveNotary) {
      log('starting notary-server (memory store) and publishing 1,000 targets with the notary client');
      notary = await startNotary(tempDir('notary'));
      await notary.client(['init', gun]);
      notary.stageTargets(gun, 1000);
      await notary.client(['publish', gun]);
      getTargets.push({
        name: 'notary',
        timestampUrl: gunUrl(notary.base, gun, 'timestamp.json'),
        targetsUrl: gunUrl(notary.base, gun, 'targets.json'),
      });
    }
    // Beside tufa: what Node's HTTP stack and the kernel cost for the same answers.
    const floor = ONLY.has('get')
      ? await startFloor([getTargets[0]!.timestampUrl, getTargets[0]!.targetsUrl], SERVER_NODE_ARGS)
      : undefined;
    if (floor !== undefined) {
      getTargets.push({
        name: 'floor',
        timestampUrl: gunUrl(floor.base, gun, 'timestamp.json'),
        targetsUrl: gunUrl(floor.base, gun, 'targets.json'),
      });
    }
    const size = async (u: string) => (await (await fetch(u)).arrayBuffer()).byteLength;
    const gzipped = await wireSize(getTargets[0]!.targetsUrl, { 'accept-encoding': 'gzip' });
    const sizes = {
      'timestamp.json': await size(getTargets[0]!.timestampUrl),
      'targets.json': await size(getTargets[0]!.targetsUrl),
      [GZIP_FILE]: gzipped.bytes,
    };
    notes.push(
      `tufa's targets.json with Accept-Encoding: gzip: ${fmt(gzipped.bytes / 1024, 1)} KB sent (${gzipped.encoding})`,
    );
    if (notary !== undefined) {
      const notaryGzip = await wireSize(gunUrl(notary.base, gun, 'targets.json'), {
        'accept-encoding': 'gzip',
      });
      notes.push(
        `notary's files: timestamp.json ${fmt((await size(gunUrl(notary.base, gun, 'timestamp.json'))) / 1024, 1)} KB, targets.json ${fmt((await size(gunUrl(notary.base, gun, 'targets.json'))) / 1024, 1)} KB; with Accept-Encoding: gzip ${fmt(notaryGzip.bytes / 1024, 1)} KB sent (${notaryGzip.encoding})`,
      );
    }
    const gets = ONLY.has('get') ? await benchGets(tool, getTargets) : new Map<string, LoadResult>();
    if (ONLY.has('get')) getRows(gets, sizes, haveNotary);
    await floor?.service.stop();
    const rssAfterGet = pgServer.rss();
    const rssEmbeddedAfterGet = embedded.rss();
    await embedded.service.stop();

    // Publish at 1,000 (100 publishes: also the memory figure), 10,000 and 100,000 targets.
    const publishMedians: Record<number, number> = {};
    let rssAfterPublishes = Number.NaN;
    for (const n of ONLY.has('publish') ? PUBLISH_SIZES : []) {
      const pgun = `bench.example.com/publish${n}`;
      log(`publish: a collection of ${fmt(n)} targets, then successive one-target updates`);
      await createCollection(pgServer, pgun, n);
      const count = n === 1000 ? PUBLISHES_FOR_MEMORY : 11;
      const bodies = successiveUpdates(n, count);
      await timePublishes(pgServer, pgun, bodies.slice(0, 1)); // the first warms this size's paths
      const before = await serverTime(pgServer, 'collection');
      const measured = await timePublishes(pgServer, pgun, bodies.slice(1));
      const after = await serverTime(pgServer, 'collection');
      const serverMean = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
      publishMedians[n] = median(measured);
      if (n === 1000) rssAfterPublishes = pgServer.rss();
      const limit = n === 1000 ? 5 : n === 100_000 ? 300 : undefined;
      row({
        section: 'server publish',
        metric: `POST adding 1 target to ${fmt(n)} (round trip on loopback, median of ${measured.length})`,
        tufa: `${ms(publishMedians[n]!)} (in the server: mean ${ms(serverMean)})`,
        baseline: n === 1000 && haveNotary ? 'notary: 10-13 ms (issue 7)' : '',
        target: limit === undefined ? '' : `<= ${limit} ms`,
        verdict: limit === undefined ? '' : verdict(publishMedians[n]! <= limit),
        values: {
          median_ms: publishMedians[n]!,
          min_ms: Math.min(...measured),
          max_ms: Math.max(...measured),
          runs: measured.length,
          server_mean_ms: serverMean,
        },
      });
    }

    for (const [label, bytes, limited] of [
      ['idle (started, no collections)', rssIdle, false],
      ['after the GET load (PostgreSQL)', rssAfterGet, true],
      ['after the GET load (embedded; the node process only)', rssEmbeddedAfterGet, true],
      [`after ${PUBLISHES_FOR_MEMORY} publishes at 1,000 targets (PostgreSQL)`, rssAfterPublishes, true],
    ] as const) {
      row({
        section: 'memory',
        metric: `tufa-server RSS ${label}`,
        tufa: mb(bytes),
        baseline:
          notary !== undefined && label.startsWith('after the GET load (Post')
            ? `notary-server ${mb(rssOf(notary.service.child.pid!))}`
            : '',
        target: limited ? '<= 120 MB' : '',
        // Not measured (that section left out by TUFA_BENCH_ONLY): no verdict.
        verdict: limited && !Number.isNaN(bytes) ? verdict(bytes <= 120 * 1_000_000) : '',
        values: { rss_bytes: bytes },
      });
    }

    if (ONLY.has('bins')) await benchBins(url);
    if (ONLY.has('cli')) await benchCli(pgServer, notary);
    await notary?.service.stop();
    if (ONLY.has('client')) await benchClient();
    if (ONLY.has('verify')) await benchVerifyFile(pgServer);
  } catch (err) {
    process.stderr.write(`${serviceOutputs()}\n`);
    throw err;
  } finally {
    await stopServices();
    await postgres.stop().catch(() => undefined);
    removeTempDirs();
  }

  const table = printTable();
  const seconds = (Date.now() - started) / 1000;
  const summary = `${rows.filter((r) => r.verdict === 'PASS').length} PASS, ${rows.filter((r) => r.verdict === 'MISS').length} MISS`;
  process.stdout.write(
    `\n${table}\n\n${summary}; ${fmt(seconds)} s; load: ${tool} -t1, ${GET_RUNS} x ${GET_SECONDS} s per figure\n`,
  );
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  const outDir = join(REPO, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  const file = join(outDir, `bench-${stamp}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        started: new Date(started).toISOString(),
        seconds,
        machine: { node: process.version, cpus: (await import('node:os')).cpus().length },
        loadTool: tool,
        quick: QUICK,
        rows,
        notes,
        table,
      },
      null,
      2,
    )}\n`,
  );
  copyFileSync(file, join(outDir, 'latest.json'));
  process.stdout.write(`written: ${file}\n`);
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    const cause = (err as { cause?: unknown })?.cause;
    process.stderr.write(
      `bench failed: ${(err as Error)?.stack ?? String(err)}\n${cause === undefined ? '' : `cause: ${String(cause)}\n`}`,
    );
    await stopServices();
    removeTempDirs();
    process.exit(1);
  },
);
