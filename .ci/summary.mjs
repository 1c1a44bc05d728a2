// Prints the plain closing line CI reads ('N passed, N failed') from vitest's JSON report, and
// fails the run when any test failed or was skipped, or when fewer tests ran than the floor in
// .ci/test-floor (raise it with the suite; lower it only on purpose, when tests are removed).
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(new URL('../.vitest-report.json', import.meta.url), 'utf8'));
const floor = Number(readFileSync(new URL('./test-floor', import.meta.url), 'utf8').trim());
const passed = report.numPassedTests ?? 0;
const failed = report.numFailedTests ?? 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
let ok = failed === 0 && passed > 0 && report.success !== false;
if (skipped > 0) {
  ok = false;
  console.error(`ci: ${skipped} test(s) skipped; CI runs every test:`);
  for (const file of report.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      if (t.status !== 'passed' && t.status !== 'failed')
        console.error(`  ${t.status}: ${file.name} > ${t.fullName}`);
    }
  }
}
if (!Number.isSafeInteger(floor) || floor <= 0) {
  ok = false;
  console.error('ci: .ci/test-floor must hold the least number of tests a run may have');
} else if (passed + failed < floor) {
  ok = false;
  console.error(`ci: ${passed + failed} tests ran, fewer than the floor of ${floor} (.ci/test-floor)`);
}
if (!ok) process.exit(1);
