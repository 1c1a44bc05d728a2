import { describe, expect, it } from 'vitest';
import { isTufaError } from './errors.js';
import { checkGun, isValidGun, MAX_GUN_LENGTH } from './gun.js';

const ACCEPTED = [
  'registry.example.com:5000/team/app',
  'localhost:5000/a',
  'localhost/a',
  'example.com/hello',
  'a',
  'x/app',
  'a/b__c',
  'a/b_c',
  'a/b.c',
  'a/b-c',
  'a/b---c',
  'a/b.c_d__e-f',
  '127.0.0.1:8080/team/app',
  '[::1]:5000/app',
  '[2001:db8::1]/app',
  '[2001:db8:0:0:0:0:0:1]:443/app',
  'my-registry.internal:65535/a/b/c/d',
  '0/1',
  'example.com/hello.world',
  'x'.repeat(MAX_GUN_LENGTH),
  `${'a'.repeat(63)}.com/x`,
];

// [name, a piece of the reason]
const REFUSED: [string, RegExp][] = [
  ['', /empty/],
  ['example.com/../x', /dot segment \.\./],
  ['../x', /dot segment/],
  ['a/./b', /dot segment \./],
  ['a/..', /dot segment/],
  ['Example.com/UPPER', /uppercase/],
  ['example.com/UPPER', /uppercase/],
  ['REGISTRY.example.com/app', /uppercase/],
  ['a//b', /empty segment/],
  ['a/', /empty segment/],
  ['/a', /empty segment/],
  ['%2e%2e/x', /percent-encoded/],
  ['a%2Fb', /percent-encoded/],
  ['example.com/%61pp', /percent-encoded/],
  ['a\\b', /backslash/],
  ['..\\x', /backslash/],
  ['a\nb', /control character at offset 1/],
  ['a\u0000b', /control character/],
  ['a\u007fb', /control character/],
  ['café/x', /non-ASCII/],
  ['a b', /space/],
  ['x'.repeat(MAX_GUN_LENGTH + 1), /256 characters, more than the 255 allowed/],
  ['example.com/app:latest', /':' is only for a port/],
  ['example.com/app@sha256:abcd', /no digest/],
  ['localhost:5000', /needs a repository path/],
  ['a/_trust', /start and end with a letter or digit/],
  ['_trust/tuf', /start and end/],
  ['a/-b', /start and end/],
  ['a/b-', /start and end/],
  ['a/.b', /start and end/],
  ['a/b...c', /joined by/],
  ['a/b___c', /joined by/],
  ['a/b._c', /joined by/],
  ['a/b+c', /"\+" is not allowed/],
  ['example.com:0/a', /port is a number from 1 to 65535/],
  ['example.com:65536/a', /port/],
  ['example.com:05000/a', /leading zeros/],
  ['example.com:/a', /port/],
  ['example.com:5000:6000/a', /port/],
  ['-example.com/a', /label "-example"/],
  ['example..com/a', /empty label/],
  [`${'a'.repeat(64)}.com:5000/x`, /label/],
  ['my_host:5000/a', /label "my_host"/],
  ['[::1/a', /closed by \]/],
  ['[::1]x/a', /only :PORT may follow/],
  ['[1::2::3]/a', /IPv6/],
  ['[2001:DB8::1]/a', /uppercase/],
  ['[1:2:3:4:5:6:7]/a', /IPv6/],
  ['[fe80::1%25eth0]/a', /percent-encoded/],
  ['[]/a', /IPv6/],
];

describe('checkGun: Docker repository names, stricter where one collection could have two spellings', () => {
  it.each(ACCEPTED)('accepts %s', (name) => {
    expect(checkGun(name)).toBe(name);
    expect(isValidGun(name)).toBe(true);
  });

  it.each(REFUSED)('refuses %j', (name, reason) => {
    let caught: unknown;
    try {
      checkGun(name);
    } catch (err) {
      caught = err;
    }
    expect(isTufaError(caught, 'INVALID_ARGUMENT'), JSON.stringify(name)).toBe(true);
    const err = caught as Error & { details: { gun: string; reason: string } };
    expect(err.details.reason).toMatch(reason);
    expect(err.message).toContain(err.details.reason);
    expect(err.details.gun).toBe(name.slice(0, MAX_GUN_LENGTH + 1));
    expect(isValidGun(name)).toBe(false);
  });

  it('shows a refused name printably and bounded in the message', () => {
    const attempts = ['a\u001b[31mred/x', `${'y'.repeat(10_000)}/x`];
    for (const name of attempts) {
      let message = '';
      try {
        checkGun(name);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^invalid GUN /);
      expect(message).toMatch(/^[\x20-\x7e]*$/);
      expect(message.length).toBeLessThan(300);
    }
  });

  it('refuses what is not a string', () => {
    expect(() => checkGun(42 as unknown as string)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
