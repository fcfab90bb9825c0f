// The validated configuration. Key names follow Synapse's homeserver.yaml
// wherever the feature exists in both, so admins can carry a config over.

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
  enable_3pid_changes: boolean;

  rc_login: { address: RateLimit; account: RateLimit; failed_attempts: RateLimit };
  rc_registration: RateLimit;
  /** GET /register/m.login.registration_token/validity, per client address. */
  rc_registration_token_validity: RateLimit;

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

  /** Largest request body accepted, in bytes (Gatehouse-only). */
  max_request_body_size: number;

  /** Synapse's `templates` section: the admin's folder of page templates (absolute), or null for the built-in ones. */
  templates: { custom_template_directory: string | null };
}
