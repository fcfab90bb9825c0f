// Composition: config → database → repositories → UIA engine → handlers →
// routes. The whole house in one file; nothing else builds these objects.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import type { Knex } from 'knex';
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import { TokenCache } from './cache/token-cache.js';
import { PasswordHasher } from './crypto/passwords.js';
import { generateSigningKey, loadOrCreateSigningKey, type SigningKey } from './crypto/signing-key.js';
import { dialectOf, migrateToLatest, openDatabase, SqliteWriter } from './db/database.js';
import { AccountHandler, passwordResetFlows } from './handlers/account.js';
import { AccountStateHandler } from './handlers/account-state.js';
import { AccountApprovalHandler } from './handlers/admin/account-approval.js';
import { createAdminUser } from './handlers/admin/bootstrap.js';
import { RegistrationTokenAdminHandler } from './handlers/admin/registration-tokens.js';
import { SharedSecretRegistrationHandler } from './handlers/admin/shared-secret-registration.js';
import { UserSessionsAdminHandler } from './handlers/admin/user-sessions.js';
import { UserAdminHandler } from './handlers/admin/users.js';
import { DeviceHandler } from './handlers/devices.js';
import { E2eKeysHandler } from './handlers/e2e-keys.js';
import { KeyBackupHandler } from './handlers/key-backup.js';
import { FallbackHandler } from './handlers/fallback.js';
import { InviteHandler } from './handlers/invite.js';
import { LoginHandler } from './handlers/login.js';
import { LOGIN_TOKEN_REQUEST_LIMIT, LoginTokenHandler } from './handlers/login-tokens.js';
import { ProfileHandler } from './handlers/profiles.js';
import { RegistrationHandler } from './handlers/registration.js';
import { ServerInfoHandler } from './handlers/server-info.js';
import { SessionHandler } from './handlers/sessions.js';
import { TermsHandler } from './handlers/terms.js';
import { type AuthDeclaration, authDeclarationOf } from './http/middleware/auth.js';
import { UserDirectoryHandler } from './handlers/user-directory.js';
import { SyncHandler } from './handlers/sync.js';
import { AccountDataHandler, FilterHandler, PresenceHandler, ToDeviceHandler } from './handlers/sync-data.js';
import { syncRoutes } from './http/routes/sync.js';
import { accountDataContributor, presenceContributor, toDeviceContributor } from './sync/contributors.js';
import { LocalNotifier, type Notifier } from './sync/notifier.js';
import { PgNotifier } from './sync/pg-notifier.js';
import { deviceListPositionOf } from './sync/token.js';
import type { SyncContributor } from './sync/types.js';
import { e2eSyncContributor } from './sync/e2e-contributor.js';
import { ClientMiscHandler } from './handlers/client-misc.js';
import { OpenIdHandler } from './handlers/openid.js';
import { PushRuleHandler } from './handlers/push-rules.js';
import { PusherHandler } from './handlers/pushers.js';
import { clientMiscRoutes } from './http/routes/client-misc.js';
import { openIdRoutes } from './http/routes/openid.js';
import { pushRoutes } from './http/routes/push.js';
import { accountRoutes } from './http/routes/account.js';
import { adminModerationRoutes } from './http/routes/admin/moderation.js';
import { adminRegisterRoutes } from './http/routes/admin/register.js';
import { adminRegistrationTokenRoutes } from './http/routes/admin/registration-tokens.js';
import { adminTermsRoutes } from './http/routes/admin/terms.js';
import { adminUserRoutes } from './http/routes/admin/users.js';
import { deviceRoutes } from './http/routes/devices.js';
import { keyRoutes } from './http/routes/keys.js';
import { roomKeyRoutes } from './http/routes/room-keys.js';
import { loginRoutes } from './http/routes/login.js';
import { PAGE_FORM_PATHS, pageRoutes } from './http/routes/pages.js';
import { profileRoutes } from './http/routes/profile.js';
import { registerRoutes } from './http/routes/register.js';
import { serverInfoRoutes } from './http/routes/server-info.js';
import { termsRoutes } from './http/routes/terms.js';
import { userDirectoryRoutes } from './http/routes/user-directory.js';
import { Pages } from './http/pages.js';
import { createHttpApp } from './http/server.js';
import { type BucketStore, DatabaseBucketStore, MemoryBucketStore, RateLimiter } from './ratelimit/limiter.js';
import { PreparedAccessTokenLookup } from './repositories/tokens.js';
import { UiaEngine } from './uia/engine.js';
import { DummyStage } from './uia/stages/dummy.js';
import { PasswordStage } from './uia/stages/password.js';
import { RegistrationTokenStage } from './uia/stages/registration-token.js';
import { TermsStage } from './uia/stages/terms.js';
import { EmailIdentityStage } from './uia/stages/email-identity.js';
import { ThreepidValidationHandler } from './handlers/threepid-validation.js';
import { threepidValidationRoutes } from './http/routes/threepid.js';
import { ThreepidHandler } from './handlers/threepids.js';
import { accountThreepidRoutes } from './http/routes/account-threepids.js';
import { Mailer } from './mail/mailer.js';

export interface GatehouseOptions {
  logger: Logger;
  /** Keep the signing key in memory only (ephemeral servers). */
  ephemeralKey?: boolean;
}

export interface Gatehouse {
  config: Config;
  db: Knex;
  http: Koa;
  signingKey: SigningKey;
  /** Starts every listener; resolves to the bound addresses. */
  listen(): Promise<AddressInfo[]>;
  createAdmin(localpart: string, password: string): Promise<{ user_id: string; access_token: string; device_id: string }>;
  /** Every route the server answers (HEAD, which each GET also answers, left out): what the route-table tests walk. */
  routes(): RouteInfo[];
  close(): Promise<void>;
}

export interface RouteInfo {
  method: string;
  /** The router's pattern, e.g. `/_matrix/client/v3/devices/:deviceId`. */
  path: string;
  /** What its auth middleware declares (requireAuth, requireAdmin); null for a route that takes no access token. */
  auth: AuthDeclaration | null;
}

/** The routes mounted on `router`, in the order they were added. */
export function routeTable(router: Router): RouteInfo[] {
  return router.stack.flatMap((layer) => {
    const auth = layer.stack.map(authDeclarationOf).find((d) => d !== undefined) ?? null;
    return layer.methods.filter((m) => m !== 'HEAD').map((method) => ({ method, path: String(layer.path), auth }));
  });
}

/**
 * How often this process sweeps expired UIA sessions and tokens: every minute,
 * or twice per UIA session lifetime when that is shorter, so that a session's
 * held registration-token use comes back soon after the session expires.
 */
const sweepInterval = (uiaLifetimeMs: number) => Math.min(60_000, Math.max(250, Math.floor(uiaLifetimeMs / 2)));

export async function createGatehouse(config: Config, opts: GatehouseOptions): Promise<Gatehouse> {
  const { logger } = opts;
  // Templates first: a broken custom template stops the start before anything is opened
  // (Gatehouse's own templates compile on first render).
  const pages = new Pages(config.templates.custom_template_directory, { server_name: config.server_name });
  pages.verifyCustom();
  const mailer = config.email === null ? null : new Mailer(config.email, logger, { customTemplateDirectory: config.templates.custom_template_directory });
  mailer?.verifyCustom();
  const db = openDatabase(config.database);
  const applied = await migrateToLatest(db);
  if (applied.length) logger.info({ migrations: applied }, 'database migrated');

  let signingKey: SigningKey;
  if (opts.ephemeralKey) signingKey = generateSigningKey();
  else {
    const loaded = loadOrCreateSigningKey(config.signing_key_path);
    if (loaded.created) logger.info({ path: config.signing_key_path, key_id: loaded.key.keyId }, 'generated a new signing key');
    signingKey = loaded.key;
  }

  const hasher = new PasswordHasher(config.argon2);
  // One SQLite file serves one process, so its buckets can live in memory; PostgreSQL
  // may have several processes behind it, which must share their buckets.
  const buckets: BucketStore = dialectOf(db) === 'postgres' ? new DatabaseBucketStore(db) : new MemoryBucketStore();
  const limiters = {
    address: new RateLimiter(buckets, 'rc_login.address', config.rc_login.address),
    account: new RateLimiter(buckets, 'rc_login.account', config.rc_login.account),
    failedAttempts: new RateLimiter(buckets, 'rc_login.failed_attempts', config.rc_login.failed_attempts),
    registration: new RateLimiter(buckets, 'rc_registration', config.rc_registration),
    registrationTokenValidity: new RateLimiter(buckets, 'rc_registration_token_validity', config.rc_registration_token_validity),
    loginTokenRequest: new RateLimiter(buckets, 'login_token_request', LOGIN_TOKEN_REQUEST_LIMIT),
    threepidValidation: new RateLimiter(buckets, 'rc_3pid_validation', config.rc_3pid_validation),
  };

  const uia = new UiaEngine(
    db,
    [
      new DummyStage(),
      new PasswordStage(config.server_name, hasher, limiters.failedAttempts),
      new RegistrationTokenStage(),
      new TermsStage(config.terms.policies),
      new EmailIdentityStage(),
    ],
    config.ui_auth_session_lifetime,
    hasher,
  );
  // SQLite files get the token lookup on a prepared statement and a connection of its own (the hot
  // path of every signed-in request); PostgreSQL and in-memory SQLite use the shared pool.
  const preparedLookup =
    config.database.name === 'sqlite3' && config.database.args.database !== ':memory:'
      ? await PreparedAccessTokenLookup.open(config.database.args.database)
      : null;
  // /sync: one notifier per process (LISTEN/NOTIFY across the processes sharing a PostgreSQL database).
  // The access-token cache; on PostgreSQL the notifier keeps it off while it cannot hear other processes' changes.
  const tokenCache = new TokenCache({ maxEntries: config.caches.access_token_max_entries, maxAgeMs: config.caches.access_token_max_age });
  const pgNotifier = dialectOf(db) === 'postgres' ? new PgNotifier(db, logger, tokenCache) : null;
  await pgNotifier?.start();
  const notifier: Notifier = pgNotifier ?? new LocalNotifier();
  const sessions = new SessionHandler(db, config, preparedLookup ? (h) => preparedLookup.find(h) : undefined, undefined, notifier, tokenCache);
  const info = new ServerInfoHandler(config, signingKey);
  const threepidValidation = new ThreepidValidationHandler(db, config, mailer, limiters.threepidValidation, logger);
  const registration = new RegistrationHandler(db, config, uia, sessions, limiters.registration, limiters.registrationTokenValidity);
  const loginTokens = new LoginTokenHandler(db, config, uia, limiters.loginTokenRequest);
  // SQLite: the usual password sign-in's transaction on statements prepared once on the writer connection.
  const signInWriter = dialectOf(db) === 'sqlite' ? new SqliteWriter(db) : null;
  const login = new LoginHandler(db, config, sessions, hasher, limiters, loginTokens, {
    findUser: preparedLookup ? (id) => preparedLookup.findUser(id) : undefined,
    signInWriter,
  });
  const account = new AccountHandler(db, config, uia, hasher, sessions);
  const threepids = new ThreepidHandler(db, config, uia, threepidValidation);
  const devices = new DeviceHandler(db, config, uia, sessions);
  const sharedSecret = new SharedSecretRegistrationHandler(db, config, sessions, hasher);
  const registrationTokens = new RegistrationTokenAdminHandler(db, config.public_baseurl);
  const terms = new TermsHandler(db, config);
  const accountState = new AccountStateHandler(db, config.server_name, undefined, sessions);
  const userAdmin = new UserAdminHandler(db, config, hasher, sessions, accountState, new AccountApprovalHandler(db, config.server_name, sessions));
  const userSessionsAdmin = new UserSessionsAdminHandler(db, config.server_name, sessions);
  // Fallback pages exist for registration's stages (the token, the terms, the email) and the password reset's email stage.
  const fallback = new FallbackHandler(
    uia,
    (operation, userId) =>
      operation === 'POST /register' ? registration.flows() : operation === 'POST /account/password' && userId === null ? passwordResetFlows(config) : [],
    threepidValidation,
  );
  const invite = new InviteHandler(db, config, registration, uia, limiters.registrationTokenValidity);
  const profiles = new ProfileHandler(db, config);
  const userDirectory = new UserDirectoryHandler(db, config);
  const filters = new FilterHandler(db);
  const presence = new PresenceHandler(db, notifier);
  // Each area adds its part of the sync response (keys and rooms register theirs here).
  const syncContributors: SyncContributor[] = [accountDataContributor, toDeviceContributor, presenceContributor, e2eSyncContributor];
  const sync = new SyncHandler(db, notifier, syncContributors, presence);
  const accountData = new AccountDataHandler(db, notifier);
  const toDevice = new ToDeviceHandler(db, config.server_name, notifier);
  const pushRules = new PushRuleHandler(db);
  const pushers = new PusherHandler(db);
  const clientMisc = new ClientMiscHandler(config);
  const openid = new OpenIdHandler(db, config.server_name);
  // /keys/changes takes sync tokens: their device_lists position.
  const e2eKeys = new E2eKeysHandler(db, config, uia, notifier, deviceListPositionOf);
  const keyBackup = new KeyBackupHandler(db);

  let mounted: Router | null = null;
  const http = createHttpApp({
    logger,
    maxBodyBytes: config.max_request_body_size,
    trustProxy: config.listeners.some((l) => l.x_forwarded),
    formPaths: PAGE_FORM_PATHS,
    mount(router) {
      mounted = router;
      serverInfoRoutes(router, info, sessions, logger);
      registerRoutes(router, registration);
      loginRoutes(router, login, loginTokens, sessions, logger);
      accountRoutes(router, account, sessions, logger);
      deviceRoutes(router, devices, sessions, logger);
      adminRegisterRoutes(router, sharedSecret);
      adminRegistrationTokenRoutes(router, registrationTokens, sessions, logger);
      termsRoutes(router, terms);
      adminTermsRoutes(router, terms, sessions, logger);
      adminModerationRoutes(router, accountState, sessions, logger);
      adminUserRoutes(router, userAdmin, userSessionsAdmin, sessions, logger);
      pageRoutes(router, pages, fallback, invite, threepidValidation, config);
      threepidValidationRoutes(router, threepidValidation);
      accountThreepidRoutes(router, threepids, sessions, logger);
      profileRoutes(router, profiles, config, sessions, logger);
      userDirectoryRoutes(router, userDirectory, sessions, logger);
      syncRoutes(router, { sync, filters, accountData, toDevice, presence }, sessions, logger);
      pushRoutes(router, pushRules, pushers, sessions, logger);
      clientMiscRoutes(router, clientMisc, sessions, logger);
      openIdRoutes(router, openid, sessions, logger);
      keyRoutes(router, e2eKeys, sessions, logger);
      roomKeyRoutes(router, keyBackup, sessions, logger);
    },
  });

  const servers: Server[] = [];
  const sweep = setInterval(() => {
    uia.expireSessions().catch((err: unknown) => logger.error({ err }, 'UIA session sweep failed'));
    sessions.sweepExpiredTokens().catch((err: unknown) => logger.error({ err }, 'expired token sweep failed'));
    loginTokens.sweepExpired().catch((err: unknown) => logger.error({ err }, 'expired login token sweep failed'));
    threepidValidation.sweepExpired().catch((err: unknown) => logger.error({ err }, 'expired email validation sweep failed'));
  }, sweepInterval(config.ui_auth_session_lifetime));
  sweep.unref();

  return {
    config,
    db,
    http,
    signingKey,
    async listen() {
      const addresses: AddressInfo[] = [];
      for (const listener of config.listeners) {
        for (const host of listener.bind_addresses) {
          const server = http.listen({ port: listener.port, host });
          servers.push(server);
          await new Promise<void>((resolve, reject) => {
            server.once('listening', resolve);
            server.once('error', reject);
          });
          // Keep-alive longer than typical proxies' idle timeouts.
          server.keepAliveTimeout = 65_000;
          addresses.push(server.address() as AddressInfo);
        }
      }
      return addresses;
    },
    createAdmin: (localpart, password) => createAdminUser(db, config.server_name, hasher, sessions, localpart, password),
    routes: () => (mounted ? routeTable(mounted) : []),
    async close() {
      clearInterval(sweep);
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await preparedLookup?.close();
      await signInWriter?.close();
      await pgNotifier?.close();
      mailer?.close();
      await db.destroy();
    },
  };
}
