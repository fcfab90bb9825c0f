// Login (POST /login: passwords, and login tokens of MSC3882) and the flows
// advertised by GET /login. Every login type ends in `signIn`, so the checks of
// the account's state apply to each alike.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import type { SqliteWriter } from '../db/database.js';
import { attemptsKey, loginIdentifier } from '../domain/user-ids.js';
import { awaitingApproval, forbidden, MatrixError, missingParam } from '../errors.js';
import { RateLimiter } from '../ratelimit/limiter.js';
import * as Threepids from '../repositories/threepids.js';
import * as Users from '../repositories/users.js';
import type { LoginTokenHandler } from './login-tokens.js';
import { userLocked } from './account-state.js';
import type { IssuedSession, SessionHandler, SessionRequest } from './sessions.js';

export interface LoginRequest {
  type: string;
  password: string | null;
  /** `m.login.token`'s token. */
  token: string | null;
  /** The request's `identifier` (or legacy `user`, `medium` and `address`) fields, as sent: see loginIdentifier. */
  identifier: { identifier?: unknown; user?: unknown; medium?: unknown; address?: unknown };
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

/** A flow of GET /login: `get_login_token` (spec v1.7) on `m.login.token` when POST /login/get_token is served. */
export interface LoginFlow {
  type: string;
  get_login_token?: boolean;
}

const invalidCredentials = () => forbidden('Invalid username or password');

/** What app.ts may choose for a LoginHandler; each has a default. */
export interface LoginHandlerOptions {
  /** ms since the epoch (default Date.now). */
  clock?: () => number;
  /** Reads the user before the password check; app.ts picks the fastest read the database allows (default: through knex). */
  findUser?: (userId: string) => Promise<Users.UserRow | null>;
  /** SQLite: the usual sign-in's statements, prepared once on the writer connection (default null: through knex). */
  signInWriter?: SqliteWriter | null;
}

export class LoginHandler {
  private readonly clock: () => number;
  private readonly findUser: (userId: string) => Promise<Users.UserRow | null>;
  private readonly writer: SqliteWriter | null;

  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly sessions: SessionHandler,
    private readonly hasher: PasswordHasher,
    private readonly limiters: LoginLimiters,
    private readonly loginTokens: LoginTokenHandler,
    options: LoginHandlerOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.findUser = options.findUser ?? ((id) => Users.findUser(db, id));
    this.writer = options.signInWriter ?? null;
  }

  flows(): { flows: LoginFlow[] } {
    const flows: LoginFlow[] = [];
    if (this.config.password_config.enabled) flows.push({ type: 'm.login.password' });
    // As Synapse: login tokens come only from POST /login/get_token, so the type is offered with it.
    if (this.loginTokens.enabled) flows.push({ type: 'm.login.token', get_login_token: true });
    return { flows };
  }

  /**
   * POST /login (spec: "Login"). Errors: 400 M_UNKNOWN (a login type not
   * offered), those of each type, and of `signIn`.
   */
  async login(req: LoginRequest): Promise<LoginResponse> {
    if (req.type === 'm.login.password' && this.config.password_config.enabled) return this.passwordLogin(req);
    if (req.type === 'm.login.token' && this.loginTokens.enabled) return this.tokenLogin(req);
    throw new MatrixError(400, 'M_UNKNOWN', `Unknown login type ${req.type}`);
  }

  /**
   * `m.login.password`, naming the user by user ID or localpart, or by an
   * email address bound to the account (m.id.thirdparty, or the legacy
   * `medium`/`address`). 403 M_FORBIDDEN for a wrong user, address or
   * password (an address bound to no one, or of a medium Gatehouse binds
   * nothing of, answers as a wrong password, in the same time: the dummy
   * hash is checked); 400 M_MISSING_PARAM; 400 (see loginIdentifier); 429
   * (rc_login.*, keyed on the account the address names, as by user ID).
   */
  private async passwordLogin(req: LoginRequest): Promise<LoginResponse> {
    const password = req.password;
    if (password === null) throw missingParam('Missing parameter: password');

    let who: ReturnType<typeof loginIdentifier>;
    try {
      who = loginIdentifier(req.identifier, this.config.server_name);
    } catch (err) {
      // Counted against the address all the same (and a 429 answers first), as every attempt is.
      await this.limiters.address.take(req.ip);
      throw err;
    }
    let limitKey: string;
    let user: Users.UserRow | null;
    if (who.kind === 'user') {
      const named = who.user;
      // A user ID of another server (or longer than any) names no one here: a wrong name.
      if (!named) {
        await this.limiters.address.take(req.ip);
        throw invalidCredentials();
      }
      limitKey = attemptsKey(named.userId);
      await this.takeAttempt(limitKey, req.ip);
      // As Synapse: an exact match first, then a unique case-insensitive one.
      user = (await this.findUser(named.userId)) ?? (await Users.findUserByLocalpartCaseInsensitive(this.db, named.localpart));
    } else {
      await this.limiters.address.take(req.ip);
      // Deactivation unbinds an account's addresses, so a deactivated account's address names no one.
      const userId = who.address === null ? null : await Threepids.findUserIdByThreepid(this.db, who.medium, who.address);
      // As Synapse: an address bound to no one is limited on the address itself (media
      // Gatehouse binds nothing of share one bucket: no sign-in can succeed with them).
      limitKey = userId !== null ? attemptsKey(userId) : who.address !== null ? `3pid:${who.medium}:${who.address}` : '3pid:unsupported';
      await this.takeAttempt(limitKey, null);
      user = userId === null ? null : await this.findUser(userId);
    }
    // A missing user is checked against a dummy hash, so the time taken does not tell who exists.
    if (!(await this.hasher.verify(user?.password_hash ?? null, password)) || !user) throw invalidCredentials();
    await this.limiters.failedAttempts.refund(limitKey);

    // The password was checked outside the transaction (argon2 is slow): make sure it has not
    // changed since, with the row locked so that a password change waits for this sign-in
    // (and then ends its session with the others) rather than missing it. Deactivation removes
    // the password, so a deactivated account answers as a wrong password (its state is told
    // only once the password is right, so the answer never tells that an account existed).
    // The usual case: the row read before the check let the user sign in. One statement
    // re-checks that (same password, still active, approved, unlocked), locks the row and
    // writes the device; when it refuses, it has written nothing, and the row is read again
    // and judged in full.
    const usual = !user.deactivated && user.approved && user.lock === null;
    if (usual && this.writer) {
      // SQLite: in a transaction of its own on prepared statements (knex's runner cost more than the SQL).
      const session = await this.writer.transaction((tx) =>
        this.sessions.issueIfUserMaySignIn(tx, this.sessionRequest(user, req), user.password_hash!),
      );
      if (session) return this.response(user, session);
    }
    return this.db.transaction(async (trx) => {
      if (usual && !this.writer) {
        const session = await this.sessions.issueIfUserMaySignIn(trx, this.sessionRequest(user, req), user.password_hash!);
        if (session) return this.response(user, session);
      }
      const current = await Users.lockUser(trx, user.user_id);
      if (!current || current.password_hash !== user.password_hash) throw invalidCredentials();
      return this.signIn(trx, current, req);
    });
  }

  /**
   * rc_login.address (for `ip`, unless null: already taken), rc_login.account, and
   * rc_login.failed_attempts counted before the check (given back when the password
   * is right), in that order, stopping at the first that refuses: one statement
   * on PostgreSQL's shared buckets.
   */
  private async takeAttempt(limitKey: string, ip: string | null): Promise<void> {
    const takes: [RateLimiter, string][] = ip === null ? [] : [[this.limiters.address, ip]];
    // failed_attempts is counted before the check, so parallel guesses cannot all slip under the limit.
    takes.push([this.limiters.account, limitKey], [this.limiters.failedAttempts, limitKey]);
    await RateLimiter.takeEach(takes);
  }

  /**
   * `m.login.token` (MSC3882): a token from POST /login/get_token, spent by
   * this sign-in only (not when the sign-in fails). 403 M_FORBIDDEN for an
   * unknown, expired or spent token; 400 M_MISSING_PARAM; 429 (rc_login.address,
   * rc_login.account, as Synapse).
   */
  private async tokenLogin(req: LoginRequest): Promise<LoginResponse> {
    const token = req.token;
    if (token === null) throw missingParam('Missing parameter: token');
    await this.limiters.address.take(req.ip);
    return this.db.transaction(async (trx) => {
      const userId = await this.loginTokens.spend(trx, token);
      // Taken once the token names the account (as Synapse); a refusal rolls the spending back.
      await this.limiters.account.take(attemptsKey(userId));
      const user = await Users.lockUser(trx, userId);
      if (!user) throw forbidden('Invalid login token');
      return this.signIn(trx, user, req);
    });
  }

  /**
   * Signs in a user whose credentials have been verified, inside `trx` with
   * the user's row locked: the account-state checks every login type shares
   * (403 M_USER_DEACTIVATED; 401 M_USER_LOCKED with soft_logout, MSC3939; 403
   * M_USER_AWAITING_APPROVAL, MSC3866), then the device and its tokens, and the
   * login response. Said only once the credentials verified, so that the
   * answer does not tell anyone that the account exists (unlike Synapse).
   */
  private async signIn(trx: Knex.Transaction, user: Users.UserRow, req: LoginRequest): Promise<LoginResponse> {
    if (user.deactivated) throw new MatrixError(403, 'M_USER_DEACTIVATED', 'This account has been deactivated');
    // A locked account signs in to nothing, before approval (the order of SessionHandler.authenticate);
    // its existing sessions are kept for when it is unlocked. A suspended account may sign in (MSC3823).
    if (Users.isInForce(user.lock, this.clock())) throw userLocked();
    if (!user.approved) throw awaitingApproval();
    return this.response(user, await this.sessions.issue(trx, this.sessionRequest(user, req)));
  }

  private sessionRequest(user: Users.UserRow, req: LoginRequest): SessionRequest {
    return {
      userId: user.user_id,
      deviceId: req.deviceId,
      displayName: req.initialDeviceDisplayName,
      wantRefreshToken: req.refreshToken,
      ip: req.ip,
      userAgent: req.userAgent,
    };
  }

  private response(user: Users.UserRow, session: IssuedSession): LoginResponse {
    const response: LoginResponse = { user_id: user.user_id, home_server: this.config.server_name, ...session };
    // Element and Nheko switch to this base URL, so send it only when it is known to be right.
    if (this.config.public_baseurl) response.well_known = { 'm.homeserver': { base_url: this.config.public_baseurl } };
    return response;
  }
}
