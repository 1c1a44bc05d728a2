import { describe, expect, it } from 'vitest';
import type { TufaError } from './errors.js';
import { formatPkcs11Uri, parsePkcs11Uri } from './pkcs11-uri.js';

describe('PKCS#11 URIs (RFC 7512)', () => {
  it('reads the RFC’s attributes: percent-encoded labels, a binary id, slot-id and module-path', () => {
    expect(
      parsePkcs11Uri(
        'pkcs11:token=YubiKey%20PIV%20%2361;manufacturer=Yubico;serial=0123;model=YubiKey;object=Private%20key%20for%20Digital%20Signature;id=%02;type=private?module-path=/usr/lib/x86_64-linux-gnu/libykcs11.so',
      ),
    ).toEqual({
      token: 'YubiKey PIV #61',
      manufacturer: 'Yubico',
      serial: '0123',
      model: 'YubiKey',
      object: 'Private key for Digital Signature',
      id: Uint8Array.from([2]),
      type: 'private',
      modulePath: '/usr/lib/x86_64-linux-gnu/libykcs11.so',
    });
    expect(parsePkcs11Uri('PKCS11:slot-id=7;id=%01%ff')).toEqual({
      slotId: 7,
      id: Uint8Array.from([1, 255]),
    });
  });

  it('formats what it reads: every id byte encoded, unreserved characters kept, UTF-8 labels', () => {
    const uri = {
      token: 'tufa test é;=?',
      object: 'targets/1',
      id: Uint8Array.from([0x30, 0x00, 0xff]),
      modulePath: '/usr/lib/softhsm/libsofthsm2.so',
    };
    const text = formatPkcs11Uri(uri);
    expect(text).toBe(
      'pkcs11:token=tufa%20test%20%c3%a9%3b%3d%3f;object=targets%2f1;id=%30%00%ff?module-path=/usr/lib/softhsm/libsofthsm2.so',
    );
    expect(parsePkcs11Uri(text)).toEqual(uri);
  });

  it('refuses a PIN, unknown or repeated attributes, bad encoding and a URI that names no key', () => {
    const refused = (uri: string) => {
      try {
        parsePkcs11Uri(uri);
        return 'accepted';
      } catch (err) {
        return `${(err as TufaError).code}: ${(err as Error).message}`;
      }
    };
    expect(refused('pkcs11:id=%01?pin-value=1234')).toMatch(
      /^INVALID_ARGUMENT: .*pin-value: tufa never keeps a PIN/,
    );
    expect(refused('pkcs11:id=%01?pin-source=file:/pin')).toMatch(/pin-source: tufa never keeps a PIN/);
    // A PIN given by mistake is not repeated by the refusal, in its message or its JSON.
    for (const uri of [
      'pkcs11:id=%01?pin-value=987654',
      'pkcs11:id=%01?PIN-VALUE=987654',
      'pkcs11:id=%01?pin%2dvalue=987654',
      'pkcs11:id=%01?module-path=/usr/lib/x.so&pin-value=987654',
      'pkcs11:id=%01?987654',
      'pkcs11:id=%01;x-vendor=1?pin-value=987654',
    ]) {
      let err: TufaError | undefined;
      try {
        parsePkcs11Uri(uri);
      } catch (e) {
        err = e as TufaError;
      }
      expect(err?.code, uri).toBe('INVALID_ARGUMENT');
      expect(JSON.stringify(err), uri).not.toContain('987654');
      expect(err?.message, uri).not.toContain('987654');
    }
    expect(refused('pkcs11:id=%01;x-vendor=1')).toMatch(/unknown attribute x-vendor/);
    expect(refused('pkcs11:id=%01;id=%02')).toMatch(/id twice/);
    expect(refused('pkcs11:object=a%2')).toMatch(/bad percent-encoding/);
    expect(refused('pkcs11:object=a b')).toMatch(/must be percent-encoded/);
    expect(refused('pkcs11:object=%ff')).toMatch(/not UTF-8/);
    expect(refused('pkcs11:token=t')).toMatch(/names no key/);
    expect(refused('pkcs11:slot-id=x;id=%01')).toMatch(/slot-id is not a number/);
    expect(refused('file:/key')).toMatch(/does not start with pkcs11:/);
    expect(refused(`pkcs11:object=${'a'.repeat(5000)}`)).toMatch(/longer than 4096/);
    // Characters RFC 7512 wants percent-encoded in a path value, and in a query value.
    for (const c of ['/', '?', '#', '"', '%', '\\', '|', '\u00e9']) {
      expect(refused(`pkcs11:object=a${c === '%' ? '%g' : c}b`), c).toMatch(/^INVALID_ARGUMENT: /);
    }
    expect(refused('pkcs11:id=%01?module-path=/usr/lib/a#b.so')).toMatch(/must be percent-encoded/);
    expect(refused('pkcs11:id=%01?module-path=/usr/lib/a;b.so')).toMatch(/must be percent-encoded/);
    expect(parsePkcs11Uri("pkcs11:object=a:b@c!$'()*+,=&d;id=%01").object).toBe("a:b@c!$'()*+,=&d");
    expect(refused('pkcs11:id=%01;type=privat')).toMatch(/type=privat is none of/);
    expect(parsePkcs11Uri('pkcs11:id=%01;type=public').type).toBe('public');
    // A module is code that runs: never one found from the working directory.
    for (const path of ['lib/evil.so', './evil.so', 'libsofthsm2.so', '', '..%2fevil.so']) {
      expect(refused(`pkcs11:id=%01?module-path=${path}`), path).toMatch(/is not an absolute path/);
    }
  });
});
