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
