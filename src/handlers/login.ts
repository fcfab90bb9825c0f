// Password login (POST /login) and the flows advertised by GET /login.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { attemptsKey, namedUser } from '../domain/user-ids.js';
import { awaitingApproval, forbidden, MatrixError, missingParam } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import * as Users from '../repositories/users.js';
import { userLocked } from './account-state.js';
import type { IssuedSession, SessionHandler } from './sessions.js';

export interface LoginRequest {
  type: string;
  password: string | null;
  /** The request's `identifier` (or legacy `user`) fields, as sent: see namedUser. */
  identifier: { identifier?: unknown; user?: unknown };
  deviceId: string | null;
  initialDeviceDisplayName: string | null;
  refreshToken: boolean;
  ip: string;
  userAgent: string | null;
}

export interface LoginLimiters {
  address: RateLimiter;
  account: RateLimiter;
  failedAttempts: RateLimiter;
}

export type LoginResponse = IssuedSession & {
  user_id: string;
  home_server: string;
  well_known?: { 'm.homeserver': { base_url: string } };
};

const invalidCredentials = () => forbidden('Invalid username or password');

export class LoginHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly sessions: SessionHandler,
    private readonly hasher: PasswordHasher,
    private readonly limiters: LoginLimiters,
    private readonly clock: () => number = Date.now,
  ) {}

  flows(): { flows: { type: string }[] } {
    return { flows: this.config.password_config.enabled ? [{ type: 'm.login.password' }] : [] };
  }

  async login(req: LoginRequest): Promise<LoginResponse> {
    if (req.type !== 'm.login.password' || !this.config.password_config.enabled)
      throw new MatrixError(400, 'M_UNKNOWN', `Unknown login type ${req.type}`);
    const password = req.password;
    if (password === null) throw missingParam('Missing parameter: password');

    await this.limiters.address.take(req.ip);
    const named = namedUser(req.identifier, this.config.server_name);
    // A user ID of another server (or longer than any) names no one here: a wrong name.
    if (!named) throw invalidCredentials();
    const limitKey = attemptsKey(named.userId);
    await this.limiters.account.take(limitKey);
    // Counted before the check, so parallel guesses cannot all slip under the limit;
    // given back when the password turns out right.
    await this.limiters.failedAttempts.take(limitKey);

    // As Synapse: an exact match first, then a unique case-insensitive one.
    const user = (await Users.findUser(this.db, named.userId)) ?? (await Users.findUserByLocalpartCaseInsensitive(this.db, named.localpart));
    // A missing user is checked against a dummy hash, so the time taken does not tell who exists.
    if (!(await this.hasher.verify(user?.password_hash ?? null, password)) || !user) throw invalidCredentials();
    await this.limiters.failedAttempts.refund(limitKey);
    // Said only once the password is right, so that the answer does not tell anyone that the
    // account existed. Unlike Synapse, which says so whatever the password. Deactivation
    // removes the password, so today a deactivated account answers as a wrong password.
    if (user.deactivated) throw new MatrixError(403, 'M_USER_DEACTIVATED', 'This account has been deactivated');
    // MSC3939: a locked account signs in to nothing; told only once the password is right, like
    // deactivation, and before approval (the order of SessionHandler.authenticate). Its existing
    // sessions are kept for when it is unlocked. A suspended account may sign in (MSC3823).
    if (Users.isInForce(user.lock, this.clock())) throw userLocked();
    // MSC3866: told only once the password is right, like deactivation.
    if (!user.approved) throw awaitingApproval();

    const session = await this.db.transaction(async (trx) => {
      // The password was checked outside the transaction (argon2 is slow): make sure it has not
      // changed since, with the row locked so that a password change waits for this sign-in
      // (and then ends its session with the others) rather than missing it.
      const current = await Users.lockUser(trx, user.user_id);
      if (!current || current.deactivated || current.password_hash !== user.password_hash) throw invalidCredentials();
      return this.sessions.issue(trx, {
        userId: user.user_id,
        deviceId: req.deviceId,
        displayName: req.initialDeviceDisplayName,
        wantRefreshToken: req.refreshToken,
        ip: req.ip,
        userAgent: req.userAgent,
      });
    });
    const response: LoginResponse = { user_id: user.user_id, home_server: this.config.server_name, ...session };
    // Element and Nheko switch to this base URL, so send it only when it is known to be right.
    if (this.config.public_baseurl) response.well_known = { 'm.homeserver': { base_url: this.config.public_baseurl } };
    return response;
  }
}
