// Test support, loaded into a child process with NODE_OPTIONS=--import=<this file> (never shipped):
// the process's clock runs TUFA_TEST_CLOCK_OFFSET_MS ahead of the real one, and each SIGUSR2
// moves it TUFA_TEST_CLOCK_STEP_MS further and says so on stderr ("test clock: +N ms"), so a test
// can let time pass for a server or a CLI without sleeping.
const RealDate = Date;
let offset = Number(process.env.TUFA_TEST_CLOCK_OFFSET_MS ?? '0');
const step = Number(process.env.TUFA_TEST_CLOCK_STEP_MS ?? '0');
if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(step)) {
  throw new Error('TUFA_TEST_CLOCK_OFFSET_MS and TUFA_TEST_CLOCK_STEP_MS are whole milliseconds');
}

class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }

  static now() {
    return RealDate.now() + offset;
  }
}
globalThis.Date = ShiftedDate;

process.on('SIGUSR2', () => {
  offset += step;
  process.stderr.write(`test clock: +${offset} ms\n`);
});
