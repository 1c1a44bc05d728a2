/**
 * The node options tufa-server runs with: its bin's shebang, `npm start`, the container image and
 * the benchmarks all pass them (node-options.test.ts checks that they agree). V8 reads them only
 * at start, so they cannot be set from inside the process.
 *
 * `--max-semi-space-size=32` (MiB; node 20's default is 16): parsing a large upload (100,000
 * targets, 12 MB) makes tens of megabytes of short-lived objects; with a young generation twice
 * the default, fewer of them are copied and promoted before they die. Measured here: a publish at
 * 100,000 targets about 10% faster (medians of 4 runs, 309 vs 350 ms), no change at 1,000, and the
 * same RSS after 100 publishes.
 */
export const SERVER_NODE_OPTIONS: readonly string[] = Object.freeze(['--max-semi-space-size=32']);
