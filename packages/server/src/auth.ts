/**
 * Access control: who is calling (a Bearer token, a mapped client certificate, or nobody), what
 * they may do (scopes on GUN globs), and the abuse limits that come before any of it (failed
 * authentications and concurrent requests per address). Refusals say nothing about collections.
 */
import type { X509Certificate } from 'node:crypto';
import { HttpStatusError, type RequestInfo } from './http.js';
import { grants, isAdmin, type Scope, type TokenStore } from './tokens.js';

export type AccessAction = 'pull' | 'push' | 'delete' | 'admin';

export interface Principal {
  /** The token name (also for a client certificate mapped to one); undefined when anonymous. */
  tokenName: string | undefined;
  scopes: readonly Scope[];
  via: 'token' | 'certificate' | 'anonymous';
}

export const ANONYMOUS: Principal = Object.freeze({ tokenName: undefined, scopes: [], via: 'anonymous' });

export interface AccessOptions {
  tokens: TokenStore;
  /** Anonymous callers may pull unless this is set. */
  requireAuthForPull: boolean;
  /** Development only: anonymous callers may also push and delete. */
  allowAnonymousWrites: boolean;
  /** Failed authentications an address may make per window before 429. */
  failedAuthLimit: number;
  failedAuthWindow: number;
  /** Requests one address may have in flight at once. */
  maxConcurrentPerAddress: number;
  /** Client certificate subject (`CN=ci,O=Acme`) → token name. */
  clientSubjects?: ReadonlyMap<string, string> | undefined;
  clock?: () => number;
}

const REALM = 'Bearer realm="tufa"';
/** RFC 6750 section 2.1: `Bearer` and a token68. */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

function unauthorized(message: string, error?: 'invalid_request' | 'invalid_token'): HttpStatusError {
  return new HttpStatusError(401, 'UNAUTHORIZED', message, undefined, {
    'WWW-Authenticate': error === undefined ? REALM : `${REALM}, error="${error}"`,
  });
}

/** Subject of a certificate as `CN=ci,O=Acme` (the attributes in certificate order). */
export function subjectOf(certificate: X509Certificate): string {
  return certificate.subject.split('\n').join(',');
}

/** Failed authentications per address in a sliding window; bounded memory. */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  private static readonly MAX_ADDRESSES = 100_000;

  constructor(
    private readonly limit: number,
    private readonly window: number,
    private readonly clock: () => number,
  ) {}

  private recent(address: string, now: number): number[] {
    const list = (this.failures.get(address) ?? []).filter((t) => t > now - this.window);
    if (list.length === 0) this.failures.delete(address);
    else this.failures.set(address, list);
    return list;
  }

  /** Seconds until `address` may try again, or undefined when it may now. */
  retryAfter(address: string): number | undefined {
    const now = this.clock();
    const list = this.recent(address, now);
    if (list.length < this.limit) return undefined;
    return Math.max(1, Math.ceil((list[list.length - this.limit]! + this.window - now) / 1000));
  }

  fail(address: string): void {
    const now = this.clock();
    if (!this.failures.has(address) && this.failures.size >= FailureLimiter.MAX_ADDRESSES) {
      for (const a of [...this.failures.keys()]) this.recent(a, now);
      if (this.failures.size >= FailureLimiter.MAX_ADDRESSES) this.failures.clear();
    }
    const list = this.recent(address, now);
    list.push(now);
    if (list.length > this.limit) list.shift();
    this.failures.set(address, list);
  }
}

export class AccessControl {
  private readonly failures: FailureLimiter;
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly options: AccessOptions) {
    this.failures = new FailureLimiter(
      options.failedAuthLimit,
      options.failedAuthWindow,
      options.clock ?? Date.now,
    );
  }

  /** 429 while `address` is over its failed-authentication limit. */
  private checkFailures(address: string): void {
    const wait = this.failures.retryAfter(address);
    if (wait !== undefined) {
      throw new HttpStatusError(
        429,
        'RATE_LIMITED',
        `too many failed authentications from this address: retry in ${wait} s`,
        undefined,
        { 'Retry-After': String(wait) },
      );
    }
  }

  /** Whether client certificates map to tokens (their subjects stand for token names). */
  get mapsCertificates(): boolean {
    return (this.options.clientSubjects?.size ?? 0) > 0;
  }

  /** 429 while `address` has as many requests in flight as it may. */
  admit(address: string): void {
    if ((this.inFlight.get(address) ?? 0) >= this.options.maxConcurrentPerAddress) {
      throw new HttpStatusError(
        429,
        'RATE_LIMITED',
        `too many requests in flight from this address (at most ${this.options.maxConcurrentPerAddress})`,
        undefined,
        { 'Retry-After': '1' },
      );
    }
  }

  /**
   * Counts an admitted request that waits (for the database, its body) against its address's
   * cap; the returned function ends it. One answered at once holds nothing.
   */
  hold(address: string): () => void {
    this.inFlight.set(address, (this.inFlight.get(address) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.inFlight.get(address) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(address);
      else this.inFlight.set(address, left);
    };
  }

  /**
   * The caller: from the Authorization header when there is one (any failure there counts
   * against the address, whose failing requests get 429 once over the limit; a valid token
   * still passes), else from a client certificate
   * mapped to a token name, else anonymous. Known at once (no database) for an anonymous caller.
   */
  authenticate(request: RequestInfo): Principal | Promise<Principal> {
    const header = request.headers.authorization;
    if (header !== undefined && header !== '') return this.byToken(header, request.remoteAddress);
    const subjects = this.options.clientSubjects;
    if (subjects !== undefined && subjects.size > 0) {
      const certificate = request.peerCertificate;
      const name = certificate === undefined ? undefined : subjects.get(subjectOf(certificate));
      if (name !== undefined) return this.byCertificate(name);
    }
    return ANONYMOUS;
  }

  /** Every token is looked up in the database, so a revocation counts from the next request on. */
  private async byToken(header: string, address: string): Promise<Principal> {
    const m = BEARER.exec(header);
    if (m === null) {
      this.checkFailures(address);
      this.failures.fail(address);
      throw unauthorized('the Authorization header must be "Bearer TOKEN"', 'invalid_request');
    }
    // Checked before the limit: others' failures from the same address (behind a proxy, every
    // client's) never block a valid token; only a failing caller gets 429.
    const holder = await this.options.tokens.check(m[1]!);
    if (holder === undefined) {
      this.checkFailures(address);
      this.failures.fail(address);
      throw unauthorized('the token is unknown or revoked', 'invalid_token');
    }
    return { tokenName: holder.name, scopes: holder.scopes, via: 'token' };
  }

  private async byCertificate(name: string): Promise<Principal> {
    const holder = await this.options.tokens.byName(name);
    if (holder === undefined) throw unauthorized('the token of this client certificate is revoked');
    return { tokenName: holder.name, scopes: holder.scopes, via: 'certificate' };
  }

  /** Whether `who` may `action` on `gun` (admin: server-wide administration; gun ignored). */
  may(who: Principal, action: AccessAction, gun: string): boolean {
    if (action === 'admin') return isAdmin(who.scopes);
    // What anyone may do, a token holder may do too.
    if (action === 'pull' ? !this.options.requireAuthForPull : this.options.allowAnonymousWrites) return true;
    return who.via !== 'anonymous' && grants(who.scopes, action, gun);
  }

  /**
   * 401 for an anonymous caller, 403 for a token without the scope; the same whether `gun` exists
   * or not. An anonymous refusal counts as a failed authentication of `address` (so a flood of
   * token-less writes is cut off with 429 like a token guesser).
   */
  require(who: Principal, action: AccessAction, gun: string, address?: string): void {
    if (this.may(who, action, gun)) return;
    const scope = action === 'admin' ? 'admin:*' : `${action}:${gun}`;
    if (who.via === 'anonymous') {
      if (address !== undefined) {
        this.checkFailures(address);
        this.failures.fail(address);
      }
      throw unauthorized(`a token is required to ${action === 'admin' ? 'administer the server' : action}`);
    }
    throw new HttpStatusError(
      403,
      'FORBIDDEN',
      action === 'admin'
        ? `token ${who.tokenName} lacks the scope ${scope}`
        : `the scopes of token ${who.tokenName} do not cover ${scope}`,
      { scope },
      { 'WWW-Authenticate': `${REALM}, error="insufficient_scope", scope="${scope}"` },
    );
  }
}
