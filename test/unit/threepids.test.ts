// Email addresses and the registration policy (issue 14): the canonical form
// of an address, ma1sd's domain patterns (its documentation's table is a test
// case) and Synapse's allowed_local_3pids, anchored as Python's re.match.

import { describe, expect, it } from 'vitest';
import {
  canonicaliseDomain,
  canonicaliseEmail,
  CLIENT_SECRET_RE,
  domainMatches,
  OPEN_THREEPID_POLICY,
  parseDomainPattern,
  threepidAllowed,
  type ThreepidPolicy,
} from '../../src/domain/threepids.js';

const policy = (p: Partial<ThreepidPolicy>): ThreepidPolicy => ({ ...OPEN_THREEPID_POLICY, ...p });
const rule = (medium: string, source: string) => ({ medium, pattern: new RegExp(source, 'u') });

describe('CLIENT_SECRET_RE', () => {
  it('takes the spec grammar, 1 to 255 characters', () => {
    for (const ok of ['a', 'Az09.=_-', 'x'.repeat(255)]) expect(CLIENT_SECRET_RE.test(ok)).toBe(true);
  });

  it.each([[''], ['x'.repeat(256)], ['a b'], ['a/b'], ['a+b'], ['é'], ['a\n'], ['a\nb'], ['\u0000']])('refuses %j', (s) => {
    expect(CLIENT_SECRET_RE.test(s)).toBe(false);
  });
});

describe('canonicaliseEmail', () => {
  it('trims and case-folds', () => {
    expect(canonicaliseEmail('Alice@Example.ORG')).toBe('alice@example.org');
    expect(canonicaliseEmail('  alice@example.org\t\n')).toBe('alice@example.org');
    expect(canonicaliseEmail('\u00a0Bob.Smith+Tag@MAIL.Example.Org ')).toBe('bob.smith+tag@mail.example.org');
  });

  it('folds the local part as Python casefold does (Synapse canonicalise_email)', () => {
    expect(canonicaliseEmail('Straße@example.de')).toBe('strasse@example.de');
    expect(canonicaliseEmail('STRASSE@example.de')).toBe('strasse@example.de');
    // Capital sharp s folds to "ss" too, not to "ß" (which would not be a fixed point).
    expect(canonicaliseEmail('ẞ@example.de')).toBe('ss@example.de');
    expect(canonicaliseEmail('ÉLODIE@example.fr')).toBe('élodie@example.fr');
  });

  it('normalises the local part to NFC: composed and decomposed spellings are one address', () => {
    const composed = canonicaliseEmail('\u00e9@example.fr');
    expect(composed).toBe('é@example.fr');
    expect(canonicaliseEmail('e\u0301@example.fr')).toBe(composed);
  });

  it('accepts Unicode domains: the Unicode and punycode spellings canonicalise to one form', () => {
    const unicode = canonicaliseEmail('bob@BÜCHER.example');
    const puny = canonicaliseEmail('bob@xn--bcher-kva.example');
    expect(unicode).toBe('bob@bücher.example');
    expect(puny).toBe(unicode);
    expect(canonicaliseEmail('bob@bu\u0308cher.example')).toBe(unicode);
    // Full-width letters and dot (UTS #46 mapping).
    expect(canonicaliseEmail('a@ＥＸＡＭＰＬＥ．ｏｒｇ')).toBe('a@example.org');
    // IDNA2008: ß is a letter of its own in a domain (unlike in the local part).
    expect(canonicaliseEmail('a@straße.de')).toBe('a@straße.de');
    expect(canonicaliseEmail('a@xn--strae-oqa.de')).toBe('a@straße.de');
  });

  it('accepts a domain without a dot, as Synapse (which only splits on "@")', () => {
    expect(canonicaliseEmail('root@LocalHost')).toBe('root@localhost');
  });

  it('keeps dots and the characters of a dot-atom as given', () => {
    expect(canonicaliseEmail("a..b.@example.org")).toBe('a..b.@example.org');
    expect(canonicaliseEmail("!#$%&'*+-/=?^_`{|}~@example.org")).toBe("!#$%&'*+-/=?^_`{|}~@example.org");
  });

  it.each([
    [''],
    ['   '],
    ['a'],
    ['a@'],
    ['@b'],
    ['@'],
    ['a@b@c'],
    ['a@@b'],
    ['a b@c'],
    ['a@b c'],
    ['a@b\u0000'],
    ['\u0000a@b'],
    ['a\u0000@b'],
    ['a\u0007@b'],
    ['a\r\nBcc: x@b@c'],
    ['a\r\n@b'],
    ['a\u007f@b'],
    ['a\u200b@example.org'],
    ['a@exa\u200dmple.org'],
    ['a\u202e@example.org'],
    ['a\ud800@example.org'],
    ['"a b"@example.org'],
    ['"a"@example.org'],
    ['a,b@example.org'],
    ['a<b>@example.org'],
    ['a(comment)@example.org'],
    ['a;b@example.org'],
    ['a\\b@example.org'],
    ['a@[127.0.0.1]'],
    ['a@127.0.0.1'],
    ['a@0x7f.1'],
    ['a@example.org.'],
    ['a@.example.org'],
    ['a@example..org'],
    ['a@exa_mple.org'],
    ['a@-example.org'],
    ['a@example-.org'],
    ['a@exa%mple.org'],
    ['a@example.org,b@evil.example'],
    ['a@example.org>'],
    ['a@xn--zz.example'],
    [`a@${'x'.repeat(64)}.org`],
    ['\u037e@example.org'],
  ])('refuses %j', (raw) => {
    expect(canonicaliseEmail(raw)).toBeNull();
  });

  it('holds to the RFC 5321 lengths: 64 octets of local part, 254 in all', () => {
    const domain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.org`;
    expect(canonicaliseEmail(`${'l'.repeat(64)}@example.org`)).not.toBeNull();
    expect(canonicaliseEmail(`${'l'.repeat(65)}@example.org`)).toBeNull();
    // Octets, not characters: 32 two-octet letters fit, 33 do not.
    expect(canonicaliseEmail(`${'é'.repeat(32)}@example.org`)).not.toBeNull();
    expect(canonicaliseEmail(`${'é'.repeat(33)}@example.org`)).toBeNull();
    const fits = `${'l'.repeat(254 - domain.length - 1)}@${domain}`;
    expect(fits.length).toBe(254);
    expect(canonicaliseEmail(fits)).toBe(fits);
    expect(canonicaliseEmail(`l${fits}`)).toBeNull();
    expect(canonicaliseEmail(`a@${'d'.repeat(64)}.org`)).toBeNull();
    expect(canonicaliseEmail('a'.repeat(300))).toBeNull();
    expect(canonicaliseEmail(`${'a'.repeat(100_000)}@example.org`)).toBeNull();
  });

  it('counts the length with the domain in its punycode form too', () => {
    const label = `${'a'.repeat(54)}ü`;
    const domain = `${label}.${label}.${label}.org`;
    const address = `${'l'.repeat(64)}@${domain}`;
    // 239 octets in UTF-8, 257 characters once the domain is in punycode.
    expect(Buffer.byteLength(address)).toBeLessThanOrEqual(254);
    expect(canonicaliseDomain(domain)).toBe(domain);
    expect(canonicaliseEmail(address)).toBeNull();
    expect(canonicaliseEmail(address.slice(3))).toBe(address.slice(3));
  });

  it('refuses values that are not strings (callers pass parsed JSON)', () => {
    for (const v of [null, undefined, 42, ['a@b.org'], { a: 1 }]) expect(canonicaliseEmail(v as unknown as string)).toBeNull();
  });

  it('gives a fixed point: the canonical form canonicalises to itself', () => {
    for (const raw of ['Alice@Example.ORG', 'bob@BÜCHER.example', 'ẞtraße@x.de', 'ΑΣ@example.gr', 'İstanbul@example.tr', 'ǅ@example.org', 'ﬁ@example.org']) {
      const once = canonicaliseEmail(raw);
      expect(once).not.toBeNull();
      expect(canonicaliseEmail(once!)).toBe(once);
    }
  });

  it('folds every code point to a fixed point (the local part)', () => {
    const unstable: string[] = [];
    for (let cp = 0x21; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const once = canonicaliseEmail(`${String.fromCodePoint(cp)}@example.org`);
      if (once !== null && canonicaliseEmail(once) !== once) unstable.push(cp.toString(16));
    }
    expect(unstable).toEqual([]);
  });

  it('maps every code point of a domain to a fixed point', () => {
    const unstable: string[] = [];
    for (let cp = 0x21; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const once = canonicaliseEmail(`a@x${String.fromCodePoint(cp)}y.org`);
      if (once !== null && canonicaliseEmail(once) !== once) unstable.push(cp.toString(16));
    }
    expect(unstable).toEqual([]);
  });
});

describe('domainMatches', () => {
  // The table of ma1sd's registration policy documentation, exactly.
  it.each([
    ['*example.org', 'example.org', true],
    ['*example.org', 'sub.example.org', true],
    ['.example.org', 'example.org', false],
    ['.example.org', 'sub.example.org', true],
    ['example.org', 'example.org', true],
    ['example.org', 'sub.example.org', false],
  ])('ma1sd table: %s matches %s: %s', (pattern, domain, expected) => {
    expect(domainMatches(pattern, domain)).toBe(expected);
  });

  it('matches deeper sub-domains with * and .', () => {
    expect(domainMatches('*example.org', 'a.b.c.example.org')).toBe(true);
    expect(domainMatches('.example.org', 'a.b.c.example.org')).toBe(true);
    expect(domainMatches('example.org', 'a.b.example.org')).toBe(false);
  });

  it('matches sub-domains on a label boundary only', () => {
    expect(domainMatches('*example.org', 'notexample.org')).toBe(false);
    expect(domainMatches('*example.org', 'sub.notexample.org')).toBe(false);
    expect(domainMatches('.example.org', 'notexample.org')).toBe(false);
    expect(domainMatches('*example.org', 'example.org.evil.test')).toBe(false);
    expect(domainMatches('example.org', 'example.org.evil.test')).toBe(false);
    expect(domainMatches('*example.org', 'example.organic')).toBe(false);
  });

  it('reads *.example.org as the glob it looks like: sub-domains only', () => {
    expect(domainMatches('*.example.org', 'sub.example.org')).toBe(true);
    expect(domainMatches('*.example.org', 'example.org')).toBe(false);
  });

  it('is case-insensitive, on both sides', () => {
    expect(domainMatches('*Example.ORG', 'SUB.example.org')).toBe(true);
    expect(domainMatches('example.org', 'EXAMPLE.Org')).toBe(true);
    expect(domainMatches('.EXAMPLE.ORG', 'Example.Org')).toBe(false);
  });

  it('compares Unicode domains in canonical form, whichever spelling each side uses', () => {
    expect(domainMatches('*BÜCHER.example', 'xn--bcher-kva.example')).toBe(true);
    expect(domainMatches('.xn--bcher-kva.example', 'Shop.Bücher.example')).toBe(true);
    expect(domainMatches('bücher.example', 'buecher.example')).toBe(false);
  });

  it('matches nothing with an invalid pattern or domain', () => {
    for (const p of ['', '*', '.', '*.', 'exa*mple.org', '**example.org', 'example.org*', '..example.org', 'a b.org'])
      expect(domainMatches(p, 'example.org')).toBe(false);
    expect(domainMatches('*example.org', '')).toBe(false);
    expect(domainMatches('*example.org', 'exa mple.org')).toBe(false);
  });
});

describe('parseDomainPattern', () => {
  it('reads the three shapes and canonicalises the domain', () => {
    expect(parseDomainPattern('*Example.org')).toEqual({ kind: 'domain-and-subdomains', domain: 'example.org' });
    expect(parseDomainPattern('.xn--bcher-kva.example')).toEqual({ kind: 'subdomains', domain: 'bücher.example' });
    expect(parseDomainPattern('EXAMPLE.com')).toEqual({ kind: 'exact', domain: 'example.com' });
    expect(parseDomainPattern('*.example.com')).toEqual({ kind: 'subdomains', domain: 'example.com' });
  });

  it.each([[''], ['*'], ['.'], ['x*y.org'], ['*x*.org'], ['ex ample.org'], ['@example.org'], ['a@example.org'], ['[::1]'], ['1.2.3.4']])(
    'refuses %j',
    (p) => {
      expect(parseDomainPattern(p)).toBeNull();
    },
  );
});

describe('threepidAllowed', () => {
  it('allows everything with no rule configured', () => {
    expect(threepidAllowed(OPEN_THREEPID_POLICY, 'email', 'anyone@anywhere.test')).toBe(true);
    expect(threepidAllowed(OPEN_THREEPID_POLICY, 'msisdn', '447700900000')).toBe(true);
  });

  describe('allowed_local_3pids', () => {
    it('anchors a pattern at the start, as Python re.match: "@example" does not match "a@example.org"', () => {
      const p = policy({ allowedLocal3pids: [rule('email', '@example')] });
      expect(threepidAllowed(p, 'email', 'a@example.org')).toBe(false);
      expect(threepidAllowed(p, 'email', '@example.org')).toBe(true);
    });

    it('does not anchor at the end: a pattern without $ allows longer addresses', () => {
      const p = policy({ allowedLocal3pids: [rule('email', '.*@example\\.org')] });
      expect(threepidAllowed(p, 'email', 'a@example.org')).toBe(true);
      expect(threepidAllowed(p, 'email', 'a@example.org.evil.test')).toBe(true);
      expect(threepidAllowed(p, 'email', 'a@example.net')).toBe(false);
    });

    it('holds to ^...$ patterns, as admins mean them', () => {
      const p = policy({ allowedLocal3pids: [rule('email', '^[^@]+@example\\.org$')] });
      expect(threepidAllowed(p, 'email', 'alice@example.org')).toBe(true);
      expect(threepidAllowed(p, 'email', 'alice@example.org.evil.test')).toBe(false);
      expect(threepidAllowed(p, 'email', 'alice@sub.example.org')).toBe(false);
      expect(threepidAllowed(p, 'email', 'alice@notexample.org')).toBe(false);
    });

    it('anchors at the start even for a RegExp given with the g or y flag, and repeatedly (no lastIndex state)', () => {
      const g = /a@example\.org/gu;
      const p = policy({ allowedLocal3pids: [{ medium: 'email', pattern: g }] });
      for (let i = 0; i < 3; i++) {
        expect(threepidAllowed(p, 'email', 'a@example.org')).toBe(true);
        expect(threepidAllowed(p, 'email', 'xa@example.org')).toBe(false);
      }
    });

    it('matches case-sensitively against the canonical (lower-case) address, as Synapse', () => {
      const p = policy({ allowedLocal3pids: [rule('email', '^.*@Example\\.org$')] });
      expect(threepidAllowed(p, 'email', canonicaliseEmail('a@Example.org')!)).toBe(false);
    });

    it('needs a rule of the same medium: email rules deny every phone number', () => {
      const p = policy({ allowedLocal3pids: [rule('email', '.*')] });
      expect(threepidAllowed(p, 'email', 'a@b.org')).toBe(true);
      expect(threepidAllowed(p, 'msisdn', '447700900000')).toBe(false);
      const phones = policy({ allowedLocal3pids: [rule('msisdn', '44')] });
      expect(threepidAllowed(phones, 'msisdn', '447700900000')).toBe(true);
      expect(threepidAllowed(phones, 'msisdn', '337700900000')).toBe(false);
      expect(threepidAllowed(phones, 'email', '44@b.org')).toBe(false);
    });

    it('allows an address any one rule matches', () => {
      const p = policy({ allowedLocal3pids: [rule('email', '^[^@]+@a\\.org$'), rule('email', '^[^@]+@b\\.org$')] });
      expect(threepidAllowed(p, 'email', 'x@a.org')).toBe(true);
      expect(threepidAllowed(p, 'email', 'x@b.org')).toBe(true);
      expect(threepidAllowed(p, 'email', 'x@c.org')).toBe(false);
    });
  });

  describe('email domain lists', () => {
    it('whitelist: the ma1sd example configuration', () => {
      const p = policy({ emailDomainWhitelist: ['*example.org', '.example.net', 'example.com'] });
      const allowed = (a: string) => threepidAllowed(p, 'email', a);
      expect(allowed('a@example.org')).toBe(true);
      expect(allowed('a@sub.example.org')).toBe(true);
      expect(allowed('a@example.net')).toBe(false);
      expect(allowed('a@sub.example.net')).toBe(true);
      expect(allowed('a@example.com')).toBe(true);
      expect(allowed('a@sub.example.com')).toBe(false);
      expect(allowed('a@notexample.org')).toBe(false);
      expect(allowed('a@other.test')).toBe(false);
    });

    it('blacklist alone: everything but the listed domains', () => {
      const p = policy({ emailDomainBlacklist: ['*spam.test'] });
      expect(threepidAllowed(p, 'email', 'a@spam.test')).toBe(false);
      expect(threepidAllowed(p, 'email', 'a@x.spam.test')).toBe(false);
      expect(threepidAllowed(p, 'email', 'a@nospam.test')).toBe(true);
    });

    it('both lists: on the whitelist and not on the blacklist', () => {
      const p = policy({ emailDomainWhitelist: ['*example.org'], emailDomainBlacklist: ['guests.example.org', '.temp.example.org'] });
      const allowed = (a: string) => threepidAllowed(p, 'email', a);
      expect(allowed('a@example.org')).toBe(true);
      expect(allowed('a@staff.example.org')).toBe(true);
      expect(allowed('a@guests.example.org')).toBe(false);
      expect(allowed('a@x.temp.example.org')).toBe(false);
      expect(allowed('a@temp.example.org')).toBe(true);
      expect(allowed('a@example.net')).toBe(false);
    });

    it('an empty whitelist allows no address (fail closed); an empty blacklist denies none', () => {
      expect(threepidAllowed(policy({ emailDomainWhitelist: [] }), 'email', 'a@example.org')).toBe(false);
      expect(threepidAllowed(policy({ emailDomainBlacklist: [] }), 'email', 'a@example.org')).toBe(true);
    });

    it('takes the domain after the last "@" and compares Unicode domains canonically', () => {
      const p = policy({ emailDomainWhitelist: ['*bücher.example'] });
      expect(threepidAllowed(p, 'email', canonicaliseEmail('bob@XN--BCHER-KVA.example')!)).toBe(true);
      expect(threepidAllowed(p, 'email', 'bücher.example@evil.test')).toBe(false);
      expect(threepidAllowed(p, 'email', 'not-an-address')).toBe(false);
    });

    it('applies to email only', () => {
      const p = policy({ emailDomainWhitelist: [] });
      expect(threepidAllowed(p, 'msisdn', '447700900000')).toBe(true);
    });
  });

  it('needs every configured rule: allowed_local_3pids and the lists together', () => {
    const p = policy({ allowedLocal3pids: [rule('email', '^staff\\.')], emailDomainWhitelist: ['*example.org'] });
    expect(threepidAllowed(p, 'email', 'staff.a@example.org')).toBe(true);
    expect(threepidAllowed(p, 'email', 'a@example.org')).toBe(false);
    expect(threepidAllowed(p, 'email', 'staff.a@example.net')).toBe(false);
  });
});
