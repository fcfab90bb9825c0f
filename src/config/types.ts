// The validated configuration. Key names follow Synapse's homeserver.yaml
// wherever the feature exists in both, so admins can carry a config over.

import type { ThreepidPolicy } from '../domain/threepids.js';
import type { EmailConfig } from './email.js';

export type { EmailConfig } from './email.js';

export interface RateLimit {
  per_second: number;
  burst_count: number;
}

export interface Listener {
  port: number;
  bind_addresses: string[];
  /** Trust X-Forwarded-For from a reverse proxy (Synapse's `x_forwarded`). */
  x_forwarded: boolean;
}

export type DatabaseConfig =
  | { name: 'sqlite3'; args: { database: string } }
  | {
      name: 'postgres';
      args: {
        host: string;
        port: number;
        user: string;
        password: string | null;
        database: string;
        /** libpq's sslmode: disable, prefer, require, verify-ca or verify-full. */
        sslmode?: 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
      };
    };

export interface PasswordPolicy {
  enabled: boolean;
  minimum_length: number;
  require_digit: boolean;
  require_symbol: boolean;
  require_lowercase: boolean;
  require_uppercase: boolean;
}

export interface SupportContact {
  role: string;
  matrix_id: string | null;
  email_address: string | null;
}

export interface WellKnownSupport {
  contacts: SupportContact[];
  support_page: string | null;
}

/** One policy document in one language (MSC1692's `{name, url}`). */
export interface TermsDocument {
  name: string;
  /** The absolute http(s) URL clients show: as configured, or Gatehouse's own when it serves the document. */
  url: string;
  /**
   * The file Gatehouse serves at /_gatehouse/terms/...: its path under
   * `terms.documents_dir` (`<policy_id>/<lang>/<version>.html`). null when
   * the document is elsewhere (`url` configured) or served at /_matrix/consent.
   */
  file: string | null;
}

/** One policy of `m.login.terms` (MSC1692): a version, and the document in each language. */
export interface TermsPolicy {
  /** An opaque identifier (MSC1597). */
  version: string;
  /** By language code (RFC 5646, `-` or `_`). At least one. */
  languages: Record<string, TermsDocument>;
}

/** Synapse's `user_consent` section (its one policy, served at /_matrix/consent). */
export interface UserConsentConfig {
  version: string;
  /** `<template_dir>/<lang>/<version>.html` are the documents. */
  template_dir: string;
  policy_name: string;
  /** Adds the policy to `terms.policies` as `privacy_policy` (as Synapse). */
  require_at_registration: boolean;
  /** The languages that have `<lang>/<version>.html` in `template_dir`. */
  languages: string[];
}

export interface Config {
  server_name: string;
  public_baseurl: string | null;
  listeners: Listener[];
  database: DatabaseConfig;
  signing_key_path: string;
  /** Where the server keeps its files (SQLite database, signing key) by default. */
  data_directory: string;
  log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

  enable_registration: boolean;
  enable_registration_without_verification: boolean;
  /** Registration needs an admin-issued token (m.login.registration_token, MSC3231). */
  registration_requires_token: boolean;
  /** Synapse: /register/available says every well-formed name is free; a clash shows only after UIA. */
  inhibit_user_in_use_error: boolean;
  /** New accounts from /register wait for an admin's approval (MSC3866; Synapse's experimental_features.msc3866). */
  registration_requires_approval: boolean;
  registration_shared_secret: string | null;
  allow_guest_access: boolean;
  admin_contact: string | null;
  serve_server_wellknown: boolean;
  /** `m.server` of /.well-known/matrix/server ("host:port"); null = server_name, port 443 unless it names one. */
  well_known_server: string | null;
  /** /.well-known/matrix/support (MSC1929); null when not configured (then built from admin_contact, if set). */
  well_known_support: WellKnownSupport | null;

  password_config: { enabled: boolean; policy: PasswordPolicy };
  /** argon2id parameters (Gatehouse-only; Synapse uses bcrypt_rounds). */
  argon2: { memory_cost: number; time_cost: number; parallelism: number };

  enable_set_displayname: boolean;
  enable_set_avatar_url: boolean;
  /** Users may add and remove email addresses (Synapse's key; the `m.3pid_changes` capability). */
  enable_3pid_changes: boolean;
  /** Synapse's `email` section: sending validation mail. null = no email (every email requestToken is M_THREEPID_MEDIUM_NOT_SUPPORTED). */
  email: EmailConfig | null;
  /** Synapse's key: registration needs a validated address of these media (only `email` is supported). */
  registrations_require_3pid: 'email'[];
  /** Which addresses may be registered or added: Synapse's allowed_local_3pids and ma1sd's domain lists. */
  threepid_policy: ThreepidPolicy;
  /** Synapse's key: requestToken does not tell whether an address is in use (or unknown, at password reset). */
  request_token_inhibit_3pid_errors: boolean;
  /**
   * Which profile fields users may change (MSC4133's `m.profile_fields`
   * capability, Gatehouse's key): `enabled: false` allows none; `allowed`
   * (null = not given) lists the only ones; otherwise all but `disallowed`
   * (null = none). `enable_set_displayname` / `enable_set_avatar_url` narrow it further.
   */
  profile_fields: { enabled: boolean; allowed: string[] | null; disallowed: string[] | null };
  /** Profile lookups need an access token (Synapse's key; MSC4170). */
  require_auth_for_profile_requests: boolean;
  /** Profile lookups of anyone but oneself need a shared room (Synapse's key; MSC4170). No rooms yet: refused. */
  limit_profile_requests_to_users_who_share_rooms: boolean;
  /** Synapse's `user_directory` section (POST /user_directory/search). */
  user_directory: {
    enabled: boolean;
    /** Search every local user; otherwise only users who share a room with the searcher or are in a public room (none yet). */
    search_all_users: boolean;
    /** Show locked accounts (MSC3939) in results. */
    show_locked_users: boolean;
  };

  rc_login: { address: RateLimit; account: RateLimit; failed_attempts: RateLimit };
  rc_registration: RateLimit;
  /** GET /register/m.login.registration_token/validity, per client address. */
  rc_registration_token_validity: RateLimit;
  /** The requestToken endpoints, per client address and per email address (Synapse's key). */
  rc_3pid_validation: RateLimit;

  /** Milliseconds, or null for tokens that never expire. */
  refreshable_access_token_lifetime: number | null;
  refresh_token_lifetime: number | null;
  nonrefreshable_access_token_lifetime: number | null;
  /**
   * How long a sign-in lasts from login or registration, refreshed or not (ms);
   * null = forever. Every token of the sign-in expires by then (Synapse's key).
   */
  session_lifetime: number | null;
  /** How long a user-interactive auth session lives (ms). */
  ui_auth_session_lifetime: number;
  /**
   * Signing in another device from an existing session (MSC3882, spec v1.7:
   * POST /login/get_token and the `m.login.token` login type); Synapse's keys.
   * `token_timeout` is how long a login token lives (ms).
   */
  login_via_existing_session: { enabled: boolean; require_ui_auth: boolean; token_timeout: number };

  /**
   * TURN servers for VoIP (Synapse's keys; GET /voip/turnServer). With
   * `turn_shared_secret`, credentials follow the TURN REST API; otherwise the
   * static `turn_username`/`turn_password`. `turn_user_lifetime` in ms.
   */
  turn_uris: string[];
  turn_shared_secret: string | null;
  turn_username: string | null;
  turn_password: string | null;
  turn_user_lifetime: number;
  turn_allow_guests: boolean;

  /** Largest request body accepted, in bytes (Gatehouse-only). */
  max_request_body_size: number;

  /**
   * Terms of service at registration (MSC1692). `policies` (by policy ID) are
   * `terms.policies` plus, when `user_consent.require_at_registration`,
   * Synapse's `privacy_policy`; empty means no `m.login.terms` stage.
   */
  terms: { policies: Record<string, TermsPolicy>; documents_dir: string | null };
  /** Synapse's `user_consent`, when given. */
  user_consent: UserConsentConfig | null;
  /** Synapse's `templates` section: the admin's folder of page templates (absolute), or null for the built-in ones. */
  templates: { custom_template_directory: string | null };
  /**
   * The in-process access-token cache (Gatehouse keys under Synapse's `caches`
   * section): at most `access_token_max_entries` tokens, each trusted for
   * `access_token_max_age` ms after it was read. Either 0 turns the cache off.
   */
  caches: { access_token_max_entries: number; access_token_max_age: number };
}
