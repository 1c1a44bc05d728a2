/**
 * The soak's read prober, in its own process: `node --import tsx bench/lib/prober.ts URL…` GETs
 * each URL every 20 ms and writes one line per answer (`at status ms`, `at` in ms since the
 * epoch). Its own event loop does nothing else, so what it measures is the server's stall, never
 * the soak's (which sends hundreds of megabytes of uploads beside it).
 */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

function get(url: string): Promise<number> {
  return new Promise((done) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0));
      res.on('error', () => done(0));
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    req.on('error', () => done(0));
    req.end();
  });
}

const urls = process.argv.slice(2);
for (;;) {
  for (const url of urls) {
    const at = Date.now();
    const t0 = performance.now();
    const status = await get(url);
    process.stdout.write(`${at} ${status} ${(performance.now() - t0).toFixed(2)} ${url}\n`);
  }
  await sleep(20);
}
