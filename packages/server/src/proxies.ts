/**
 * The client's address behind trusted proxies (`--trusted-proxy CIDR,…`). `Forwarded` (RFC 7239)
 * and `X-Forwarded-For` are believed only when the TCP peer is a configured proxy, and only as
 * far as the chain of configured proxies goes: walking the hops from the nearest, the first
 * address that is not a trusted proxy is the client. Without any configured proxy, the peer is
 * the client and the headers are ignored.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { TufaError } from '@tufa/core';

/** The configured proxies: CIDR ranges and single addresses, IPv4 and IPv6 (node:net's BlockList). */
export class TrustedProxies {
  private readonly list = new BlockList();

  constructor(readonly ranges: readonly string[]) {
    for (const range of ranges) addRange(this.list, range);
  }

  /** Whether `address` (as a socket reports it, IPv4-mapped IPv6 included) is a configured proxy. */
  has(address: string): boolean {
    const plain = unmapped(address);
    const family = isIP(plain);
    if (family === 0) return false;
    return this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** `10.0.0.0/8,fd00::/8,192.0.2.7` → TrustedProxies; INVALID_ARGUMENT naming the bad entry. */
export function parseTrustedProxies(text: string): TrustedProxies {
  const ranges = text
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  if (ranges.length === 0) {
    throw new TufaError('INVALID_ARGUMENT', 'trusted-proxy: give one or more CIDR ranges, comma-separated');
  }
  return new TrustedProxies(ranges);
}

function addRange(list: BlockList, range: string): void {
  const bad = (why: string): never => {
    throw new TufaError('INVALID_ARGUMENT', `trusted-proxy: ${JSON.stringify(range)} is not ${why}`, {
      found: range,
    });
  };
  const [address = '', prefix, extra] = range.split('/');
  if (extra !== undefined) bad('a CIDR range (ADDRESS/PREFIX)');
  const family = isIP(address);
  if (family === 0) bad('an IPv4 or IPv6 address or CIDR range');
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefix === undefined) {
    list.addAddress(address, type);
    return;
  }
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) bad(`a CIDR range (a prefix from 0 to ${max})`);
  list.addSubnet(address, Number(prefix), type);
}

/** `::ffff:192.0.2.1` (how a dual-stack socket reports an IPv4 peer) → `192.0.2.1`. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m === null ? address : m[1]!;
}

/**
 * The client's address: the TCP peer, unless the peer is a trusted proxy; then the hops the
 * proxies recorded (`Forwarded: for=…` when present, else `X-Forwarded-For`), from the nearest
 * back, up to the first that is not a trusted proxy. A hop that is not an address (`unknown`, an
 * obfuscated name, garbage) ends the walk at the proxy that recorded it.
 */
export function clientAddress(
  peer: string,
  headers: IncomingHttpHeaders,
  proxies: TrustedProxies | undefined,
): string {
  if (proxies === undefined || !proxies.has(peer)) return peer;
  const hops = forwardedHops(headers);
  let client = unmapped(peer);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) break;
    client = unmapped(hop);
    if (!proxies.has(hop)) break;
  }
  return client;
}

/** The `for` addresses of `Forwarded`, or else of `X-Forwarded-For`, oldest first (quotes, brackets and ports removed). */
function forwardedHops(headers: IncomingHttpHeaders): string[] {
  const forwarded = headers.forwarded;
  if (typeof forwarded === 'string' && forwarded.trim() !== '') {
    const hops: string[] = [];
    for (const element of forwarded.split(',')) {
      const pair = element
        .split(';')
        .map((p) => p.trim())
        .find((p) => p.toLowerCase().startsWith('for='));
      // An element without `for` still is a hop: one the walk cannot pass.
      hops.push(pair === undefined ? '' : nodeAddress(pair.slice(4)));
    }
    return hops;
  }
  const xff = headers['x-forwarded-for'];
  const text = Array.isArray(xff) ? xff.join(',') : xff;
  if (text === undefined) return [];
  return text.split(',').map((h) => nodeAddress(h));
}

/** RFC 7239 node: `"[2001:db8::1]:4711"`, `192.0.2.1:80`, `192.0.2.1` → the address alone. */
function nodeAddress(node: string): string {
  let n = node.trim();
  if (n.startsWith('"') && n.endsWith('"') && n.length >= 2) n = n.slice(1, -1);
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(n);
  if (bracketed !== null) return bracketed[1]!;
  const v4port = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(n);
  return v4port === null ? n : v4port[1]!;
}
