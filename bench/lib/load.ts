/**
 * HTTP load from a separate process: wrk (one thread) when installed, else autocannon (npm).
 * Requests per second and p50/p99 latency, medians over several short runs.
 */
import { join } from 'node:path';
import { median, REPO, runOk, which } from './util.js';

export interface LoadResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  runs: number;
}

export type LoadTool = 'wrk' | 'autocannon';

/** wrk when installed, else autocannon; TUFA_BENCH_LOAD=autocannon or wrk chooses. */
export function pickLoadTool(): LoadTool {
  const chosen = process.env.TUFA_BENCH_LOAD;
  if (chosen === 'autocannon' || chosen === 'wrk') return chosen;
  return which('wrk') !== undefined ? 'wrk' : 'autocannon';
}

/** wrk prints latencies as 1.23ms, 456.00us, 1.20s. */
function wrkDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (m === null) throw new Error(`wrk latency not understood: ${text}`);
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

async function once(
  tool: LoadTool,
  url: string,
  connections: number,
  seconds: number,
  headers: Readonly<Record<string, string>>,
) {
  if (tool === 'wrk') {
    const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const r = await runOk(
      'wrk',
      ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s', ...h, url],
      { timeoutMs: (seconds + 20) * 1000 },
    );
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
    const p50 = /^\s+50%\s+(\S+)$/m.exec(r.stdout);
    const p99 = /^\s+99%\s+(\S+)$/m.exec(r.stdout);
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
    if (rps === null || p50 === null || p99 === null)
      throw new Error(`wrk output not understood:\n${r.stdout}`);
    if (non2xx !== null) throw new Error(`wrk: ${non2xx[1]} error responses from ${url}`);
    return { rps: Number(rps[1]), p50ms: wrkDuration(p50[1]!), p99ms: wrkDuration(p99[1]!) };
  }
  const bin = join(REPO, 'node_modules/autocannon/autocannon.js');
  const r = await runOk(
    process.execPath,
    [
      bin,
      '-j',
      '-c',
      String(connections),
      '-d',
      String(seconds),
      ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]),
      url,
    ],
    {
      timeoutMs: (seconds + 30) * 1000,
    },
  );
  const json = JSON.parse(r.stdout) as {
    requests: { average: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
  };
  if (json.non2xx > 0 || json.errors > 0) throw new Error(`autocannon: errors from ${url}`);
  return { rps: json.requests.average, p50ms: json.latency.p50, p99ms: json.latency.p99 };
}

/** A short warm-up, then `runs` runs of `seconds` (each request with `headers`); medians of each figure. */
export async function measureGet(
  tool: LoadTool,
  url: string,
  options: { connections: number; seconds: number; runs: number; headers?: Readonly<Record<string, string>> },
): Promise<LoadResult> {
  const headers = options.headers ?? {};
  await once(tool, url, options.connections, 1, headers);
  const results = [];
  for (let i = 0; i < options.runs; i++)
    results.push(await once(tool, url, options.connections, options.seconds, headers));
  return {
    rps: median(results.map((r) => r.rps)),
    p50ms: median(results.map((r) => r.p50ms)),
    p99ms: median(results.map((r) => r.p99ms)),
    runs: options.runs,
  };
}
