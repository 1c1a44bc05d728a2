/** Durations on the command line (`--expires 90d`, `--within 30d`, `--max-age 1h`). */
import { TufaError } from '@tufa/core';

const UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  y: 365 * 86_400_000,
};

/** A lifetime such as 90d, 12h, 3y or 1s, in milliseconds. */
export function parseLifetime(text: string): number {
  const m = /^([1-9]\d{0,6})([smhdy])$/.exec(text);
  if (m === null)
    throw new TufaError(
      'INVALID_ARGUMENT',
      `a lifetime is a number and s, m, h, d or y (e.g. 90d), not ${text}`,
    );
  return Number(m[1]) * UNITS[m[2]!]!;
}
