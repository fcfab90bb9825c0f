// The homeserver.yaml that `gatehouse generate-config` writes. The repository's
// own homeserver.yaml is this template for server_name "localhost".

export function configTemplate(opts: { serverName: string; sharedSecret: string | null; openRegistration: boolean }): string {
  const secret = opts.sharedSecret
    ? `registration_shared_secret: "${opts.sharedSecret}"`
    : `# registration_shared_secret: "<a long random string>"`;
  return `# Gatehouse configuration. Key names follow Synapse's homeserver.yaml
# wherever the feature exists in both; see docs/configuration.md.

# The name in your users' IDs (@alice:${opts.serverName}). It cannot be changed later.
server_name: "${opts.serverName}"

# The URL clients reach this server at. Used for .well-known and the login
# response's well_known; leave it out when clients are given the URL by hand.
# public_baseurl: "https://matrix.${opts.serverName}/"

listeners:
  - port: 8008
    bind_addresses: ["127.0.0.1"]
    type: http
    x_forwarded: false

# SQLite under ./data by default. For PostgreSQL:
#   database:
#     name: psycopg2
#     args: { host: localhost, port: 5432, user: gatehouse, password: secret, database: gatehouse }
database:
  name: sqlite3
  args:
    database: ./data/homeserver.db

signing_key_path: ./data/${opts.serverName}.signing.key

enable_registration: ${opts.openRegistration}
# Open registration with no verification step must be asked for explicitly.
enable_registration_without_verification: ${opts.openRegistration}

# Lets admin tools (register_new_matrix_user, synadm) create users.
${secret}

password_config:
  enabled: true
  policy:
    enabled: false
    minimum_length: 8
    require_digit: false
    require_symbol: false
    require_lowercase: false
    require_uppercase: false

rc_login:
  address: { per_second: 0.003, burst_count: 5 }
  account: { per_second: 0.003, burst_count: 5 }
  failed_attempts: { per_second: 0.17, burst_count: 3 }
rc_registration: { per_second: 0.17, burst_count: 3 }

# Lifetime of access tokens issued with a refresh token, and of refresh tokens.
refreshable_access_token_lifetime: 5m
# refresh_token_lifetime: 30d
# How long a sign-in lasts, refreshed or not; then the user signs in again.
# session_lifetime: 30d

# Who may register: a registration token first (gatehouse tokens new), new
# accounts waiting for your approval (gatehouse users pending / approve).
# registration_requires_token: true
# registration_requires_approval: true

# Email: confirm addresses at registration, let people reset a forgotten
# password and sign in with their address (docs/admin-guide.md, "Email").
# email:
#   smtp_host: mail.${opts.serverName}
#   smtp_port: 587
#   smtp_user: matrix
#   smtp_pass: "<password>"
#   require_transport_security: true
#   notif_from: "%(app)s <noreply@${opts.serverName}>"
#   app_name: Matrix
# Registration then needs a confirmed address (it is also offered without this).
# registrations_require_3pid: [email]

# Let users find each other by name (Synapse's default, false, finds only
# people who share a room).
user_directory:
  search_all_users: true

# admin_contact: "mailto:admin@${opts.serverName}"
log_level: info
`;
}
