// Third-party identifiers (3PIDs, spec: appendices "3PID Types"): the
// canonical form of an email address, the client_secret grammar, and the
// registration policy that says which addresses may be used (Synapse's
// `allowed_local_3pids`, ma1sd's email domain lists). Pure functions, no I/O.

import { domainToASCII, domainToUnicode } from 'node:url';

/** The client_secret grammar of the spec: [0-9a-zA-Z.=_-], 1 to 255 characters. */
export const CLIENT_SECRET_RE = /^[0-9a-zA-Z.=_-]{1,255}$/;

/** The 3PID media Synapse knows (spec: appendices, "3PID Types"). */
export const THREEPID_MEDIA = ['email', 'msisdn'] as const;

/** RFC 5321 §4.5.3.1: a local part of at most 64 octets, a path of at most 256 (254 without the angle brackets). */
const MAX_LOCAL_PART_OCTETS = 64;
const MAX_ADDRESS_OCTETS = 254;
/** RFC 1035: a domain name of at most 253 characters in text form, labels of 1 to 63. */
const MAX_DOMAIN_LENGTH = 253;
const ASCII_LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Characters an address never holds: white space and separators, controls,
 * format characters (zero-width joiners, bidi overrides: invisible, used to
 * spoof), lone surrogates, private-use and unassigned code points.
 */
const NEVER_IN_ADDRESS_RE = /[\s\p{Z}\p{C}]/u;
/**
 * RFC 5322's specials that a dot-atom local part cannot hold (they need a
 * quoted string, which Gatehouse does not accept): a mail library would read
 * `a,b@x` or `a<b>@x` as other recipients.
 */
const LOCAL_PART_SPECIALS_RE = /[()<>[\]:;@\\,"]/;

const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Python's `str.casefold()`, as Synapse's canonicalise_email applies to the
 * local part: JavaScript has no full case folding, and lower(upper(lower(s)))
 * gives it for everything but a few letters (dotless ı becomes i, the Greek
 * final sigma stays ς, Cherokee folds to lower case). The first lower() makes
 * ẞ (capital sharp s) fold to "ss" as ß does, so the result is a fixed point.
 */
function casefold(s: string): string {
  return s.toLowerCase().toUpperCase().toLowerCase();
}

/**
 * The canonical form of a domain: UTS #46 (as URLs do: node:url's
 * domainToASCII) maps it (lower case, NFC, full-width dots...), and the
 * Unicode form of the result is the canonical one, so "BÜCHER.example" and
 * "xn--bcher-kva.example" are both "bücher.example". Returns null for what
 * cannot be a mail domain: a name domainToASCII refuses, a label outside
 * letters, digits and inner hyphens (in its ASCII form, so no "_", no empty
 * label, no trailing dot), an invalid punycode label, an all-numeric last
 * label (an IPv4 address, which URL parsing would also rewrite: "0x7f.1" is
 * 127.0.0.1), more than 253 characters. A domain without a dot (localhost)
 * is accepted, as Synapse (which only splits on "@").
 */
export function canonicaliseDomain(raw: string): string | null {
  if (raw === '' || NEVER_IN_ADDRESS_RE.test(raw)) return null;
  const ascii = domainToASCII(raw);
  if (ascii === '' || ascii.length > MAX_DOMAIN_LENGTH) return null;
  const labels = ascii.split('.');
  if (!labels.every((l) => ASCII_LABEL_RE.test(l))) return null;
  if (/^\d+$/.test(labels[labels.length - 1]!)) return null;
  const unicode = domainToUnicode(ascii).normalize('NFC');
  // A label that stays "xn--" once decoded is not valid punycode.
  if (unicode === '' || unicode.split('.').some((l) => l.startsWith('xn--'))) return null;
  return unicode;
}

/**
 * The canonical form of an email address, the one stored and compared
 * (spec: appendices "3PID Types": addresses are compared case-insensitively;
 * MSC2265). Returns null for what is not an address.
 *
 * - Surrounding white space is trimmed, then the address must hold exactly
 *   one "@" (as Synapse, which splits on it), with a non-empty local part
 *   and domain on either side.
 * - The local part is case-folded as Synapse's canonicalise_email does
 *   (Python's casefold: "Alice" → "alice", "ß" → "ss"; see `casefold`) and
 *   NFC-normalised (RFC 6532 §3.1), at most 64 octets in UTF-8.
 * - The domain takes its canonical Unicode form (`canonicaliseDomain`:
 *   lower case, NFC, punycode decoded), so Unicode domains are accepted and
 *   compare equal to their punycode spelling (Synapse 1.67 answers a 500).
 * - The whole is at most 254 octets (RFC 5321), in UTF-8 and with the
 *   domain in ASCII (punycode) form alike.
 * - Refused (null): white space, controls, format characters (zero-width,
 *   bidi) or lone surrogates anywhere inside; RFC 5322 specials in the local
 *   part — `( ) < > [ ] : ; \ , "` — so quoted local parts (`"a b"@x`) are
 *   not accepted, which Synapse does not check but a mail library would read
 *   as several recipients; IP-address domains (`a@[1.2.3.4]`, `a@1.2.3.4`).
 * - Dots in the local part are kept as given, anywhere (some providers hand
 *   out `a..b@`): only the receiving server knows what they mean.
 */
export function canonicaliseEmail(raw: string): string | null {
  if (typeof raw !== 'string') return null;
  const address = raw.trim();
  if (NEVER_IN_ADDRESS_RE.test(address)) return null;
  const parts = address.split('@');
  if (parts.length !== 2) return null;
  const [rawLocal, rawDomain] = parts as [string, string];
  const local = casefold(rawLocal.normalize('NFC')).normalize('NFC');
  // Checked on the folded form: NFC maps some characters onto specials (U+037E is ";").
  if (local === '' || LOCAL_PART_SPECIALS_RE.test(local) || NEVER_IN_ADDRESS_RE.test(local)) return null;
  if (utf8Length(local) > MAX_LOCAL_PART_OCTETS) return null;
  const domain = canonicaliseDomain(rawDomain);
  if (domain === null) return null;
  const canonical = `${local}@${domain}`;
  if (utf8Length(canonical) > MAX_ADDRESS_OCTETS || utf8Length(`${local}@${domainToASCII(domain)}`) > MAX_ADDRESS_OCTETS) return null;
  return canonical;
}

/** What a ma1sd domain pattern matches. */
export interface DomainPattern {
  /** `exact`: the domain; `subdomains`: its sub-domains only; `domain-and-subdomains`: both. */
  kind: 'exact' | 'subdomains' | 'domain-and-subdomains';
  /** Canonical (`canonicaliseDomain`). */
  domain: string;
}

/**
 * Parses a ma1sd domain pattern (its registration policy, "Domain
 * whitelist/blacklist"): `*example.org` (the domain and its sub-domains),
 * `.example.org` (sub-domains only), `example.org` (exact). `*.example.org`
 * is read as the glob it looks like: sub-domains only. `*` may only come
 * first. Returns null when the pattern is not one of these shapes or its
 * domain does not canonicalise.
 */
export function parseDomainPattern(pattern: string): DomainPattern | null {
  if (typeof pattern !== 'string') return null;
  let rest = pattern.trim();
  let kind: DomainPattern['kind'] = 'exact';
  if (rest.startsWith('*')) {
    kind = 'domain-and-subdomains';
    rest = rest.slice(1);
  }
  if (rest.startsWith('.')) {
    kind = 'subdomains';
    rest = rest.slice(1);
  }
  if (rest.includes('*')) return null;
  const domain = canonicaliseDomain(rest);
  return domain === null ? null : { kind, domain };
}

/** The canonical text of a pattern: `*bücher.example` for `*BÜCHER.example` or `*xn--bcher-kva.example`. */
export function formatDomainPattern(p: DomainPattern): string {
  return { exact: '', subdomains: '.', 'domain-and-subdomains': '*' }[p.kind] + p.domain;
}

/**
 * A domain pattern of ma1sd: `*example.org` (the domain and its sub-domains),
 * `.example.org` (sub-domains only), `example.org` (exact). Case-insensitive;
 * Unicode domains compared in canonical form. Sub-domains are matched on a
 * label boundary: `*example.org` does not match `notexample.org`. False when
 * the pattern or the domain is not valid.
 */
export function domainMatches(pattern: string, domain: string): boolean {
  const p = parseDomainPattern(pattern);
  const d = typeof domain === 'string' ? canonicaliseDomain(domain) : null;
  if (p === null || d === null) return false;
  const isSub = d.endsWith(`.${p.domain}`);
  switch (p.kind) {
    case 'exact':
      return d === p.domain;
    case 'subdomains':
      return isSub;
    case 'domain-and-subdomains':
      return d === p.domain || isSub;
  }
}

export interface ThreepidPolicy {
  /** Synapse's allowed_local_3pids: empty = no restriction. Each pattern matched as Python's re.match does: anchored at the start only. */
  allowedLocal3pids: { medium: string; pattern: RegExp }[];
  /** ma1sd's register.policy.threepid.email.domain lists, canonicalised; null = not given. */
  emailDomainWhitelist: string[] | null;
  emailDomainBlacklist: string[] | null;
}

/** The policy that restricts nothing. */
export const OPEN_THREEPID_POLICY: ThreepidPolicy = Object.freeze({
  allowedLocal3pids: [],
  emailDomainWhitelist: null,
  emailDomainBlacklist: null,
}) as ThreepidPolicy;

/** Sticky copies of the patterns: a sticky RegExp matches only at lastIndex, which is Python's re.match. */
const stickyCopies = new WeakMap<RegExp, RegExp>();

/** Python's `re.match(pattern, s)`: a match that starts at 0 and may end anywhere. */
function matchesAtStart(pattern: RegExp, s: string): boolean {
  let sticky = stickyCopies.get(pattern);
  if (sticky === undefined) {
    sticky = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '') + 'y');
    stickyCopies.set(pattern, sticky);
  }
  sticky.lastIndex = 0;
  return sticky.test(s);
}

/**
 * Whether `address` (already canonical) of `medium` may be used: every
 * configured rule must allow it.
 *
 * - `allowedLocal3pids` (as Synapse's check_3pid_allowed): when not empty,
 *   some entry of the same medium must match at the start of the address
 *   (`^` is implied, `$` is not: "a@example" matches a@example.org.evil).
 *   The address is canonical (lower case), and matching is case-sensitive,
 *   as in Synapse.
 * - The email domain lists (ma1sd's) apply to medium `email` only; the
 *   domain is what follows the last "@". With a whitelist, some pattern must
 *   match (an empty whitelist allows nothing); with a blacklist, none may.
 */
export function threepidAllowed(policy: ThreepidPolicy, medium: string, address: string): boolean {
  const rules = policy.allowedLocal3pids;
  if (rules.length > 0 && !rules.some((r) => r.medium === medium && matchesAtStart(r.pattern, address))) return false;
  if (medium !== 'email') return true;
  const { emailDomainWhitelist: white, emailDomainBlacklist: black } = policy;
  if (white === null && black === null) return true;
  const at = address.lastIndexOf('@');
  if (at < 0) return false; // not an address: no domain to hold to the lists
  const domain = address.slice(at + 1);
  if (white !== null && !white.some((p) => domainMatches(p, domain))) return false;
  if (black !== null && black.some((p) => domainMatches(p, domain))) return false;
  return true;
}
