import { codeOf } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { clientAddress, parseTrustedProxies } from './proxies.js';

describe('trusted proxies', () => {
  const proxies = parseTrustedProxies('10.0.0.0/8, 192.0.2.7,fd00::/8');

  it('reads CIDR ranges and single addresses, IPv4 and IPv6, and refuses anything else', () => {
    expect(proxies.has('10.1.2.3')).toBe(true);
    expect(proxies.has('::ffff:10.1.2.3')).toBe(true); // a dual-stack socket's IPv4 peer
    expect(proxies.has('192.0.2.7')).toBe(true);
    expect(proxies.has('192.0.2.8')).toBe(false);
    expect(proxies.has('fd12::1')).toBe(true);
    expect(proxies.has('2001:db8::1')).toBe(false);
    expect(proxies.has('unknown')).toBe(false);
    for (const bad of [
      '',
      ' , ',
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0.0/8/1',
      'example.com',
      '10.0.0/8',
      '10.0.0.0/x',
    ]) {
      expect(
        codeOf(() => parseTrustedProxies(bad)),
        bad,
      ).toBe('INVALID_ARGUMENT');
    }
  });

  it('believes forwarded addresses only from a trusted peer, and only as far as the trusted chain goes', () => {
    const xff = (v: string) => ({ 'x-forwarded-for': v });
    // No proxies configured, or a peer that is not one: the headers are ignored.
    expect(clientAddress('203.0.113.9', xff('198.51.100.1'), undefined)).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', xff('198.51.100.1'), proxies)).toBe('203.0.113.9');
    // One proxy: the address it appended.
    expect(clientAddress('10.0.0.1', xff('198.51.100.1'), proxies)).toBe('198.51.100.1');
    // A client that sends its own X-Forwarded-For cannot choose its address: the walk stops at
    // the first hop that is not a trusted proxy.
    expect(clientAddress('10.0.0.1', xff('1.2.3.4, 198.51.100.1'), proxies)).toBe('198.51.100.1');
    expect(clientAddress('10.0.0.1', xff('1.2.3.4, 198.51.100.1, 10.0.0.2'), proxies)).toBe('198.51.100.1');
    // A hop that is no address ends the walk at the proxy that recorded it.
    expect(clientAddress('10.0.0.1', xff('198.51.100.1, unknown'), proxies)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', xff('198.51.100.1, 10.0.0.2, garbage'), proxies)).toBe('10.0.0.1');
    // Every hop a trusted proxy: the oldest.
    expect(clientAddress('10.0.0.1', xff('10.0.0.3, 10.0.0.2'), proxies)).toBe('10.0.0.3');
    // No header from a trusted proxy: the proxy itself.
    expect(clientAddress('::ffff:10.0.0.1', {}, proxies)).toBe('10.0.0.1');
  });

  it('reads RFC 7239 Forwarded first: quoted, bracketed IPv6, ports', () => {
    const headers = {
      forwarded: 'for=1.2.3.4;proto=https, for="[2001:db8::7]:4711";by=10.0.0.2, for=10.0.0.2:80',
      'x-forwarded-for': '198.51.100.1',
    };
    expect(clientAddress('10.0.0.1', headers, proxies)).toBe('2001:db8::7');
    expect(clientAddress('10.0.0.1', { forwarded: 'for=_hidden, for=198.51.100.2' }, proxies)).toBe(
      '198.51.100.2',
    );
    expect(clientAddress('10.0.0.1', { forwarded: 'proto=https' }, proxies)).toBe('10.0.0.1');
  });
});
