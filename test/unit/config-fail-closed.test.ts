// Configuration never fails open: every Synapse key that would restrict who
// may register, sign in or read, and that Gatehouse does not implement, stops
// the server when its value restricts, naming the key; a value that restricts
// nothing is an ordinary (ignored) key.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { RESTRICTIVE_KEYS } from '../../src/config/restrictive-keys.js';

const BASE = '/etc/gatehouse';

/**
 * For every key of the table: values that restrict (including values of the
 * wrong type: unknown means closed) and values that restrict nothing (null is
 * YAML's empty value, "the default").
 */
const SAMPLES: Record<string, { restricting: unknown[]; harmless: unknown[] }> = {
  enable_registration_captcha: { restricting: [true, 'yes'], harmless: [false, null] },
  app_service_config_files: { restricting: [['/etc/synapse/bridge.yaml'], '/etc/synapse/bridge.yaml'], harmless: [[], null] },
  'password_config.enabled': { restricting: ['only_for_reauth'], harmless: [true, false, null] },
  'password_config.localdb_enabled': { restricting: [false, 'false'], harmless: [true, null] },
  matrix_authentication_service: {
    restricting: [{ enabled: true, endpoint: 'http://localhost:8080/', secret: 'a-secret' }, { enabled: 'yes' }, 'on'],
    harmless: [{ enabled: false, endpoint: 'http://localhost:8080/' }, {}, null],
  },
  'experimental_features.msc3861': {
    restricting: [{ enabled: true, issuer: 'https://auth.example.org/' }, [true]],
    harmless: [{ enabled: false }, {}, null],
  },
  account_validity: { restricting: [{ enabled: true, period: '6w' }, true], harmless: [{ enabled: false, period: '6w' }, {}, null] },
  hs_disabled: { restricting: [true], harmless: [false, null] },
  limit_usage_by_mau: { restricting: [true], harmless: [false, null] },
  delete_stale_devices_after: { restricting: ['1y', 0], harmless: [null] },
  modules: { restricting: [[{ module: 'my_module.SpamChecker', config: {} }], { module: 'x' }], harmless: [[], null] },
  spam_checker: { restricting: [[{ module: 'my_module.SpamChecker' }], { module: 'my_module.SpamChecker' }], harmless: [[], null] },
  'listeners[].tls': { restricting: [true, 'yes'], harmless: [false, null] },
  'listeners[].resources': {
    restricting: [[{ names: ['federation'] }], [], [{ names: 'client' }], 'client'],
    harmless: [[{ names: ['client'] }], [{ names: ['federation'] }, { names: ['client', 'federation'], compress: false }], null],
  },
  'listeners[].path': { restricting: ['/run/synapse/main_public.sock'], harmless: [null] },
  include_profile_data_on_invite: { restricting: [false, 'false'], harmless: [true, null] },
  allow_profile_lookup_over_federation: { restricting: [false], harmless: [true, null] },
};

/** The smallest config holding `value` at `path` (`[]` makes a one-entry list of listeners). */
function fragment(path: string, value: unknown): Record<string, unknown> {
  const [step, ...rest] = path.split('.') as [string, ...string[]];
  const inner = rest.length ? fragment(rest.join('.'), value) : value;
  if (step.endsWith('[]')) return { [step.slice(0, -2)]: [{ port: 8008, ...(inner as object) }] };
  return { [step]: inner };
}

/** The problems buildConfig reports for `extra` on top of a valid minimum; fails the test when it accepts it. */
function problemsOf(extra: Record<string, unknown>): string[] {
  try {
    buildConfig({ server_name: 'example.org', ...extra }, BASE);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    for (const p of (e as ConfigError).problems) expect((e as ConfigError).message).toContain(p);
    return (e as ConfigError).problems;
  }
  throw new Error(`config was accepted: ${JSON.stringify(extra)}`);
}

const cases = RESTRICTIVE_KEYS.map((k) => ({ key: k.key, ...SAMPLES[k.key]! }));

describe('the table of restrictive keys', () => {
  it('has samples for every key, and only for its keys', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(RESTRICTIVE_KEYS.map((k) => k.key).sort());
    expect(new Set(RESTRICTIVE_KEYS.map((k) => k.key)).size).toBe(RESTRICTIVE_KEYS.length);
    for (const c of cases) {
      expect(c.restricting.length, c.key).toBeGreaterThan(0);
      expect(c.harmless, c.key).toContain(null);
    }
  });

  it('covers the keys the issue names (those not implemented)', () => {
    const keys = RESTRICTIVE_KEYS.map((k) => k.key);
    // Implemented, so not here: registration tokens, terms (user_consent), inhibit_user_in_use_error, approval (MSC3866),
    // the profile lookup limits (MSC4170) and switching the user directory off.
    for (const k of [
      'registration_requires_token',
      'user_consent.require_at_registration',
      'inhibit_user_in_use_error',
      'experimental_features.msc3866',
      'require_auth_for_profile_requests',
      'limit_profile_requests_to_users_who_share_rooms',
      'user_directory.enabled',
      'registrations_require_3pid',
      'allowed_local_3pids',
      'request_token_inhibit_3pid_errors',
    ])
      expect(keys).not.toContain(k);
    for (const k of [
      'enable_registration_captcha',
      'password_config.localdb_enabled',
      'limit_usage_by_mau',
      'hs_disabled',
      'account_validity',
    ])
      expect(keys).toContain(k);
  });

  it('is documented key by key in docs/configuration.md', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Refused Synapse keys'));
    expect(section.length).toBeGreaterThan(100);
    const missing = RESTRICTIVE_KEYS.map((k) => k.key).filter((k) => !section.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});

describe.each(cases)('$key', ({ key, restricting, harmless }) => {
  const path = key.replace('[]', '[0]');

  it.each(restricting.map((v) => [v]))('refuses to start with %j, naming the key and saying it is not supported', (value) => {
    const problems = problemsOf(fragment(key, value));
    // One problem, this one: no type error or other noise beside it.
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${path}: not supported yet: `)).toBe(true);
    expect(problems[0]).toContain('not supported');
  });

  it.each(harmless.map((v) => [v]))('starts with %j, which restricts nothing', (value) => {
    const { warnings } = buildConfig({ server_name: 'example.org', ...fragment(key, value) }, BASE);
    // At most a warning that the key is ignored.
    for (const w of warnings) expect(w).toMatch(/^unknown configuration key ".*" is ignored$/);
  });
});

describe('refusals', () => {
  it('reports every refused key at once, with the rest of the problems', () => {
    const problems = problemsOf({
      enable_registration_captcha: true,
      hs_disabled: true,
      password_config: { localdb_enabled: false, policy: { minimum_length: 'eight' } },
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      [
        'hs_disabled',
        'password_config.localdb_enabled',
        'password_config.policy.minimum_length',
        'enable_registration_captcha',
      ].sort(),
    );
  });

  it('names the listener by its place in the list', () => {
    const problems = problemsOf({
      listeners: [
        { port: 8008, tls: false, resources: [{ names: ['client', 'federation'] }] },
        { port: 8448, tls: true, resources: [{ names: ['federation'] }] },
      ],
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['listeners[1].resources', 'listeners[1].tls']);
  });

  it('a refused registration step stands in for "open registration without verification"', () => {
    // Synapse accepts open registration behind a token, CAPTCHA or 3PID: the only problem is the unsupported step.
    const refused = problemsOf({ enable_registration: true, enable_registration_captcha: true });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^enable_registration_captcha: not supported yet: /);
    // A registration token (implemented) is a verification step of its own, as in Synapse.
    const { config } = buildConfig({ server_name: 'example.org', enable_registration: true, registration_requires_token: true }, BASE);
    expect(config.registration_requires_token).toBe(true);
    // A refusal that has nothing to do with registration leaves that error in place.
    const problems = problemsOf({ enable_registration: true, hs_disabled: true });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['enable_registration', 'hs_disabled']);
  });

  it('registrations_require_3pid: email needs an email section; msisdn is refused as not supported', () => {
    const noEmail = problemsOf({ enable_registration: true, registrations_require_3pid: ['email'] });
    expect(noEmail).toEqual([expect.stringMatching(/^registrations_require_3pid: email addresses cannot be verified without an `email` section/)]);
    expect(problemsOf({ registrations_require_3pid: ['msisdn'] })).toEqual([expect.stringMatching(/^registrations_require_3pid\[0\]: msisdn .*not supported yet/)]);
    expect(problemsOf({ registrations_require_3pid: 'email' })).toEqual([expect.stringMatching(/^registrations_require_3pid: expected a list/)]);
    expect(problemsOf({ registrations_require_3pid: ['fax'] })).toEqual([expect.stringMatching(/^registrations_require_3pid\[0\]: expected "email"/)]);
    // With an email section, a required email address is a verification step of its own (as Synapse).
    const email = { smtp_host: 'localhost', notif_from: 'Gatehouse <noreply@example.org>' };
    const { config } = buildConfig({ server_name: 'example.org', enable_registration: true, registrations_require_3pid: ['email'], email }, BASE);
    expect(config.registrations_require_3pid).toEqual(['email']);
    expect(config.email).not.toBeNull();
  });

  it('keeps the type error for password_config.enabled values that are neither boolean nor only_for_reauth', () => {
    expect(problemsOf({ password_config: { enabled: 'no' } })).toEqual([expect.stringMatching(/^password_config\.enabled: expected true or false/)]);
  });

  it('leaves keys that only widen or tune as warnings', () => {
    const { config, warnings } = buildConfig(
      {
        server_name: 'example.org',
        auto_join_rooms: ['#welcome:example.org'],
        oidc_providers: [{ idp_id: 'sso', issuer: 'https://id.example.org/', client_id: 'c', attribute_requirements: [{ attribute: 'g', value: 'staff' }] }],
        cas_config: { enabled: true },
        jwt_config: { enabled: true, secret: 's', algorithm: 'HS256' },
        password_providers: [{ module: 'ldap_auth_provider.LdapAuthProvider' }],
        enable_registration_token_3pid_bypass: true,
        max_mau_value: 50,
        recaptcha_public_key: 'pub',
        block_non_admin_invites: true,
        enable_3pid_lookup: false,
        presence: { enabled: false },
      },
      BASE,
    );
    expect(config.password_config.enabled).toBe(true);
    expect(warnings.length).toBeGreaterThan(5);
    for (const w of warnings) expect(w).toMatch(/^unknown configuration key ".*" is ignored$/);
  });
});
