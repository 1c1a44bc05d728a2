/**
 * The bench's GET rows alone, for work on the server's read path: tufa-server (embedded database,
 * or `--database-url` from TUFA_BENCH_DATABASE_URL) with a 1,000-target collection, the bare
 * node:http floor answering tufa's own bytes (lib/bare-server.ts) and notary-server, measured in
 * alternating rounds of wrk -t1 (ROUNDS rounds of SECONDS s per server, file and connection
 * count). Besides requests/s it prints each server's CPU time per request (utime + stime of the
 * whole process from /proc, all threads), which a loaded machine moves far less than wall clock.
 * `node --import tsx bench/get-alone.ts [ROUNDS] [SECONDS]`; TUFA_BENCH_SERVER_NODE_ARGS as in
 * run.ts; a second tufa build to alternate with: TUFA_BENCH_OTHER_SERVER=path/to/bin.js.
 */
import { join } from 'node:path';
import { SERVER_ENVIRONMENT, SERVER_NODE_OPTIONS } from '@tufa/server';
import { startFloor } from './lib/floor.js';
import { notaryAvailable, startNotary } from './lib/notary.js';
import { createCollection, gunUrl } from './lib/tufa.js';
import {
  cpuMsOf,
  freeLoopbackPort,
  log,
  median,
  REPO,
  removeTempDirs,
  runOk,
  type Service,
  startService,
  stopServices,
  tempDir,
  tufaServerArgs,
  waitForHttp,
} from './lib/util.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const SECONDS = Number(process.argv[3] ?? 2);
const MASTER_KEY = 'cd'.repeat(32);
const GUN = 'bench.example.com/app';
const SERVER_NODE_ARGS = (process.env.TUFA_BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

interface Target {
  name: string;
  pid: number;
  base: string;
}

async function startTufa(name: string, bin: string): Promise<Target> {
  const port = await freeLoopbackPort();
  const dataDir = tempDir(`srv-${name}`);
  const db = process.env.TUFA_BENCH_DATABASE_URL;
  const dbArgs = ['--data-dir', dataDir, ...(db === undefined ? [] : ['--database-url', db])];
  const env = { ...process.env, ...SERVER_ENVIRONMENT, TUFA_MASTER_KEY: MASTER_KEY };
  const service: Service = startService(
    `tufa-server (${name})`,
    process.execPath,
    tufaServerArgs([...SERVER_NODE_OPTIONS, ...SERVER_NODE_ARGS], bin, port, dbArgs),
    env,
  );
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/_health`, service, 90_000);
  const r = await runOk(
    process.execPath,
    [bin, 'token', 'create', '--name', 'bench', '--scope', 'push:*', '--log-level', 'warn', ...dbArgs],
    { env, timeoutMs: 90_000 },
  );
  const token = r.stdout.trim().split('\n').pop()!.trim();
  await createCollection({ base, token }, GUN, 1000);
  return { name, pid: service.child.pid!, base };
}

async function wrk(url: string, connections: number, seconds: number, headers: Record<string, string>) {
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const r = await runOk('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...h, url], {
    timeoutMs: (seconds + 20) * 1000,
  });
  const requests = /(\d+) requests in/.exec(r.stdout);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const transfer = /Transfer\/sec:\s+(\S+)/.exec(r.stdout);
  if (requests === null || rps === null) throw new Error(`wrk output not understood:\n${r.stdout}`);
  if (/Non-2xx/.test(r.stdout)) throw new Error(`wrk: error responses from ${url}\n${r.stdout}`);
  return { requests: Number(requests[1]), rps: Number(rps[1]), transfer: transfer?.[1] ?? '?' };
}

async function main(): Promise<void> {
  const targets: Target[] = [];
  targets.push(await startTufa('tufa', join(REPO, 'packages/server/dist/bin.js')));
  const other = process.env.TUFA_BENCH_OTHER_SERVER;
  if (other !== undefined) targets.push(await startTufa('other', other));
  const floor = await startFloor([gunUrl(targets[0]!.base, GUN, 'targets.json')], SERVER_NODE_ARGS);
  targets.push({ name: 'bare', pid: floor.service.child.pid!, base: floor.base });
  if (notaryAvailable()) {
    const notary = await startNotary(tempDir('notary'));
    await notary.client(['init', GUN]);
    notary.stageTargets(GUN, 1000);
    await notary.client(['publish', GUN]);
    targets.push({ name: 'notary', pid: notary.service.child.pid!, base: notary.base });
  }
  if (process.env.GET_ALONE_SERVE === '1') {
    // Left running for strace, perf or a hand-run wrk until interrupted.
    for (const t of targets)
      process.stdout.write(`${t.name} pid ${t.pid} ${gunUrl(t.base, GUN, 'targets.json')}\n`);
    await new Promise<void>((done) => process.once('SIGINT', () => done()));
    return;
  }
  const cases = [
    ['identity', {}],
    ['gzip', { 'Accept-Encoding': 'gzip' }],
  ] as const;
  const results = new Map<string, { rps: number[]; cpuUs: number[]; transfer: string }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, headers] of cases) {
      for (const connections of [1, 10]) {
        for (const t of targets) {
          const url = gunUrl(t.base, GUN, 'targets.json');
          if (round === 0) await wrk(url, connections, 1, headers);
          const cpu0 = cpuMsOf(t.pid);
          const r = await wrk(url, connections, SECONDS, headers);
          const cpuUs = ((cpuMsOf(t.pid) - cpu0) / r.requests) * 1e3;
          const key = `${label}|c=${connections}|${t.name}`;
          const entry = results.get(key) ?? { rps: [], cpuUs: [], transfer: r.transfer };
          entry.rps.push(r.rps);
          entry.cpuUs.push(cpuUs);
          results.set(key, entry);
        }
      }
    }
    log(`round ${round + 1} of ${ROUNDS} done`);
  }
  const lines = ['| case | server | req/s (median) | ratio to notary | CPU µs/request | transfer/s |'];
  lines.push('|---|---|---|---|---|---|');
  for (const [label] of cases) {
    for (const connections of [1, 10]) {
      const notary = results.get(`${label}|c=${connections}|notary`);
      for (const t of targets) {
        const e = results.get(`${label}|c=${connections}|${t.name}`)!;
        const rps = median(e.rps);
        const ratio = notary === undefined ? '' : `${(rps / median(notary.rps)).toFixed(2)}x`;
        lines.push(
          `| ${label}, c=${connections} | ${t.name} | ${rps.toFixed(0)} (${e.rps.map((x) => x.toFixed(0)).join(' ')}) | ${ratio} | ${median(e.cpuUs).toFixed(1)} | ${e.transfer} |`,
        );
      }
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} finally {
  await stopServices();
  removeTempDirs();
}
