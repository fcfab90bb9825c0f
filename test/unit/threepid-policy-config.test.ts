// The registration policy's configuration (issue 14): Synapse's
// allowed_local_3pids and ma1sd's register.policy.threepid.email.domain lists
// (and the register.threepid.email.domain spelling of its prose). Every doubt
// is an error naming the key: a policy read wrongly would let addresses in.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { Section } from '../../src/config/load.js';
import { threepidPolicyConfig } from '../../src/config/threepid-policy.js';
import { threepidAllowed, type ThreepidPolicy } from '../../src/domain/threepids.js';

interface Parsed {
  policy: ThreepidPolicy;
  errors: string[];
  warnings: string[];
}

/** Parses `raw` as a homeserver.yaml root, as buildConfig does: the policy, the problems and the unknown-key warnings. */
function parse(raw: Record<string, unknown>): Parsed {
  const errors: string[] = [];
  const sections: Section[] = [];
  const track = (s: Section) => (sections.push(s), s);
  const root = track(new Section(raw, '', errors));
  const policy = threepidPolicyConfig(root, track, errors);
  // Only the keys this parser reads: the rest of a homeserver.yaml is load.ts's.
  const warnings = sections.flatMap((s) => s.unknownKeys()).filter((k) => k.startsWith('allowed_local_3pids') || k.startsWith('register'));
  return { policy, errors, warnings };
}

/** The policy of a config that must be accepted without a warning. */
function accepted(raw: Record<string, unknown>): ThreepidPolicy {
  const { policy, errors, warnings } = parse(raw);
  expect(errors).toEqual([]);
  expect(warnings).toEqual([]);
  return policy;
}

/** The problems of a config that must be refused. */
function refused(raw: Record<string, unknown>): string[] {
  const { errors } = parse(raw);
  expect(errors.length).toBeGreaterThan(0);
  return errors;
}

const domainLists = (lists: Record<string, unknown>) => ({ register: { policy: { threepid: { email: { domain: lists } } } } });
const proseLists = (lists: Record<string, unknown>) => ({ register: { threepid: { email: { domain: lists } } } });

describe('defaults', () => {
  it('restricts nothing when no key is given', () => {
    const policy = accepted({});
    expect(policy).toEqual({ allowedLocal3pids: [], emailDomainWhitelist: null, emailDomainBlacklist: null });
    expect(threepidAllowed(policy, 'email', 'anyone@anywhere.test')).toBe(true);
  });

  it('reads YAML empty values (null) and [] as not restricting', () => {
    expect(accepted({ allowed_local_3pids: null, register: null })).toEqual({ allowedLocal3pids: [], emailDomainWhitelist: null, emailDomainBlacklist: null });
    expect(accepted({ allowed_local_3pids: [] }).allowedLocal3pids).toEqual([]);
    expect(accepted(domainLists({ whitelist: null, blacklist: null }))).toMatchObject({ emailDomainWhitelist: null, emailDomainBlacklist: null });
  });
});

describe('allowed_local_3pids', () => {
  it('compiles each {medium, pattern}; matching starts at the address start (re.match)', () => {
    const policy = accepted({
      allowed_local_3pids: [
        { medium: 'email', pattern: '^[^@]+@example\\.org$' },
        { medium: 'msisdn', pattern: '44' },
      ],
    });
    expect(policy.allowedLocal3pids.map((r) => [r.medium, r.pattern.source])).toEqual([
      ['email', '^[^@]+@example\\.org$'],
      ['msisdn', '44'],
    ]);
    expect(threepidAllowed(policy, 'email', 'a@example.org')).toBe(true);
    expect(threepidAllowed(policy, 'email', 'a@example.org.evil.test')).toBe(false);
    expect(threepidAllowed(policy, 'msisdn', '447700900000')).toBe(true);
    expect(threepidAllowed(policy, 'msisdn', '3344')).toBe(false);
  });

  it('reads a Synapse homeserver.yaml fragment as written', () => {
    const raw = parseYaml(`
allowed_local_3pids:
  - medium: email
    pattern: '^[^@]+@matrix\\.org$'
  - medium: email
    pattern: '^[^@]+@vector\\.im$'
`) as Record<string, unknown>;
    const policy = accepted(raw);
    expect(threepidAllowed(policy, 'email', 'x@vector.im')).toBe(true);
    expect(threepidAllowed(policy, 'email', 'x@matrix.org')).toBe(true);
    expect(threepidAllowed(policy, 'email', 'x@example.org')).toBe(false);
  });

  it('refuses a pattern JavaScript cannot compile, naming its index', () => {
    const errors = refused({ allowed_local_3pids: [{ medium: 'email', pattern: '.*' }, { medium: 'email', pattern: '^(unclosed' }] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^allowed_local_3pids\[1\]\.pattern: not a JavaScript regular expression/);
  });

  it.each([['(?P<user>[^@]+)@example\\.org'], ['(?i)^.*@example\\.org$'], ['^[^\\@]+\\@example\\.org$'], ['[']])(
    'refuses the pattern %j (Python-only or invalid syntax), never matching it some other way',
    (pattern) => {
      const errors = refused({ allowed_local_3pids: [{ medium: 'email', pattern }] });
      expect(errors).toEqual([expect.stringMatching(/^allowed_local_3pids\[0\]\.pattern: not a JavaScript regular expression/)]);
    },
  );

  it('refuses an unknown medium', () => {
    expect(refused({ allowed_local_3pids: [{ medium: 'phone', pattern: '.*' }] })).toEqual([
      'allowed_local_3pids[0].medium: expected email or msisdn, got "phone"',
    ]);
    expect(refused({ allowed_local_3pids: [{ medium: 'Email', pattern: '.*' }] })[0]).toMatch(/^allowed_local_3pids\[0\]\.medium: /);
  });

  it('refuses an entry without a medium or a pattern', () => {
    expect(refused({ allowed_local_3pids: [{ pattern: '.*' }] })).toEqual([expect.stringMatching(/^allowed_local_3pids\[0\]\.medium: required/)]);
    expect(refused({ allowed_local_3pids: [{ medium: 'email' }] })).toEqual([expect.stringMatching(/^allowed_local_3pids\[0\]\.pattern: required/)]);
    expect(refused({ allowed_local_3pids: [{ medium: 'email', pattern: null }] })).toEqual([
      expect.stringMatching(/^allowed_local_3pids\[0\]\.pattern: required/),
    ]);
  });

  it.each([
    [{ allowed_local_3pids: 'email' }, 'allowed_local_3pids: expected a list'],
    [{ allowed_local_3pids: { medium: 'email', pattern: '.*' } }, 'allowed_local_3pids: expected a list'],
    [{ allowed_local_3pids: true }, 'allowed_local_3pids: expected a list'],
    [{ allowed_local_3pids: ['^.*@example\\.org$'] }, 'allowed_local_3pids[0]: expected a mapping'],
    [{ allowed_local_3pids: [null] }, 'allowed_local_3pids[0]: expected a mapping'],
    [{ allowed_local_3pids: [{ medium: 'email', pattern: 42 }] }, 'allowed_local_3pids[0].pattern: expected a string, got number'],
    [{ allowed_local_3pids: [{ medium: ['email'], pattern: '.*' }] }, 'allowed_local_3pids[0].medium: expected a string, got object'],
  ])('refuses %j', (raw, problem) => {
    expect(refused(raw)).toEqual([problem]);
  });

  it('reports every bad entry at once and keeps none of them', () => {
    const { policy, errors } = parse({
      allowed_local_3pids: [{ medium: 'email', pattern: '^ok@' }, { medium: 'fax', pattern: '.*' }, { medium: 'email', pattern: '(' }, 'x'],
    });
    expect(errors.map((e) => e.split(':')[0])).toEqual(['allowed_local_3pids[1].medium', 'allowed_local_3pids[2].pattern', 'allowed_local_3pids[3]']);
    expect(policy.allowedLocal3pids.map((r) => r.pattern.source)).toEqual(['^ok@']);
  });

  it('warns about other keys of an entry (they restrict nothing)', () => {
    const { errors, warnings } = parse({ allowed_local_3pids: [{ medium: 'email', pattern: '.*', comment: 'staff' }] });
    expect(errors).toEqual([]);
    expect(warnings).toEqual(['allowed_local_3pids[0].comment']);
  });
});

describe('register.policy.threepid.email.domain', () => {
  it('reads the ma1sd documentation example', () => {
    const raw = parseYaml(`
register:
  policy:
    threepid:
      email:
        domain:
          whitelist:
            - '*example.org'
            - '.example.net'
            - 'example.com'
`) as Record<string, unknown>;
    const policy = accepted(raw);
    expect(policy.emailDomainWhitelist).toEqual(['*example.org', '.example.net', 'example.com']);
    expect(policy.emailDomainBlacklist).toBeNull();
    expect(threepidAllowed(policy, 'email', 'a@sub.example.org')).toBe(true);
    expect(threepidAllowed(policy, 'email', 'a@example.net')).toBe(false);
  });

  it('canonicalises the patterns (case, punycode, *.x as .x)', () => {
    const policy = accepted(domainLists({ whitelist: ['*Example.ORG', '.xn--bcher-kva.example', '*.Example.Net'], blacklist: ['BÜCHER.example'] }));
    expect(policy.emailDomainWhitelist).toEqual(['*example.org', '.bücher.example', '.example.net']);
    expect(policy.emailDomainBlacklist).toEqual(['bücher.example']);
  });

  it('gives both lists: on the whitelist and not on the blacklist', () => {
    const policy = accepted(domainLists({ whitelist: ['*example.org'], blacklist: ['guests.example.org'] }));
    expect(threepidAllowed(policy, 'email', 'a@staff.example.org')).toBe(true);
    expect(threepidAllowed(policy, 'email', 'a@guests.example.org')).toBe(false);
    expect(threepidAllowed(policy, 'email', 'a@example.net')).toBe(false);
  });

  it('keeps an empty whitelist: no address may register (fail closed)', () => {
    const policy = accepted(domainLists({ whitelist: [] }));
    expect(policy.emailDomainWhitelist).toEqual([]);
    expect(threepidAllowed(policy, 'email', 'a@example.org')).toBe(false);
  });

  it('accepts the spelling of ma1sd prose: register.threepid.email.domain', () => {
    const policy = accepted(proseLists({ whitelist: ['example.org'], blacklist: ['*spam.test'] }));
    expect(policy.emailDomainWhitelist).toEqual(['example.org']);
    expect(policy.emailDomainBlacklist).toEqual(['*spam.test']);
  });

  it('refuses lists given under both spellings', () => {
    const errors = refused({
      register: { policy: { threepid: { email: { domain: { whitelist: ['a.org'] } } } }, threepid: { email: { domain: { blacklist: ['b.org'] } } } },
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^register\.threepid\.email\.domain: .*both.*register\.policy\.threepid\.email\.domain/);
  });

  it.each([
    ['*'],
    ['.'],
    [''],
    ['exa*mple.org'],
    ['example.*'],
    ['**example.org'],
    ['user@example.org'],
    ['example org'],
    ['exa_mple.org'],
    ['[127.0.0.1]'],
    ['10.0.0.1'],
  ])('refuses the pattern %j, naming the list and index', (pattern) => {
    const errors = refused(domainLists({ blacklist: ['ok.org', pattern] }));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.startsWith(`register.policy.threepid.email.domain.blacklist[1]: ${JSON.stringify(pattern)} is not a domain pattern`)).toBe(true);
  });

  it.each([[42], [null], [['example.org']], [{ domain: 'example.org' }], [true]])('refuses the list entry %j', (entry) => {
    const errors = refused(proseLists({ whitelist: [entry] }));
    expect(errors).toEqual([expect.stringMatching(/^register\.threepid\.email\.domain\.whitelist\[0\]: .* is not a domain pattern/)]);
  });

  it('refuses a list that is not a list', () => {
    expect(refused(domainLists({ whitelist: 'example.org' }))).toEqual(['register.policy.threepid.email.domain.whitelist: expected a list']);
    expect(refused(domainLists({ blacklist: { a: 1 } }))).toEqual(['register.policy.threepid.email.domain.blacklist: expected a list']);
  });

  it.each([
    [{ register: 'yes' }, 'register: expected a mapping'],
    [{ register: { policy: [] } }, 'register.policy: expected a mapping'],
    [{ register: { policy: { threepid: 'email' } } }, 'register.policy.threepid: expected a mapping'],
    [{ register: { threepid: { email: 1 } } }, 'register.threepid.email: expected a mapping'],
    [{ register: { policy: { threepid: { email: { domain: ['example.org'] } } } } }, 'register.policy.threepid.email.domain: expected a mapping'],
  ])('refuses %j', (raw, problem) => {
    expect(refused(raw)).toEqual([problem]);
  });

  it('refuses unknown keys at every level: a misspelt key would lift the restriction', () => {
    expect(refused(domainLists({ whitelst: ['example.org'] }))).toEqual([
      'register.policy.threepid.email.domain.whitelst: unknown key (expected whitelist, blacklist)',
    ]);
    expect(refused({ register: { policy: { threepid: { emial: { domain: { whitelist: [] } } } } } })).toEqual([
      'register.policy.threepid.emial: unknown key (expected email)',
    ]);
    expect(refused({ register: { polcy: { threepid: {} } } })).toEqual(['register.polcy: unknown key (expected allowed, invite, policy, threepid)']);
    expect(refused({ register: { policy: { threepids: {} } } })).toEqual(['register.policy.threepids: unknown key (expected threepid)']);
    expect(refused({ register: { threepid: { email: { domains: {} } } } })).toEqual(['register.threepid.email.domains: unknown key (expected domain)']);
    // ma1sd's policy covers email only.
    expect(refused({ register: { policy: { threepid: { msisdn: { whitelist: ['44'] } } } } })).toEqual([
      'register.policy.threepid.msisdn: unknown key (expected email)',
    ]);
  });
});

describe('register.allowed and register.invite', () => {
  it('accepts register.allowed: true and register.invite (which only widens), quietly', () => {
    expect(accepted({ register: { allowed: true, invite: true } })).toEqual({
      allowedLocal3pids: [],
      emailDomainWhitelist: null,
      emailDomainBlacklist: null,
    });
    accepted({ register: { invite: false } });
    accepted({ register: { allowed: null } });
  });

  it.each([[false], ['false'], ['no'], [0], [{}]])('refuses register.allowed: %j (it would restrict, and is not read)', (value) => {
    expect(refused({ register: { allowed: value } })).toEqual([
      'register.allowed: not supported yet (Gatehouse never reads it); use registrations_require_3pid',
    ]);
  });

  it('reports register.allowed with the other problems', () => {
    const errors = refused({ register: { allowed: false, policy: { threepid: { email: { domain: { whitelist: ['*'] } } } } } });
    expect(errors.map((e) => e.split(':')[0])).toEqual(['register.allowed', 'register.policy.threepid.email.domain.whitelist[0]']);
  });
});

describe('docs/admin-guide.md', () => {
  it('gives examples that load and do what the guide says', () => {
    const guide = readFileSync(new URL('../../docs/admin-guide.md', import.meta.url), 'utf8');
    const start = guide.indexOf('### Which email addresses may register');
    const part = guide.slice(start, guide.indexOf('\n### ', start + 1));
    const blocks = [...part.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parseYaml(m[1]!) as Record<string, unknown>);
    expect(blocks).toHaveLength(2);
    const lists = accepted(blocks[0]!);
    const byList = (a: string) => threepidAllowed(lists, 'email', a);
    expect([byList('a@example.org'), byList('a@sub.example.org'), byList('a@notexample.org')]).toEqual([true, true, false]);
    expect([byList('a@example.net'), byList('a@x.example.net'), byList('a@example.com'), byList('a@x.example.com')]).toEqual([false, true, true, false]);
    expect(byList('a@guests.example.org')).toBe(false);
    const regexes = accepted(blocks[1]!);
    const byRegex = (a: string) => threepidAllowed(regexes, 'email', a);
    expect([byRegex('a@example.org'), byRegex('a@example.org.evil.test'), byRegex('a@sub.example.org')]).toEqual([true, false, false]);
    expect([byRegex('a@example.net'), byRegex('a@b.c.example.net'), byRegex('a@notexample.net')]).toEqual([true, true, false]);
    expect(threepidAllowed(regexes, 'msisdn', '447700900000')).toBe(false);
  });
});

describe('docs/configuration.md', () => {
  it('documents every key this parser reads', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const keys = [
      'allowed_local_3pids',
      'allowed_local_3pids[].medium',
      'allowed_local_3pids[].pattern',
      'register.policy.threepid.email.domain.whitelist',
      'register.policy.threepid.email.domain.blacklist',
      'register.threepid.email.domain.whitelist',
      'register.threepid.email.domain.blacklist',
      'register.allowed',
      'register.invite',
    ];
    expect(keys.filter((k) => !doc.includes(`\`${k}\``))).toEqual([]);
  });
});
