/**
 * The node options tufa-server runs with: its bin's shebang, `npm start`, the container image and
 * the benchmarks all pass them (node-options.test.ts checks that they agree). V8 reads them only
 * at start, so they cannot be set from inside the process.
 *
 * `--max-semi-space-size=8` (MiB; node 20's default is 16): a smaller young generation for the
 * event loop, whose objects (requests, answers) die young. It once was 32, for the large uploads
 * parsed on the event loop; those are now checked in the verification worker (ADR 0013), which
 * sets its own. Under the soak's upload mix (two servers, 10 concurrent 29 MB publishes) the event
 * loop's heap had grown to 85 MB with 32; with 8, both servers stayed under 260 MB RSS.
 */
export const SERVER_NODE_OPTIONS: readonly string[] = Object.freeze(['--max-semi-space-size=8']);

/**
 * The environment tufa-server runs with, beside its node options (the same places pass it; glibc
 * reads it only at start). `MALLOC_MMAP_THRESHOLD_=131072` fixes glibc's mmap threshold at its
 * initial 128 KiB: by default glibc raises it after the first large buffer is freed, so every later
 * 2 MB snapshot buffer came from the heap and stayed in RSS after it was freed. Measured with the
 * bins bench (100 publishes into one of 16,384 bins, each writing a 2.1 MB snapshot; ADR 0015):
 * 189-190 MB without it, 124-169 MB with it. Other C libraries ignore the variable.
 */
export const SERVER_ENVIRONMENT: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_MMAP_THRESHOLD_: '131072',
});
