// Registration: POST /register (users through UIA, guests when allowed) and
// GET /register/available.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { randomString } from '../crypto/tokens.js';
import { checkNewLocalpart } from '../domain/user-ids.js';
import { forbidden, MatrixError, missingParam } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import * as Users from '../repositories/users.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import { createAccount, userInUse } from './accounts.js';
import { checkPassword } from './password-policy.js';
import type { IssuedSession, SessionHandler } from './sessions.js';

export interface RegisterRequest {
  username: string | null;
  password: string | null;
  deviceId: string | null;
  initialDeviceDisplayName: string | null;
  inhibitLogin: boolean;
  refreshToken: boolean;
  auth: unknown;
  ip: string;
  userAgent: string | null;
}

export type RegisterResponse = { user_id: string; home_server: string } & Partial<IssuedSession>;


export class RegistrationHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly uia: UiaEngine,
    private readonly sessions: SessionHandler,
    private readonly hasher: PasswordHasher,
    private readonly limiter: RateLimiter,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The UIA flows registration offers, from config. Later stages (token, terms, email) add flows here. */
  flows(): Flow[] {
    return this.config.enable_registration_without_verification ? [['m.login.dummy']] : [];
  }

  async register(req: RegisterRequest): Promise<RegisterResponse> {
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    // As Synapse: an address over its limit is refused before anything (even a UIA session) is made.
    await this.limiter.check(req.ip);

    // As Synapse: check what can be checked before UIA, so the client learns early.
    if (req.username !== null) {
      checkNewLocalpart(req.username, this.config.server_name);
      if (await Users.localpartExists(this.db, req.username)) throw userInUse();
    }
    if (req.password !== null) checkPassword(req.password, this.config.password_config.policy);

    const flows = this.flows();
    if (flows.length === 0) throw forbidden('Registration has been disabled');
    // Only what the request actually sets binds the session, so the session of
    // an empty probe (`POST /register {}`, as Element Web and Nheko send to
    // learn the flows) can be continued by the real request.
    const binding: Record<string, unknown> = {};
    if (req.username !== null) binding.username = req.username;
    if (req.inhibitLogin) binding.inhibit_login = true;
    const auth = await this.uia.authenticate(
      { name: 'POST /register', userId: null, binding, clientIp: req.ip },
      flows,
      req.auth,
    );
    if (req.password === null) throw missingParam('Missing params: password');

    await this.limiter.take(req.ip);
    const localpart = req.username ?? (await this.generateLocalpart());
    // Hash outside the transaction: argon2 takes tens of milliseconds and SQLite has one connection.
    const passwordHash = await this.hasher.hash(req.password);

    return this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      // As Synapse: the display name starts as the localpart.
      const account = { localpart, passwordHash, isAdmin: false, isGuest: false, displayname: localpart };
      const userId = await createAccount(trx, this.config.server_name, account, this.clock());
      if (!userId) throw userInUse();
      return this.signIn(trx, userId, req);
    });
  }

  /** Guest registration: no UIA, a numeric user ID, a generated device. */
  async registerGuest(req: { initialDeviceDisplayName: string | null; ip: string; userAgent: string | null }): Promise<RegisterResponse> {
    if (!this.config.allow_guest_access) throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled');
    await this.limiter.take(req.ip);
    return this.db.transaction(async (trx) => {
      // Guests get numeric localparts, a namespace users cannot register in.
      for (let attempt = 0; attempt < 10; attempt++) {
        const localpart = String(100000 + Math.floor(Math.random() * 9_899_999_999));
        const account = { localpart, passwordHash: null, isAdmin: false, isGuest: true, displayname: null };
        const userId = await createAccount(trx, this.config.server_name, account, this.clock());
        if (userId) return this.signIn(trx, userId, { ...req, deviceId: null, inhibitLogin: false, refreshToken: false });
      }
      throw new Error('could not allocate a guest user ID');
    });
  }

  private async signIn(
    trx: Knex,
    userId: string,
    req: Pick<RegisterRequest, 'deviceId' | 'initialDeviceDisplayName' | 'inhibitLogin' | 'refreshToken' | 'ip' | 'userAgent'>,
  ): Promise<RegisterResponse> {
    const base = { user_id: userId, home_server: this.config.server_name };
    if (req.inhibitLogin) return base;
    const session = await this.sessions.issue(trx, {
      userId,
      deviceId: req.deviceId,
      displayName: req.initialDeviceDisplayName,
      wantRefreshToken: req.refreshToken,
      ip: req.ip,
      userAgent: req.userAgent,
    });
    return { ...base, ...session };
  }

  /** A localpart for a registration that named none. */
  private async generateLocalpart(): Promise<string> {
    for (;;) {
      const candidate = `user-${randomString(10, 'abcdefghijklmnopqrstuvwxyz0123456789')}`;
      if (!(await Users.localpartExists(this.db, candidate))) return candidate;
    }
  }

  /** GET /register/available: true, or the reason the name cannot be had. */
  async available(username: string): Promise<{ available: true }> {
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    checkNewLocalpart(username, this.config.server_name);
    if (await Users.localpartExists(this.db, username)) throw userInUse();
    return { available: true };
  }
}
