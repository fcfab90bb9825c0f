#!/bin/sh
# Starts Gatehouse the way Complement (matrix-org/complement) expects a
# homeserver image to start. Complement runs this more than once on the same
# container filesystem (blueprints are built, stopped, committed, and started
# again), so the config is rewritten from the environment on every start while
# the database and signing key stay put: the same SERVER_NAME means the same
# data directory, hence the same users, devices and key ID after a restart.
#
# The settings below are for testing only (a known shared secret, rate limits
# off, fast password hashing): never use this script for a real server.
#
# Environment:
#   SERVER_NAME             the homeserver name, used verbatim (Complement: hs1, hs2, ...)
#   GATEHOUSE_DATA_DIR      where state lives, one directory per server name (default /data)
#   GATEHOUSE_APP_DIR       where Gatehouse is installed (default /app)
#   GATEHOUSE_PORT          client API port (default 8008)
#   GATEHOUSE_BIND_ADDRESS  listen address (default 0.0.0.0)
#   GATEHOUSE_LOG_LEVEL     log level (default info)
#
# Federation is not served: Gatehouse does not federate yet, so nothing listens
# on 8448 and the Complement CA in /complement/ca is not used. The image still
# EXPOSEs 8448 because Complement waits for a host binding of both ports.
# Application service registrations (/complement/appservice) and config
# overrides (/conf/homeserver.d) are not supported either.
set -eu
# Everything written here (the config with its shared secret, the database,
# the signing key) is readable by its owner only.
umask 077

SERVER_NAME="${SERVER_NAME:-localhost}"
DATA_ROOT="${GATEHOUSE_DATA_DIR:-/data}"
APP_DIR="${GATEHOUSE_APP_DIR:-/app}"
PORT="${GATEHOUSE_PORT:-8008}"
BIND_ADDRESS="${GATEHOUSE_BIND_ADDRESS:-0.0.0.0}"
LOG_LEVEL="${GATEHOUSE_LOG_LEVEL:-info}"

fail() {
  echo "complement-entrypoint: $*" >&2
  exit 1
}

# The name goes into a YAML string and a directory name: allow only what a
# Matrix server name may hold (host name or IP literal, optional port).
case "$SERVER_NAME" in
  *[!A-Za-z0-9.:\[\]-]* | "" | .* | */*) fail "SERVER_NAME \"$SERVER_NAME\" is not a valid server name" ;;
esac
case "$BIND_ADDRESS" in
  *[!0-9A-Fa-f.:]* | "") fail "GATEHOUSE_BIND_ADDRESS \"$BIND_ADDRESS\" is not an IP address" ;;
esac
case "$PORT" in
  *[!0-9]* | "") fail "GATEHOUSE_PORT \"$PORT\" is not a port number" ;;
esac
case "$LOG_LEVEL" in
  fatal | error | warn | info | debug | trace | silent) ;;
  *) fail "GATEHOUSE_LOG_LEVEL \"$LOG_LEVEL\" is not a log level" ;;
esac
[ -f "$APP_DIR/dist/src/main.js" ] || fail "$APP_DIR/dist/src/main.js not found (set GATEHOUSE_APP_DIR)"

DATA_DIR="$DATA_ROOT/$SERVER_NAME"
CONFIG="$DATA_DIR/homeserver.yaml"
mkdir -p "$DATA_DIR"

cat >"$CONFIG" <<YAML
# Written by complement-entrypoint.sh on every start; edits are lost.
server_name: "$SERVER_NAME"
# What Complement's reference images advertise (clients reach the mapped port).
public_baseurl: "http://127.0.0.1:8008/"
listeners:
  - port: $PORT
    bind_addresses: ["$BIND_ADDRESS"]
    type: http
    x_forwarded: false
data_directory: "$DATA_DIR"
database:
  name: sqlite3
  args:
    database: "$DATA_DIR/homeserver.db"
signing_key_path: "$DATA_DIR/$SERVER_NAME.signing.key"

# Complement registers users with one m.login.dummy request, and admins
# through shared-secret registration with the secret "complement".
enable_registration: true
enable_registration_without_verification: true
registration_shared_secret: "complement"

# Complement's passwords are short and simple: no policy.
password_config:
  enabled: true
  policy:
    enabled: false

# Rate limits effectively off (9999/s, burst 9999), as in Synapse's image.
rc_login:
  address: { per_second: 9999, burst_count: 9999 }
  account: { per_second: 9999, burst_count: 9999 }
  failed_attempts: { per_second: 9999, burst_count: 9999 }
rc_registration: { per_second: 9999, burst_count: 9999 }

# Cheapest argon2id, like Synapse's bcrypt_rounds: 4 in its test image.
argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 }

log_level: $LOG_LEVEL
YAML

echo "complement-entrypoint: starting Gatehouse for $SERVER_NAME (data in $DATA_DIR)" >&2
# exec: node becomes PID 1 and receives docker stop's SIGTERM itself.
exec node "$APP_DIR/dist/src/main.js" start --config "$CONFIG"
