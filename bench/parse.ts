/**
 * The parser on its own, in one process
 * (`node --conditions=tufa-source --import tsx bench/parse.ts`): what a client does with a
 * downloaded targets.json (parseMetadata) and what the server does with an uploaded one
 * (parseUploaded: the strict parse and the served-form check), at 1,000 / 10,000 / 100,000
 * targets; a pretty-printed document (no canonical span to reuse); serializeMetadata of 100,000.
 * Medians of several runs after a warm-up, with the spread (min-max). ADR 0011 quotes it.
 */
import {
  parseMetadata,
  parseSignedEnvelope,
  parseUploaded,
  searchTarget,
  serializeMetadata,
  type Targets,
} from '@tufa/core';
import { sign } from '@tufa/testing';
import { KEYS, targetsWith } from './lib/tufa.js';
import { median } from './lib/util.js';

/** TUFA_BENCH_PARSE_ROUNDS=N: the whole set N times over (before/after comparisons in one period). */
const ROUNDS = Number(process.env.TUFA_BENCH_PARSE_ROUNDS ?? 1);

function time(runs: number, work: () => unknown): number[] {
  for (let i = 0; i < Math.min(3, runs); i++) work(); // warm-up: JIT
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    work();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function report(name: string, times: number[]): void {
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(52)} ${fmt(median(times)).padStart(7)} ms  (${fmt(sorted[0]!)}-${fmt(sorted.at(-1)!)}, n=${times.length})`,
  );
}

const docs = [1000, 10_000, 100_000].map((n) => ({
  n,
  bytes: serializeMetadata(sign(targetsWith(n, 1), KEYS.targets)),
}));
const pretty = new TextEncoder().encode(
  JSON.stringify(JSON.parse(Buffer.from(docs[1]!.bytes).toString()), null, 1),
);

for (let round = 0; round < ROUNDS; round++) {
  for (const { n, bytes } of docs) {
    const runs = n >= 100_000 ? 15 : n >= 10_000 ? 40 : 200;
    report(
      `parseMetadata, ${n.toLocaleString('en')} targets`,
      time(runs, () => parseMetadata('targets', bytes)),
    );
    report(
      `parseUploaded, ${n.toLocaleString('en')} targets`,
      time(runs, () => parseUploaded('targets', bytes, 'targets')),
    );
    // What a client's refresh + getTarget does with it (ADR 0017 section 6): no map is made.
    report(
      `targetsOnDemand + one lookup, ${n.toLocaleString('en')} targets`,
      time(runs, () => {
        const { signed } = parseSignedEnvelope('targets', bytes, { targetsOnDemand: true }).metadata;
        return searchTarget({ path: 'app/v000001', targets: signed, getRole: () => undefined });
      }),
    );
  }
  report(
    'parseMetadata, 10,000 targets pretty-printed',
    time(40, () => parseMetadata('targets', pretty)),
  );
  const parsed = parseMetadata('targets', docs[2]!.bytes) as { signed: Targets };
  report(
    'serializeMetadata of a parsed 100,000',
    time(15, () => serializeMetadata(parsed as never)),
  );
}
