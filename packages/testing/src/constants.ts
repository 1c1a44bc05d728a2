/** The fixed instant the tests' documents are valid at, and other shared values. */
export const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
export const DAY = 24 * 3600 * 1000;
export const GUN = 'registry.example.com/team/app';

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
