// An ephemeral homeserver for client, SDK and test authors: in-memory SQLite,
// open registration, no rate limits, an admin account. `gatehouse start
// --ephemeral` runs one in its own process; `startEphemeral()` (exported by the
// package) runs one inside the caller's process. Nothing here is global: each
// server has its own database, signing key, sweep timer and listener, so a
// process may run several at once.

import type { Logger } from 'pino';
import { buildConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { randomString } from './crypto/tokens.js';
import { createLogger } from './logger.js';

/** Options of {@link startEphemeral}; every one may be left out. */
export interface EphemeralOptions {
  /** The server name (the part after the colon in user IDs). Default `localhost`. */
  serverName?: string;
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /**
   * Overrides of the ephemeral configuration: a partial homeserver.yaml object
   * (the same keys, validated the same way as the file). Top-level keys replace
   * the ephemeral defaults whole, e.g. `{ enable_registration: false }` or
   * `{ argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } }`.
   * An invalid value makes {@link startEphemeral} reject with a `ConfigError`.
   */
  config?: Record<string, unknown>;
  /**
   * The log level (homeserver.yaml's `log_level`): `fatal`, `error`, `warn`,
   * `info`, `debug`, `trace` or `silent`. Default `warn`. Lines go to stderr
   * as JSON (pino) unless `logger` is given. `config.log_level` wins over it.
   */
  logLevel?: Config['log_level'];
  /** A pino logger to write to instead (its own level applies). */
  logger?: Logger;
  /** The admin account's localpart. Default `admin`. */
  adminLocalpart?: string;
}

/** A running ephemeral server (see {@link startEphemeral}). */
export interface EphemeralServer {
  /** Where clients connect, without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  baseUrl: string;
  serverName: string;
  /** The admin account: its user ID, password and an access token (server admin: the `/_synapse/admin` API). */
  adminUserId: string;
  adminPassword: string;
  adminToken: string;
  /** `registration_shared_secret`, for `/_synapse/admin/v1/register` (HMAC-SHA1, as Synapse). */
  sharedSecret: string;
  /** The effective configuration (read-only use). */
  config: Config;
  /** Stops listening, closes every connection and drops the database. Safe to call twice. */
  close(): Promise<void>;
}

const OPEN = { per_second: 1_000_000, burst_count: 1_000_000 };
/**
 * argon2id at its cheapest sensible cost: the accounts die with the process,
 * and a test suite registers and logs in many times. The default (19 MiB,
 * t=2) costs each registration and login 50–100 ms of CPU (1 MiB, t=1: ~10 ms)
 * and the admin's hash is part of startEphemeral()'s start time.
 * `config: { argon2: … }` restores production costs.
 */
const EPHEMERAL_ARGON2 = { memory_cost: 1024, time_cost: 1, parallelism: 1 };

/**
 * The ephemeral configuration: 127.0.0.1 only, an in-memory database, open
 * registration without verification, a fresh shared secret, rate limits out
 * of the way, cheap password hashing; `overrides` replace top-level keys.
 * Throws `ConfigError`.
 */
export function ephemeralConfig(serverName: string, port: number, logLevel: string, overrides: Record<string, unknown> = {}): Config {
  const { config } = buildConfig(
    {
      server_name: serverName,
      public_baseurl: `http://127.0.0.1:${port}/`,
      listeners: [{ port, bind_addresses: ['127.0.0.1'], type: 'http' }],
      database: { name: 'sqlite3', args: { database: ':memory:' } },
      enable_registration: true,
      enable_registration_without_verification: true,
      registration_shared_secret: randomString(32),
      log_level: logLevel,
      rc_login: { address: OPEN, account: OPEN, failed_attempts: OPEN },
      rc_registration: OPEN,
      rc_registration_token_validity: OPEN,
      rc_3pid_validation: OPEN,
      argon2: EPHEMERAL_ARGON2,
      ...overrides,
    },
    process.cwd(),
  );
  return config;
}

/** As {@link EphemeralServer}, plus the logger, for `gatehouse start --ephemeral`. */
export interface StartedEphemeral extends EphemeralServer {
  logger: Logger;
}

/** What startEphemeral does, with the logger handed back (main.ts logs the shutdown with it). */
export async function launchEphemeral(options: EphemeralOptions = {}, defaultLogDestination: 1 | 2 = 2): Promise<StartedEphemeral> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port: ${String(port)} is not a port number`);
  const serverName = options.serverName ?? 'localhost';
  const config = ephemeralConfig(serverName, port, options.logLevel ?? 'warn', options.config);
  const logger = options.logger ?? createLogger(config.log_level, defaultLogDestination);
  // Loaded here, not at the top: `gatehouse --help` and the config checks answer without the server's modules.
  const { createGatehouse } = await import('./app.js');
  const gatehouse = await createGatehouse(config, { logger, ephemeralKey: true });
  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= (async () => {
      await gatehouse.close();
      // The log is written asynchronously: let the last lines out.
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })());
  try {
    const addresses = await gatehouse.listen();
    const urls = addresses.map((a) => `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    const baseUrl = urls[0]!;
    // Port 0: advertise (well-known, login's well_known) the port actually picked, unless the caller set public_baseurl.
    if (port === 0 && options.config?.public_baseurl === undefined) config.public_baseurl = `${baseUrl}/`;
    logger.info({ server_name: config.server_name, listening: urls }, 'Gatehouse is ready');
    const adminPassword = randomString(24);
    const admin = await gatehouse.createAdmin(options.adminLocalpart ?? 'admin', adminPassword);
    return {
      baseUrl,
      serverName: config.server_name,
      adminUserId: admin.user_id,
      adminPassword,
      adminToken: admin.access_token,
      sharedSecret: config.registration_shared_secret ?? '',
      config,
      logger,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Starts a homeserver inside this process, for tests: in-memory SQLite, open
 * registration (`m.login.dummy`), no rate limits, listening on 127.0.0.1, with
 * an admin account. Resolves once it serves requests.
 *
 *     const hs = await startEphemeral({ serverName: 'test.local' });
 *     // hs.baseUrl, hs.adminToken, hs.sharedSecret …
 *     await hs.close();
 *
 * Rejects with `ConfigError` (exported) for invalid `config` overrides, or
 * with the listen error (e.g. EADDRINUSE) for a taken port.
 */
export async function startEphemeral(options: EphemeralOptions = {}): Promise<EphemeralServer> {
  const { logger: _logger, ...server } = await launchEphemeral(options);
  return server;
}
