// Which third-party identifiers may be used (registration, adding an
// address): Synapse's `allowed_local_3pids` and ma1sd's email domain lists
// (`register.policy.threepid.email.domain.{whitelist,blacklist}`, or the
// `register.threepid.email.domain` spelling its documentation also uses).
// Both restrict, so every doubt is an error, never a warning: a misspelt key
// or a pattern Gatehouse cannot read would let through addresses the admin
// meant to keep out.

import type { Section } from './load.js';
import { formatDomainPattern, parseDomainPattern, THREEPID_MEDIA, type ThreepidPolicy } from '../domain/threepids.js';

/**
 * Synapse's `allowed_local_3pids`: a list of `{medium, pattern}`. Patterns
 * are compiled as JavaScript regular expressions in Unicode mode (`u`);
 * threepidAllowed anchors them at the start only, as Python's re.match.
 */
function allowedLocal3pids(root: Section, track: (s: Section) => Section, errors: string[]): ThreepidPolicy['allowedLocal3pids'] {
  const rules: ThreepidPolicy['allowedLocal3pids'] = [];
  (root.list('allowed_local_3pids') ?? []).forEach((entry, i) => {
    const path = `allowed_local_3pids[${i}]`;
    const s = root.child(entry, `allowed_local_3pids[${i}]`);
    if (!s) return;
    // Other keys restrict nothing here (a missing medium or pattern is an error of its own): warnings.
    track(s);
    const medium = s.optionalString('medium');
    const source = s.optionalString('pattern');
    const knownMedium = medium !== null && (THREEPID_MEDIA as readonly string[]).includes(medium);
    if (medium === null && !s.has('medium')) errors.push(`${path}.medium: required (${THREEPID_MEDIA.join(' or ')})`);
    else if (medium !== null && !knownMedium) errors.push(`${path}.medium: expected ${THREEPID_MEDIA.join(' or ')}, got ${JSON.stringify(medium)}`);
    if (source === null && !s.has('pattern')) errors.push(`${path}.pattern: required (a regular expression the address must match from its start)`);
    if (medium === null || !knownMedium || source === null) return;
    let pattern: RegExp;
    try {
      pattern = new RegExp(source, 'u');
    } catch (e) {
      errors.push(
        `${path}.pattern: not a JavaScript regular expression (Unicode mode): ${(e as Error).message}. ` +
          'Python-only syntax such as (?P<name>...), (?i) or \\@ must be rewritten',
      );
      return;
    }
    rules.push({ medium, pattern });
  });
  return rules;
}

/** A domain list (`whitelist` or `blacklist`) of `s`: canonical patterns, or null when not given. */
function domainList(s: Section, k: 'whitelist' | 'blacklist', path: string, errors: string[]): string[] | null {
  const list = s.list(k);
  if (list === null) return null;
  const patterns: string[] = [];
  list.forEach((raw, i) => {
    const parsed = typeof raw === 'string' ? parseDomainPattern(raw) : null;
    if (parsed === null)
      errors.push(
        `${path}.${k}[${i}]: ${JSON.stringify(raw)} is not a domain pattern ` +
          '(*example.org for the domain and its sub-domains, .example.org for sub-domains only, example.org for the domain alone)',
      );
    else patterns.push(formatDomainPattern(parsed));
  });
  return patterns;
}

/** Reports the keys of `s` other than `expected` as errors (a misspelt key would lift a restriction). */
function refuseUnknownKeys(s: Section, expected: string[], errors: string[]): void {
  for (const k of s.unknownKeys()) errors.push(`${k}: unknown key (expected ${expected.join(', ')})`);
}

interface DomainLists {
  whitelist: string[] | null;
  blacklist: string[] | null;
}

/** `<base>.threepid.email.domain.{whitelist,blacklist}` below `parent`, every level checked for unknown keys. */
function emailDomainLists(parent: Section, base: string, errors: string[]): DomainLists {
  const threepid = parent.section('threepid');
  const email = threepid.section('email');
  const domain = email.section('domain');
  const path = `${base}.threepid.email.domain`;
  const lists = { whitelist: domainList(domain, 'whitelist', path, errors), blacklist: domainList(domain, 'blacklist', path, errors) };
  refuseUnknownKeys(domain, ['whitelist', 'blacklist'], errors);
  refuseUnknownKeys(email, ['domain'], errors);
  // ma1sd's policy covers email only.
  refuseUnknownKeys(threepid, ['email'], errors);
  return lists;
}

/**
 * ma1sd's `register` section. Only the email domain lists are implemented:
 * `register.invite` only widens (registration with an address that has a
 * pending 3PID invite) and is ignored; `register.allowed` other than true
 * would close non-3PID registration, which Gatehouse does not read, so it
 * stops the server (never more open than the config says).
 */
function registerPolicy(root: Section, errors: string[]): DomainLists {
  const reg = root.section('register');
  reg.accept('invite', 'allowed');
  if (reg.has('allowed') && reg.peek('allowed') !== true)
    errors.push('register.allowed: not supported yet (Gatehouse never reads it); use registrations_require_3pid');
  const policy = reg.section('policy');
  const spelled = emailDomainLists(policy, 'register.policy', errors);
  refuseUnknownKeys(policy, ['threepid'], errors);
  // The spelling of ma1sd's prose (its example nests the lists under `policy`).
  const prose = emailDomainLists(reg, 'register', errors);
  refuseUnknownKeys(reg, ['allowed', 'invite', 'policy', 'threepid'], errors);
  const givesLists = (l: DomainLists) => l.whitelist !== null || l.blacklist !== null;
  if (givesLists(spelled) && givesLists(prose)) {
    errors.push(
      'register.threepid.email.domain: the domain lists are given both here and under register.policy.threepid.email.domain; keep one place',
    );
  }
  return givesLists(spelled) ? spelled : prose;
}

/** Parses allowed_local_3pids and register.policy.threepid.email.domain.{whitelist,blacklist}. Problems go to errors with the key path. */
export function threepidPolicyConfig(root: Section, track: (s: Section) => Section, errors: string[]): ThreepidPolicy {
  const allowed = allowedLocal3pids(root, track, errors);
  const lists = registerPolicy(root, errors);
  return { allowedLocal3pids: allowed, emailDomainWhitelist: lists.whitelist, emailDomainBlacklist: lists.blacklist };
}
