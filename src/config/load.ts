// Reads homeserver.yaml, applies defaults and validates it. Every problem is
// reported with the key's path; unknown keys are warnings, not errors, so a
// Synapse config carries over (keys for features Gatehouse lacks are ignored),
// except keys that would restrict access in ways Gatehouse cannot honour
// (restrictive-keys.ts): those stop the server, which must never be more open
// than its config says.

import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Config, DatabaseConfig, Listener, PasswordPolicy, RateLimit, SupportContact, WellKnownSupport } from './types.js';
import { isFieldName } from '../domain/profiles.js';
import { refuseRestrictiveKeys } from './restrictive-keys.js';
import { emailConfig } from './email.js';
import { keepVersionsAsWritten, termsConfig } from './terms.js';
import { threepidPolicyConfig } from './threepid-policy.js';
import { parseDuration, parseSize } from './units.js';
import { yaml } from './yaml.js';

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Walks one mapping of the raw config, collecting problems instead of throwing at the first. */
export class Section {
  private readonly seen = new Set<string>();
  constructor(
    private readonly raw: Raw,
    private readonly path: string,
    private readonly errors: string[],
  ) {}

  private key(k: string): string {
    return this.path ? `${this.path}.${k}` : k;
  }

  private get(k: string): unknown {
    this.seen.add(k);
    return this.raw[k];
  }

  has(k: string): boolean {
    return this.raw[k] !== undefined && this.raw[k] !== null;
  }

  /** The raw value, without marking the key as read. */
  peek(k: string): unknown {
    return this.raw[k];
  }

  /** The mapping's keys (for mappings whose keys are names, such as policy IDs). */
  keys(): string[] {
    return Object.keys(this.raw);
  }

  /** Marks keys Gatehouse knows but does not act on, so they raise no warning. */
  accept(...keys: string[]): void {
    for (const k of keys) this.seen.add(k);
  }

  string(k: string, fallback: string): string {
    const v = this.get(k);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') {
      this.errors.push(`${this.key(k)}: expected a string, got ${typeof v}`);
      return fallback;
    }
    return v;
  }

  optionalString(k: string): string | null {
    const v = this.get(k);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') {
      this.errors.push(`${this.key(k)}: expected a string, got ${typeof v}`);
      return null;
    }
    return v;
  }

  boolean(k: string, fallback: boolean): boolean {
    const v = this.get(k);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      this.errors.push(`${this.key(k)}: expected true or false, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  number(k: string, fallback: number, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
    const v = this.get(k);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) {
      this.errors.push(`${this.key(k)}: expected ${opts.integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
      this.errors.push(`${this.key(k)}: ${v} is out of range [${opts.min ?? '-inf'}, ${opts.max ?? 'inf'}]`);
      return fallback;
    }
    return v;
  }

  duration(k: string, fallback: number | null): number | null {
    const v = this.get(k);
    if (v === undefined || v === null) return fallback;
    const ms = parseDuration(v);
    if (ms === null) this.errors.push(`${this.key(k)}: expected a duration such as 5m, 1h or 7d, got ${JSON.stringify(v)}`);
    return ms ?? fallback;
  }

  size(k: string, fallback: number): number {
    const v = this.get(k);
    if (v === undefined || v === null) return fallback;
    const bytes = parseSize(v);
    if (bytes === null) this.errors.push(`${this.key(k)}: expected a size such as 512K or 10M, got ${JSON.stringify(v)}`);
    return bytes ?? fallback;
  }

  section(k: string): Section {
    const v = this.get(k);
    if (v !== undefined && v !== null && !isObject(v)) {
      this.errors.push(`${this.key(k)}: expected a mapping`);
      return new Section({}, this.key(k), this.errors);
    }
    return new Section(isObject(v) ? v : {}, this.key(k), this.errors);
  }

  list(k: string): unknown[] | null {
    const v = this.get(k);
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) {
      this.errors.push(`${this.key(k)}: expected a list`);
      return null;
    }
    return v;
  }

  child(raw: unknown, label: string): Section | null {
    if (!isObject(raw)) {
      this.errors.push(`${this.key(label)}: expected a mapping`);
      return null;
    }
    return new Section(raw, this.key(label), this.errors);
  }

  unknownKeys(): string[] {
    return Object.keys(this.raw)
      .filter((k) => !this.seen.has(k))
      .map((k) => this.key(k));
  }
}

function rateLimit(s: Section, fallback: RateLimit): RateLimit {
  return {
    per_second: s.number('per_second', fallback.per_second, { min: 0 }),
    burst_count: s.number('burst_count', fallback.burst_count, { min: 0 }),
  };
}

function wellKnownServer(root: Section, errors: string[]): string | null {
  const v = root.optionalString('well_known_server');
  if (v !== null && !/^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(v))
    errors.push(`well_known_server: "${v}" is not a host name with an optional port`);
  return v;
}

/** MSC1929 support information: a list of contacts and/or a support page. */
function wellKnownSupport(s: Section, given: boolean, errors: string[]): WellKnownSupport | null {
  if (!given) return null;
  const contacts: SupportContact[] = [];
  (s.list('contacts') ?? []).forEach((c, i) => {
    const cs = s.child(c, `contacts[${i}]`);
    if (!cs) return;
    const contact: SupportContact = {
      role: cs.string('role', 'm.role.admin'),
      matrix_id: cs.optionalString('matrix_id'),
      email_address: cs.optionalString('email_address'),
    };
    if (contact.matrix_id === null && contact.email_address === null)
      errors.push(`well_known_support.contacts[${i}]: give a matrix_id, an email_address or both`);
    if (contact.matrix_id !== null && !/^@[^:]+:.+$/.test(contact.matrix_id))
      errors.push(`well_known_support.contacts[${i}].matrix_id: "${contact.matrix_id}" is not a user ID`);
    for (const k of cs.unknownKeys()) errors.push(`${k}: unknown key (expected role, matrix_id, email_address)`);
    contacts.push(contact);
  });
  const page = s.optionalString('support_page');
  if (page !== null) {
    try {
      const u = new URL(page);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    } catch {
      errors.push(`well_known_support.support_page: "${page}" is not an http(s) URL`);
    }
  }
  if (contacts.length === 0 && page === null) errors.push('well_known_support: give at least one of contacts or support_page');
  return { contacts, support_page: page };
}

/**
 * Gatehouse's `registration_requires_approval`, or Synapse's experimental
 * `experimental_features.msc3866: {enabled, require_approval_for_new_accounts}`
 * (approval is required when either asks for it).
 */
function requiresApproval(root: Section, track: (s: Section) => Section): boolean {
  const own = root.boolean('registration_requires_approval', false);
  const msc3866 = track(track(root.section('experimental_features')).section('msc3866'));
  const synapse = msc3866.boolean('enabled', false) && msc3866.boolean('require_approval_for_new_accounts', false);
  return own || synapse;
}

/** Synapse's `templates.custom_template_directory`: must name a directory (as Synapse, which refuses a missing one). */
function templateDirectory(s: Section, baseDir: string, errors: string[]): string | null {
  const given = s.optionalString('custom_template_directory');
  if (given === null) return null;
  const dir = resolvePath(given, baseDir);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) errors.push(`templates.custom_template_directory: ${dir} is not a directory`);
  return dir;
}

/** The longest `login_via_existing_session.token_timeout`: a day (a login token is meant to live minutes). */
const MAX_LOGIN_TOKEN_TIMEOUT = 86_400_000;

/**
 * Synapse's `login_via_existing_session` (MSC3882), with Synapse's defaults:
 * off, re-authentication required, tokens valid for 5 minutes.
 */
function loginViaExistingSession(s: Section, errors: string[]): Config['login_via_existing_session'] {
  const fallback = 5 * 60_000;
  let timeout = s.duration('token_timeout', fallback) ?? fallback;
  if (timeout <= 0 || timeout > MAX_LOGIN_TOKEN_TIMEOUT) {
    errors.push(`login_via_existing_session.token_timeout: must be more than 0 and at most 1d (a login token is meant to live minutes), got ${timeout} ms`);
    timeout = fallback;
  }
  return { enabled: s.boolean('enabled', false), require_ui_auth: s.boolean('require_ui_auth', true), token_timeout: timeout };
}

/** Gatehouse's `profile_fields`: the `m.profile_fields` capability's `enabled`, `allowed` and `disallowed`. */
function profileFields(s: Section, errors: string[]): Config['profile_fields'] {
  const names = (k: 'allowed' | 'disallowed'): string[] | null => {
    const list = s.list(k);
    if (list === null) return null;
    const bad = list.filter((n) => typeof n !== 'string' || !isFieldName(n));
    // A misspelt name would silently leave the field it meant open (or closed).
    if (bad.length) errors.push(`profile_fields.${k}: not profile field names (a-z, 0-9, "_", "-", "." starting with a-z): ${JSON.stringify(bad)}`);
    return list.filter((n): n is string => typeof n === 'string');
  };
  const allowed = names('allowed');
  const disallowed = names('disallowed');
  if (allowed !== null && disallowed !== null) errors.push('profile_fields: give allowed or disallowed, not both');
  return { enabled: s.boolean('enabled', true), allowed, disallowed };
}

/** Synapse's `user_directory` section (its defaults). */
function userDirectory(s: Section): Config['user_directory'] {
  // Synapse's ranking option: every searchable user is local here, so it changes nothing.
  s.accept('prefer_local_users', 'exclude_remote_users');
  return {
    enabled: s.boolean('enabled', true),
    search_all_users: s.boolean('search_all_users', false),
    show_locked_users: s.boolean('show_locked_users', false),
  };
}

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

/** Validates an already-parsed config object. `baseDir` anchors relative paths. */
export function buildConfig(raw: unknown, baseDir: string): LoadedConfig {
  const errors: string[] = [];
  const sections: Section[] = [];
  const track = (s: Section) => (sections.push(s), s);
  const root = track(new Section(isObject(raw) ? raw : {}, '', errors));
  if (!isObject(raw)) errors.push('the configuration file must be a YAML mapping');

  const serverName = root.string('server_name', '');
  if (!serverName) errors.push('server_name: required (for example "localhost" or "example.org")');
  else if (!/^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(serverName))
    errors.push(`server_name: "${serverName}" is not a valid server name`);

  let publicBaseurl = root.optionalString('public_baseurl');
  if (publicBaseurl !== null) {
    try {
      const u = new URL(publicBaseurl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
      if (!publicBaseurl.endsWith('/')) publicBaseurl += '/';
    } catch {
      errors.push(`public_baseurl: "${publicBaseurl}" is not an http(s) URL`);
    }
  }

  const dataDirectory = resolvePath(root.string('data_directory', './data'), baseDir);

  const listeners: Listener[] = [];
  const rawListeners = root.list('listeners');
  if (rawListeners === null) {
    listeners.push({ port: 8008, bind_addresses: ['127.0.0.1'], x_forwarded: false });
  } else {
    rawListeners.forEach((l, i) => {
      const s = root.child(l, `listeners[${i}]`);
      if (!s) return;
      track(s);
      const type = s.string('type', 'http');
      if (type !== 'http') errors.push(`listeners[${i}].type: only "http" listeners are supported, got "${type}"`);
      s.accept('tls', 'resources');
      const addrs = s.list('bind_addresses') ?? ['127.0.0.1'];
      if (!addrs.every((a) => typeof a === 'string')) errors.push(`listeners[${i}].bind_addresses: expected a list of strings`);
      listeners.push({
        port: s.number('port', 8008, { integer: true, min: 0, max: 65535 }),
        bind_addresses: addrs.filter((a): a is string => typeof a === 'string'),
        x_forwarded: s.boolean('x_forwarded', false),
      });
    });
    if (listeners.length === 0) errors.push('listeners: at least one listener is needed');
  }

  const db = track(root.section('database'));
  const dbName = db.string('name', 'sqlite3');
  const dbArgs = track(db.section('args'));
  db.accept('allow_unsafe_locale', 'txn_limit', 'cp_min', 'cp_max');
  dbArgs.accept('cp_min', 'cp_max', 'keepalives_idle', 'keepalives_interval', 'keepalives_count');
  let database: DatabaseConfig;
  if (dbName === 'sqlite3' || dbName === 'sqlite') {
    const file = dbArgs.string('database', resolvePath('homeserver.db', dataDirectory));
    database = { name: 'sqlite3', args: { database: file === ':memory:' ? file : resolvePath(file, baseDir) } };
  } else if (dbName === 'psycopg2' || dbName === 'postgres' || dbName === 'postgresql') {
    database = {
      name: 'postgres',
      args: {
        host: dbArgs.string('host', 'localhost'),
        port: dbArgs.number('port', 5432, { integer: true, min: 1, max: 65535 }),
        user: dbArgs.string('user', 'gatehouse'),
        password: dbArgs.optionalString('password'),
        // Synapse (psycopg2) calls it `database`; libpq also accepts `dbname`.
        database: dbArgs.string('database', dbArgs.string('dbname', 'gatehouse')),
        sslmode: 'prefer',
      },
    };
    const sslmode = dbArgs.string('sslmode', 'prefer');
    const modes = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
    if ((modes as readonly string[]).includes(sslmode)) database.args.sslmode = sslmode as (typeof modes)[number];
    else errors.push(`database.args.sslmode: expected one of ${modes.join(', ')}, got "${sslmode}"`);
  } else {
    errors.push(`database.name: expected "sqlite3" or "psycopg2" (PostgreSQL), got "${dbName}"`);
    database = { name: 'sqlite3', args: { database: ':memory:' } };
  }

  const logLevel = root.string('log_level', 'info');
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  if (!(levels as readonly string[]).includes(logLevel))
    errors.push(`log_level: expected one of ${levels.join(', ')}, got "${logLevel}"`);

  const pw = track(root.section('password_config'));
  const pol = track(pw.section('policy'));
  const policy: PasswordPolicy = {
    enabled: pol.boolean('enabled', false),
    minimum_length: pol.number('minimum_length', 0, { integer: true, min: 0, max: 512 }),
    require_digit: pol.boolean('require_digit', false),
    require_symbol: pol.boolean('require_symbol', false),
    require_lowercase: pol.boolean('require_lowercase', false),
    require_uppercase: pol.boolean('require_uppercase', false),
  };
  // `localdb_enabled: true` is what Gatehouse does; any other value is refused (restrictive-keys.ts).
  // `pepper` is not accepted quietly: Gatehouse's hashes carry none, which the admin should hear of.
  pw.accept('localdb_enabled');
  // Synapse's third value, only_for_reauth, is refused as not supported (restrictive-keys.ts), not as a type error.
  const passwordEnabled = pw.peek('enabled') === 'only_for_reauth' ? (pw.accept('enabled'), false) : pw.boolean('enabled', true);

  const a2 = track(root.section('argon2'));
  const rcLogin = track(root.section('rc_login'));
  const rcLoginAddr = track(rcLogin.section('address'));
  const rcLoginAcct = track(rcLogin.section('account'));
  const rcLoginFail = track(rcLogin.section('failed_attempts'));
  const rcReg = track(root.section('rc_registration'));

  let sharedSecret = root.optionalString('registration_shared_secret');
  // As Synapse: the secret may live in a file of its own (kept out of the config).
  const sharedSecretPath = root.optionalString('registration_shared_secret_path');
  if (sharedSecretPath !== null) {
    if (sharedSecret !== null) errors.push('registration_shared_secret_path: give either it or registration_shared_secret, not both');
    else {
      const file = resolvePath(sharedSecretPath, baseDir);
      try {
        sharedSecret = readFileSync(file, 'utf8').trim();
        if (!sharedSecret) errors.push(`registration_shared_secret_path: ${file} is empty`);
      } catch (e) {
        errors.push(`registration_shared_secret_path: cannot read the secret from ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
  }
  if (sharedSecret !== null && sharedSecret.length > 0 && sharedSecret.length < 8)
    errors.push('registration_shared_secret: must be at least 8 characters (or leave it out to disable shared-secret registration)');

  const config: Config = {
    server_name: serverName,
    public_baseurl: publicBaseurl,
    listeners,
    database,
    data_directory: dataDirectory,
    signing_key_path: resolvePath(
      root.string('signing_key_path', resolvePath(`${serverName || 'server'}.signing.key`, dataDirectory)),
      baseDir,
    ),
    log_level: logLevel as Config['log_level'],
    enable_registration: root.boolean('enable_registration', false),
    enable_registration_without_verification: root.boolean('enable_registration_without_verification', false),
    registration_requires_token: root.boolean('registration_requires_token', false),
    inhibit_user_in_use_error: root.boolean('inhibit_user_in_use_error', false),
    registration_requires_approval: requiresApproval(root, track),
    registration_shared_secret: sharedSecret,
    allow_guest_access: root.boolean('allow_guest_access', false),
    admin_contact: root.optionalString('admin_contact'),
    serve_server_wellknown: root.boolean('serve_server_wellknown', false),
    well_known_server: wellKnownServer(root, errors),
    well_known_support: wellKnownSupport(track(root.section('well_known_support')), root.has('well_known_support'), errors),
    password_config: { enabled: passwordEnabled, policy },
    argon2: {
      // What Conduit, tuwunel and MAS use: 19 MiB, two passes, one lane (OWASP's minimum).
      memory_cost: a2.number('memory_cost', 19456, { integer: true, min: 1024, max: 4194304 }),
      time_cost: a2.number('time_cost', 2, { integer: true, min: 1, max: 100 }),
      parallelism: a2.number('parallelism', 1, { integer: true, min: 1, max: 16 }),
    },
    enable_set_displayname: root.boolean('enable_set_displayname', true),
    enable_set_avatar_url: root.boolean('enable_set_avatar_url', true),
    enable_3pid_changes: root.boolean('enable_3pid_changes', true),
    email: emailConfig(root, track, errors, baseDir),
    registrations_require_3pid: requiredThreepids(root, errors),
    threepid_policy: threepidPolicyConfig(root, track, errors),
    request_token_inhibit_3pid_errors: root.boolean('request_token_inhibit_3pid_errors', false),
    profile_fields: profileFields(track(root.section('profile_fields')), errors),
    require_auth_for_profile_requests: root.boolean('require_auth_for_profile_requests', false),
    limit_profile_requests_to_users_who_share_rooms: root.boolean('limit_profile_requests_to_users_who_share_rooms', false),
    user_directory: userDirectory(track(root.section('user_directory'))),
    // Synapse's defaults.
    rc_login: {
      address: rateLimit(rcLoginAddr, { per_second: 0.003, burst_count: 5 }),
      account: rateLimit(rcLoginAcct, { per_second: 0.003, burst_count: 5 }),
      failed_attempts: rateLimit(rcLoginFail, { per_second: 0.17, burst_count: 3 }),
    },
    rc_registration: rateLimit(rcReg, { per_second: 0.17, burst_count: 3 }),
    rc_registration_token_validity: rateLimit(track(root.section('rc_registration_token_validity')), { per_second: 0.1, burst_count: 5 }),
    rc_3pid_validation: rateLimit(track(root.section('rc_3pid_validation')), { per_second: 0.003, burst_count: 5 }),
    // Synapse: refreshable tokens default to 5 minutes, refresh tokens and
    // non-refreshable access tokens to "never expire".
    refreshable_access_token_lifetime: root.duration('refreshable_access_token_lifetime', 5 * 60_000),
    refresh_token_lifetime: root.duration('refresh_token_lifetime', null),
    nonrefreshable_access_token_lifetime: root.duration('nonrefreshable_access_token_lifetime', null),
    // Synapse: a sign-in lasts forever unless this caps it, refreshed or not.
    session_lifetime: root.duration('session_lifetime', null),
    ui_auth_session_lifetime: 0,
    login_via_existing_session: { enabled: false, require_ui_auth: true, token_timeout: 0 },
    max_request_body_size: root.size('max_request_body_size', 1024 * 1024),
    ...turnConfig(root, errors),
    ...termsConfig({ root, track, errors, baseDir, publicBaseurl }),
    templates: { custom_template_directory: templateDirectory(track(root.section('templates')), baseDir, errors) },
    caches: { access_token_max_entries: 0, access_token_max_age: 0 },
  };
  const uiAuth = track(root.section('ui_auth'));
  // 30 minutes (Synapse keeps UIA sessions for 48 hours, which holds a registration token's use
  // for two days when someone starts registering and gives up).
  config.ui_auth_session_lifetime = uiAuth.duration('session_lifetime', 30 * 60_000) ?? 30 * 60_000;
  uiAuth.accept('session_timeout');
  config.login_via_existing_session = loginViaExistingSession(track(root.section('login_via_existing_session')), errors);
  config.caches = cachesConfig(track(root.section('caches')));

  const refusals = refuseRestrictiveKeys(raw);
  errors.push(...refusals.problems);

  if (config.registrations_require_3pid.includes('email') && config.email === null)
    errors.push('registrations_require_3pid: email addresses cannot be verified without an `email` section (SMTP settings); add one, or remove email from the list');

  // A refused verification step (CAPTCHA...) says what is wrong already.
  // A registration token and a required email address are verification steps of their own (as Synapse).
  const verified = config.registration_requires_token || config.registrations_require_3pid.length > 0;
  if (config.enable_registration && !config.enable_registration_without_verification && !verified && !refusals.gatesRegistration) {
    // As Synapse: open registration with no verification step must be asked for explicitly.
    errors.push(
      'enable_registration: open registration without any verification lets anyone create accounts; ' +
        'set enable_registration_without_verification: true if that is what you want',
    );
  }

  // Keys from Synapse configs that Gatehouse accepts and ignores quietly.
  root.accept(
    'report_stats', 'pid_file', 'log_config', 'media_store_path', 'macaroon_secret_key', 'form_secret',
    'trusted_key_servers', 'suppress_key_server_warning', 'bcrypt_rounds', 'url_preview_enabled',
    'enable_metrics', 'presence', 'federation_ip_range_blacklist', 'url_preview_ip_range_blacklist',
    // Gatehouse offers no registration by phone number, so this always holds.
    'disable_msisdn_registration',
  );

  if (errors.length) throw new ConfigError(errors);
  const warnings = sections.flatMap((s) => s.unknownKeys()).map((k) => `unknown configuration key "${k}" is ignored`);
  return { config, warnings };
}

/**
 * Synapse's registrations_require_3pid: a list of media. `email` is
 * supported; `msisdn` (phone numbers) is not, and since it restricts
 * registration the server refuses to start rather than ignore it.
 */
function requiredThreepids(root: Section, errors: string[]): 'email'[] {
  const list = root.list('registrations_require_3pid') ?? [];
  const out: 'email'[] = [];
  list.forEach((m, i) => {
    if (m === 'email') {
      if (!out.includes('email')) out.push('email');
    } else if (m === 'msisdn')
      errors.push(`registrations_require_3pid[${i}]: msisdn (phone numbers) is not supported yet: Gatehouse cannot verify phone numbers; remove it`);
    else errors.push(`registrations_require_3pid[${i}]: expected "email", got ${JSON.stringify(m)}`);
  });
  return out;
}

/**
 * The `caches` section: Gatehouse's access-token cache keys; Synapse's own keys
 * there (cache sizes and expiry of its many caches) are accepted and ignored.
 */
function cachesConfig(s: Section): Config['caches'] {
  s.accept('global_factor', 'per_cache_factors', 'expire_caches', 'cache_entry_ttl', 'sync_response_cache_duration', 'cache_autotuning');
  return {
    // About 1 KB each (docs/admin-guide.md): 100 MB at most.
    access_token_max_entries: s.number('access_token_max_entries', 100_000, { integer: true, min: 0, max: 10_000_000 }),
    // The bound for writers that cannot announce a change (the CLI on SQLite, SQL typed by hand).
    access_token_max_age: s.duration('access_token_max_age', 5_000) ?? 5_000,
  };
}

/** Synapse's TURN keys (top level), with Synapse's defaults: a lifetime of an hour, guests allowed. */
type TurnConfig = Pick<Config, 'turn_uris' | 'turn_shared_secret' | 'turn_username' | 'turn_password' | 'turn_user_lifetime' | 'turn_allow_guests'>;

function turnConfig(root: Section, errors: string[]): TurnConfig {
  const uris = root.list('turn_uris') ?? [];
  if (!uris.every((u) => typeof u === 'string')) errors.push('turn_uris: expected a list of strings');
  const lifetime = root.duration('turn_user_lifetime', 60 * 60_000) ?? 60 * 60_000;
  if (lifetime <= 0) errors.push('turn_user_lifetime: must be more than 0');
  return {
    turn_uris: uris.filter((u): u is string => typeof u === 'string'),
    turn_shared_secret: root.optionalString('turn_shared_secret'),
    turn_username: root.optionalString('turn_username'),
    turn_password: root.optionalString('turn_password'),
    turn_user_lifetime: lifetime,
    turn_allow_guests: root.boolean('turn_allow_guests', true),
  };
}

export function resolvePath(p: string, baseDir: string): string {
  return isAbsolute(p) || p === ':memory:' ? p : resolve(baseDir, p);
}

export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read ${path}: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = yaml().parse(text);
  } catch (e) {
    throw new ConfigError([`${path} is not valid YAML: ${(e as Error).message}`]);
  }
  keepVersionsAsWritten(text, raw);
  return buildConfig(raw ?? {}, dirname(resolve(path)));
}
