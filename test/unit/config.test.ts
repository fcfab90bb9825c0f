// homeserver.yaml: defaults (Synapse's where the key is Synapse's), units,
// paths, database names, and every validation error naming its key.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, ConfigError, loadConfigFile } from '../../src/config/load.js';

const BASE = '/etc/gatehouse';

/** Builds a config from `extra` on top of a valid minimum. */
const build = (extra: Record<string, unknown> = {}) => buildConfig({ server_name: 'example.org', ...extra }, BASE);

/** The problems buildConfig reports for `raw`; fails the test when it accepts it. */
function problemsOf(raw: unknown, baseDir = BASE): string[] {
  try {
    buildConfig(raw, baseDir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const problems = (e as ConfigError).problems;
    // The message lists every problem.
    for (const p of problems) expect((e as ConfigError).message).toContain(p);
    return problems;
  }
  throw new Error(`config was accepted: ${JSON.stringify(raw)}`);
}

/** The ConfigError loadConfigFile throws for `file`; fails the test when it loads. */
function configErrorOf(file: string): ConfigError {
  try {
    loadConfigFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`config was accepted: ${file}`);
}

/** A fresh temp directory for the tests of one describe block (call it inside the test). */
function tempDir(): () => string {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/** The single problem reported for `extra` on top of a valid minimum. */
function problemOf(extra: Record<string, unknown>): string {
  const problems = problemsOf({ server_name: 'example.org', ...extra });
  expect(problems).toHaveLength(1);
  return problems[0]!;
}

describe('buildConfig defaults', () => {
  it("uses Synapse's defaults and Gatehouse's own for the rest", () => {
    const { config, warnings } = build();
    expect(warnings).toEqual([]);
    expect(config.server_name).toBe('example.org');
    expect(config.public_baseurl).toBeNull();
    expect(config.listeners).toEqual([{ port: 8008, bind_addresses: ['127.0.0.1'], x_forwarded: false }]);
    expect(config.database).toEqual({ name: 'sqlite3', args: { database: '/etc/gatehouse/data/homeserver.db' } });
    expect(config.data_directory).toBe('/etc/gatehouse/data');
    expect(config.signing_key_path).toBe('/etc/gatehouse/data/example.org.signing.key');
    expect(config.log_level).toBe('info');
    expect(config.enable_registration).toBe(false);
    expect(config.enable_registration_without_verification).toBe(false);
    expect(config.registration_shared_secret).toBeNull();
    expect(config.allow_guest_access).toBe(false);
    expect(config.password_config).toEqual({
      enabled: true,
      policy: { enabled: false, minimum_length: 0, require_digit: false, require_symbol: false, require_lowercase: false, require_uppercase: false },
    });
    expect(config.argon2).toEqual({ memory_cost: 19456, time_cost: 2, parallelism: 1 });
    // Synapse's rc_login and rc_registration defaults.
    expect(config.rc_login).toEqual({
      address: { per_second: 0.003, burst_count: 5 },
      account: { per_second: 0.003, burst_count: 5 },
      failed_attempts: { per_second: 0.17, burst_count: 3 },
    });
    expect(config.rc_registration).toEqual({ per_second: 0.17, burst_count: 3 });
    expect(config.refreshable_access_token_lifetime).toBe(5 * 60_000);
    expect(config.refresh_token_lifetime).toBeNull();
    expect(config.nonrefreshable_access_token_lifetime).toBeNull();
    expect(config.session_lifetime).toBeNull();
    expect(config.ui_auth_session_lifetime).toBe(30 * 60_000);
    expect(config.max_request_body_size).toBe(1024 * 1024);
    expect(config.enable_set_displayname).toBe(true);
    expect(config.enable_set_avatar_url).toBe(true);
  });

  it('treats YAML nulls (empty keys) as "use the default"', () => {
    const { config } = build({ rc_login: null, argon2: { memory_cost: null }, public_baseurl: null, refresh_token_lifetime: null });
    expect(config.rc_login.address).toEqual({ per_second: 0.003, burst_count: 5 });
    expect(config.argon2.memory_cost).toBe(19456);
    expect(config.public_baseurl).toBeNull();
  });

  it('merges a partly given rate limit with the default', () => {
    const { config } = build({ rc_login: { address: { per_second: 1 } }, rc_registration: { burst_count: 10 } });
    expect(config.rc_login.address).toEqual({ per_second: 1, burst_count: 5 });
    expect(config.rc_login.account).toEqual({ per_second: 0.003, burst_count: 5 });
    expect(config.rc_registration).toEqual({ per_second: 0.17, burst_count: 10 });
  });

  it('accepts open registration when it is asked for explicitly', () => {
    const { config } = build({ enable_registration: true, enable_registration_without_verification: true });
    expect(config.enable_registration).toBe(true);
    expect(config.enable_registration_without_verification).toBe(true);
  });

  it('appends the missing slash to public_baseurl', () => {
    expect(build({ public_baseurl: 'https://matrix.example.org' }).config.public_baseurl).toBe('https://matrix.example.org/');
    expect(build({ public_baseurl: 'http://127.0.0.1:8008/' }).config.public_baseurl).toBe('http://127.0.0.1:8008/');
  });

  it.each(['example.org', 'localhost', 'example.org:8448', 'hs1', '127.0.0.1:8008', '[::1]', '[2001:db8::1]:8448'])(
    'accepts the server name %s',
    (name) => {
      expect(buildConfig({ server_name: name }, BASE).config.server_name).toBe(name);
    },
  );
});

describe('durations and sizes', () => {
  it.each([
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 7 * 86_400_000],
    ['2w', 14 * 86_400_000],
    ['1y', 365 * 86_400_000],
    ['30s', 30_000],
    ['250ms', 250],
    ['1.5s', 1500],
    ['3000', 3000],
    [3000, 3000],
    [0, 0],
  ])('reads the duration %j as %d ms', (value, ms) => {
    const { config } = build({
      refreshable_access_token_lifetime: value,
      refresh_token_lifetime: value,
      nonrefreshable_access_token_lifetime: value,
      session_lifetime: value,
    });
    expect(config.refreshable_access_token_lifetime).toBe(ms);
    expect(config.refresh_token_lifetime).toBe(ms);
    expect(config.nonrefreshable_access_token_lifetime).toBe(ms);
    expect(config.session_lifetime).toBe(ms);
  });

  it('reads ui_auth.session_lifetime as a duration', () => {
    expect(build({ ui_auth: { session_lifetime: '15m' } }).config.ui_auth_session_lifetime).toBe(900_000);
  });

  it.each(['5 minutes', '5x', '-5m', 'm', '', true, -1, [1], { m: 5 }])('rejects the duration %j, naming the key', (value) => {
    expect(problemOf({ refresh_token_lifetime: value })).toMatch(/^refresh_token_lifetime: expected a duration/);
    expect(problemOf({ session_lifetime: value })).toMatch(/^session_lifetime: expected a duration/);
    expect(problemOf({ ui_auth: { session_lifetime: value } })).toMatch(/^ui_auth\.session_lifetime: expected a duration/);
  });

  it.each([
    ['4K', 4096],
    ['1M', 1024 * 1024],
    ['10M', 10 * 1024 * 1024],
    ['1G', 1024 ** 3],
    ['512k', 512 * 1024],
    ['2MB', 2 * 1024 * 1024],
    ['100', 100],
    [2048, 2048],
  ])('reads the size %j as %d bytes', (value, bytes) => {
    expect(build({ max_request_body_size: value }).config.max_request_body_size).toBe(bytes);
  });

  it.each(['lots', '4T', '1.5M', '-1K', 0, -5, 1.5, false])('rejects the size %j, naming the key', (value) => {
    expect(problemOf({ max_request_body_size: value })).toMatch(/^max_request_body_size: expected a size/);
  });
});

describe('paths', () => {
  const dir = tempDir();

  it("resolves relative paths against the config file's folder, not the working directory", () => {
    const file = join(dir(), 'homeserver.yaml');
    writeFileSync(
      file,
      'server_name: example.org\n' +
        'database:\n  name: sqlite3\n  args:\n    database: ./db/hs.db\n' +
        'signing_key_path: keys/example.signing.key\n',
    );
    const { config } = loadConfigFile(file);
    expect(config.database).toEqual({ name: 'sqlite3', args: { database: join(dir(), 'db/hs.db') } });
    expect(config.signing_key_path).toBe(join(dir(), 'keys/example.signing.key'));
    expect(config.data_directory).toBe(join(dir(), 'data'));
  });

  it('puts the default database and signing key under a relative data_directory', () => {
    const file = join(dir(), 'data-dir.yaml');
    writeFileSync(file, 'server_name: example.org\ndata_directory: var/lib\n');
    const { config } = loadConfigFile(file);
    expect(config.data_directory).toBe(join(dir(), 'var/lib'));
    expect(config.database).toEqual({ name: 'sqlite3', args: { database: join(dir(), 'var/lib/homeserver.db') } });
    expect(config.signing_key_path).toBe(join(dir(), 'var/lib/example.org.signing.key'));
  });

  it('keeps absolute paths and :memory: as they are', () => {
    const { config } = buildConfig(
      { server_name: 'example.org', database: { name: 'sqlite', args: { database: ':memory:' } }, signing_key_path: '/srv/key' },
      BASE,
    );
    expect(config.database).toEqual({ name: 'sqlite3', args: { database: ':memory:' } });
    expect(config.signing_key_path).toBe('/srv/key');
    expect(build({ database: { name: 'sqlite3', args: { database: '/var/db/hs.db' } } }).config.database).toEqual({
      name: 'sqlite3',
      args: { database: '/var/db/hs.db' },
    });
  });
});

describe('database', () => {
  it.each(['psycopg2', 'postgres', 'postgresql'])('reads the PostgreSQL name %s and its args', (name) => {
    const { config, warnings } = build({
      database: {
        name,
        txn_limit: 10000,
        cp_min: 5,
        cp_max: 10,
        args: { host: 'db.internal', port: 5433, user: 'synapse', password: 's3cret', database: 'matrix', cp_min: 5, cp_max: 10, sslmode: 'require' },
      },
    });
    expect(config.database).toEqual({
      name: 'postgres',
      args: { host: 'db.internal', port: 5433, user: 'synapse', password: 's3cret', database: 'matrix', sslmode: 'require' },
    });
    // Synapse's pool and connection options are known and pass quietly.
    expect(warnings).toEqual([]);
  });

  it('defaults the PostgreSQL args and accepts dbname for database', () => {
    expect(build({ database: { name: 'psycopg2' } }).config.database).toEqual({
      name: 'postgres',
      args: { host: 'localhost', port: 5432, user: 'gatehouse', password: null, database: 'gatehouse', sslmode: 'prefer' },
    });
    const { config, warnings } = build({ database: { name: 'psycopg2', args: { dbname: 'other' } } });
    expect(config.database).toMatchObject({ args: { database: 'other' } });
    expect(warnings).toEqual([]);
  });

  it.each(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'])('accepts libpq sslmode %s', (mode) => {
    expect(build({ database: { name: 'psycopg2', args: { sslmode: mode } } }).config.database).toMatchObject({ args: { sslmode: mode } });
  });

  it('rejects an unknown sslmode, naming the key', () => {
    expect(problemOf({ database: { name: 'psycopg2', args: { sslmode: 'always' } } })).toMatch(/^database\.args\.sslmode: expected one of/);
  });

  it('rejects an unknown database name, naming the key', () => {
    const p = problemOf({ database: { name: 'mysql' } });
    expect(p).toMatch(/^database\.name: /);
    expect(p).toContain('"mysql"');
  });

  it('rejects wrongly typed database args, naming the key', () => {
    expect(problemOf({ database: { name: 'psycopg2', args: { port: 'fivefourthreetwo' } } })).toMatch(/^database\.args\.port: expected an integer/);
    expect(problemOf({ database: { name: 'psycopg2', args: { port: 70000 } } })).toMatch(/^database\.args\.port: 70000 is out of range/);
    expect(problemOf({ database: { name: 'psycopg2', args: { host: 5 } } })).toMatch(/^database\.args\.host: expected a string/);
    expect(problemOf({ database: 'sqlite3' })).toMatch(/^database: expected a mapping/);
    expect(problemOf({ database: { name: 'sqlite3', args: ['x'] } })).toMatch(/^database\.args: expected a mapping/);
  });
});

describe('validation errors name their key', () => {
  it.each([
    [{ enable_registration: 'yes' }, /^enable_registration: expected true or false, got "yes"/],
    [{ allow_guest_access: 1 }, /^allow_guest_access: expected true or false/],
    [{ log_level: 'loud' }, /^log_level: expected one of/],
    [{ log_level: 3 }, /^log_level: expected a string/],
    [{ admin_contact: 42 }, /^admin_contact: expected a string/],
    [{ public_baseurl: 'ftp://example.org/' }, /^public_baseurl: "ftp:\/\/example.org\/" is not an http\(s\) URL/],
    [{ public_baseurl: 'matrix.example.org' }, /^public_baseurl: .* is not an http\(s\) URL/],
    [{ public_baseurl: 8008 }, /^public_baseurl: expected a string/],
    [{ listeners: [{ port: 70000 }] }, /^listeners\[0\]\.port: 70000 is out of range/],
    [{ listeners: [{ port: 'http' }] }, /^listeners\[0\]\.port: expected an integer/],
    [{ listeners: [{ port: 8008 }, { port: 80.5 }] }, /^listeners\[1\]\.port: expected an integer/],
    [{ listeners: [{ port: -1 }] }, /^listeners\[0\]\.port: -1 is out of range/],
    [{ listeners: [{ port: 8008, type: 'metrics' }] }, /^listeners\[0\]\.type: only "http"/],
    [{ listeners: [{ port: 8008, bind_addresses: [1] }] }, /^listeners\[0\]\.bind_addresses: expected a list of strings/],
    [{ listeners: [{ port: 8008, x_forwarded: 'true' }] }, /^listeners\[0\]\.x_forwarded: expected true or false/],
    [{ listeners: { port: 8008 } }, /^listeners: expected a list/],
    [{ listeners: [] }, /^listeners: at least one listener/],
    [{ registration_shared_secret: 'short' }, /^registration_shared_secret: must be at least 8 characters/],
    [{ registration_shared_secret: 12345678 }, /^registration_shared_secret: expected a string/],
    [{ argon2: { memory_cost: 512 } }, /^argon2\.memory_cost: 512 is out of range/],
    [{ argon2: { time_cost: '2' } }, /^argon2\.time_cost: expected an integer/],
    [{ argon2: { parallelism: 1.5 } }, /^argon2\.parallelism: expected an integer/],
    [{ rc_login: { address: { per_second: 'fast' } } }, /^rc_login\.address\.per_second: expected a number/],
    [{ rc_login: { failed_attempts: { burst_count: -1 } } }, /^rc_login\.failed_attempts\.burst_count: -1 is out of range/],
    [{ rc_registration: { per_second: null, burst_count: 'x' } }, /^rc_registration\.burst_count: expected a number/],
    [{ rc_login: 'off' }, /^rc_login: expected a mapping/],
    [{ password_config: { policy: { minimum_length: 'eight' } } }, /^password_config\.policy\.minimum_length: expected an integer/],
    [{ password_config: { policy: { require_digit: 'yes' } } }, /^password_config\.policy\.require_digit: expected true or false/],
    [{ password_config: { enabled: 'no' } }, /^password_config\.enabled: expected true or false/],
  ])('%j', (extra, pattern) => {
    expect(problemOf(extra)).toMatch(pattern);
  });

  it('names the list entry that is not a mapping', () => {
    const problems = problemsOf({ server_name: 'example.org', listeners: ['8008', { port: 8448 }] });
    expect(problems).toEqual(['listeners[0]: expected a mapping']);
  });

  it.each(['', 'exa mple.org', 'example.org:123456', 'ex@mple', '@alice:example.org', 'example.org/path', '[::1'])(
    'rejects the server name %j',
    (name) => {
      const problems = problemsOf({ server_name: name });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^server_name: /);
    },
  );

  it('requires server_name, and a string', () => {
    expect(problemsOf({})).toEqual([expect.stringMatching(/^server_name: required/)]);
    expect(problemsOf({ server_name: 42 })).toEqual([expect.stringMatching(/^server_name: expected a string/), expect.stringMatching(/^server_name: required/)]);
  });

  it('refuses open registration without the explicit no-verification switch', () => {
    for (const extra of [{ enable_registration: true }, { enable_registration: true, enable_registration_without_verification: false }]) {
      const p = problemOf(extra);
      expect(p).toMatch(/^enable_registration: /);
      expect(p).toContain('enable_registration_without_verification: true');
    }
    // The switch alone, without open registration, is fine.
    expect(build({ enable_registration_without_verification: true }).config.enable_registration).toBe(false);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({
      server_name: 'bad name',
      public_baseurl: 'gopher://x',
      listeners: [{ port: 99999 }],
      database: { name: 'oracle' },
      enable_registration: 'sometimes',
      registration_shared_secret: 'tiny',
      argon2: { memory_cost: 'a lot' },
      refresh_token_lifetime: 'forever',
    });
    const keys = problems.map((p) => p.split(':')[0]);
    expect(keys.sort()).toEqual(
      [
        'argon2.memory_cost',
        'database.name',
        'enable_registration',
        'listeners[0].port',
        'public_baseurl',
        'refresh_token_lifetime',
        'registration_shared_secret',
        'server_name',
      ].sort(),
    );
  });

  it('rejects a config that is not a mapping', () => {
    for (const raw of [['server_name', 'x'], 'server_name: x', 42]) {
      const problems = problemsOf(raw);
      expect(problems).toContain('the configuration file must be a YAML mapping');
    }
  });
});

describe('unknown and Synapse-only keys', () => {
  it('warns about unknown keys with their full path, without failing', () => {
    const { config, warnings } = build({
      enable_regisration: true,
      listeners: [{ port: 8008, bind_adresses: ['0.0.0.0'] }],
      database: { name: 'sqlite3', args: { database: ':memory:', filename: 'x.db' } },
      rc_login: { address: { per_second: 1, burst: 3 }, adress: {} },
      password_config: { policy: { min_length: 8 } },
      argon2: { memory: 1 },
      ui_auth: { session_lifetim: '5m' },
    });
    expect(config.enable_registration).toBe(false);
    expect(config.listeners[0]!.bind_addresses).toEqual(['127.0.0.1']);
    expect(warnings.sort()).toEqual(
      [
        'unknown configuration key "enable_regisration" is ignored',
        'unknown configuration key "listeners[0].bind_adresses" is ignored',
        'unknown configuration key "database.args.filename" is ignored',
        'unknown configuration key "rc_login.address.burst" is ignored',
        'unknown configuration key "rc_login.adress" is ignored',
        'unknown configuration key "password_config.policy.min_length" is ignored',
        'unknown configuration key "argon2.memory" is ignored',
        'unknown configuration key "ui_auth.session_lifetim" is ignored',
      ].sort(),
    );
  });

  it("ignores known Synapse keys silently", () => {
    const { warnings } = build({
      report_stats: false,
      pid_file: '/run/synapse.pid',
      log_config: '/etc/synapse/log.yaml',
      media_store_path: '/var/lib/synapse/media',
      macaroon_secret_key: 'abc',
      form_secret: 'def',
      trusted_key_servers: [{ server_name: 'matrix.org' }],
      suppress_key_server_warning: true,
      bcrypt_rounds: 12,
      url_preview_enabled: false,
      enable_metrics: false,
      presence: { enabled: false },
      federation_ip_range_blacklist: [],
      url_preview_ip_range_blacklist: [],
      listeners: [{ port: 8008, tls: false, type: 'http', x_forwarded: true, resources: [{ names: ['client', 'federation'], compress: false }] }],
      database: { name: 'psycopg2', allow_unsafe_locale: true, args: { keepalives_idle: 10, keepalives_interval: 10, keepalives_count: 3 } },
      password_config: { localdb_enabled: true },
      ui_auth: { session_timeout: '15s' },
      disable_msisdn_registration: true,
    });
    expect(warnings).toEqual([]);
  });

  it('warns about password_config.pepper: the hashes carry no pepper', () => {
    const { config, warnings } = build({ password_config: { pepper: 'p' } });
    expect(warnings).toEqual(['unknown configuration key "password_config.pepper" is ignored']);
    expect(config.password_config.enabled).toBe(true);
  });
});

describe('loadConfigFile', () => {
  const dir = tempDir();

  it('reads YAML with Synapse-style units', () => {
    const file = join(dir(), 'units.yaml');
    writeFileSync(
      file,
      'server_name: "example.org"\nrefreshable_access_token_lifetime: 1h\nrefresh_token_lifetime: 30d\nmax_request_body_size: 4K\nlisteners:\n  - port: 0\n',
    );
    const { config, warnings } = loadConfigFile(file);
    expect(warnings).toEqual([]);
    expect(config.refreshable_access_token_lifetime).toBe(3_600_000);
    expect(config.refresh_token_lifetime).toBe(30 * 86_400_000);
    expect(config.max_request_body_size).toBe(4096);
    expect(config.listeners[0]!.port).toBe(0);
  });

  it('gives a ConfigError naming the file for invalid YAML', () => {
    const file = join(dir(), 'broken.yaml');
    writeFileSync(file, 'server_name: "example.org\nlisteners: [\n');
    const err = configErrorOf(file);
    expect(err.problems).toHaveLength(1);
    expect(err.message).toContain(`${file} is not valid YAML`);
  });

  it('gives a ConfigError naming the file when it is missing', () => {
    const file = join(dir(), 'does-not-exist.yaml');
    expect(() => loadConfigFile(file)).toThrow(ConfigError);
    expect(() => loadConfigFile(file)).toThrow(`cannot read ${file}`);
  });

  it('reports an empty file as missing server_name', () => {
    const file = join(dir(), 'empty.yaml');
    writeFileSync(file, '');
    expect(() => loadConfigFile(file)).toThrow(/server_name: required/);
  });

  it('reports validation problems from the file with their key paths', () => {
    const file = join(dir(), 'typed.yaml');
    writeFileSync(file, 'server_name: example.org\nenable_registration: "true"\nlisteners:\n  - port: "8008"\n');
    expect(configErrorOf(file).problems.map((p) => p.split(':')[0]).sort()).toEqual(['enable_registration', 'listeners[0].port']);
  });
});

describe('registration_shared_secret_path', () => {
  const dir = tempDir();

  it('reads the secret from the file, relative to the config, trimmed', () => {
    writeFileSync(join(dir(), 'secret'), '  a-secret-from-a-file\n');
    const { config, warnings } = buildConfig({ server_name: 'example.org', registration_shared_secret_path: 'secret' }, dir());
    expect(config.registration_shared_secret).toBe('a-secret-from-a-file');
    expect(warnings).toEqual([]);
  });

  it('refuses a missing file, naming the key and the file', () => {
    const missing = join(dir(), 'nope');
    const p = problemsOf({ server_name: 'example.org', registration_shared_secret_path: missing });
    expect(p).toEqual([`registration_shared_secret_path: cannot read the secret from ${missing}: ENOENT`]);
  });

  it('refuses an empty file', () => {
    writeFileSync(join(dir(), 'empty'), '\n');
    const p = problemsOf({ server_name: 'example.org', registration_shared_secret_path: join(dir(), 'empty') });
    expect(p).toEqual([`registration_shared_secret_path: ${join(dir(), 'empty')} is empty`]);
  });

  it('refuses both the secret and its path', () => {
    writeFileSync(join(dir(), 'secret2'), 'another-long-secret');
    const p = problemsOf({ server_name: 'example.org', registration_shared_secret: 'inline-secret', registration_shared_secret_path: join(dir(), 'secret2') });
    expect(p).toEqual(['registration_shared_secret_path: give either it or registration_shared_secret, not both']);
  });

  it('applies the minimum length to a secret from a file too', () => {
    writeFileSync(join(dir(), 'short'), 'tiny');
    expect(problemsOf({ server_name: 'example.org', registration_shared_secret_path: join(dir(), 'short') })[0]).toMatch(
      /^registration_shared_secret: must be at least 8 characters/,
    );
  });
});
