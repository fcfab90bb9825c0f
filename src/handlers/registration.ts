// Registration: POST /register (users through UIA, guests when allowed) and
// GET /register/available.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { randomString } from '../crypto/tokens.js';
import { newLocalpart } from '../domain/user-ids.js';
import { awaitingApproval, forbidden, invalidParam, MatrixError, missingParam } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import * as RegistrationTokens from '../repositories/registration-tokens.js';
import * as Users from '../repositories/users.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import type { EmailIdentityState } from '../uia/stages/email-identity.js';
import { REGISTRATION_TOKEN_RE } from '../uia/stages/registration-token.js';
import * as Threepids from '../repositories/threepids.js';
import { threepidInUse } from './threepid-validation.js';
import { hasSession } from './account.js';
import { createAccount, userInUse } from './accounts.js';
import { checkPassword, describePasswordPolicy } from './password-policy.js';
import type { IssuedSession, SessionHandler } from './sessions.js';

const EMAIL_STAGE = 'm.login.email.identity';

export interface RegisterRequest {
  username: string | null;
  password: string | null;
  deviceId: string | null;
  initialDeviceDisplayName: string | null;
  /** null: not in this request (an earlier request of the UIA session may have set it; default false). */
  inhibitLogin: boolean | null;
  /** null: not in this request (an earlier request of the UIA session may have set it; default false). */
  refreshToken: boolean | null;
  /** A guest's access token: registration upgrades that guest, keeping its user ID. */
  guestAccessToken: string | null;
  auth: unknown;
  ip: string;
  userAgent: string | null;
}

export type RegisterResponse = { user_id: string; home_server: string } & Partial<IssuedSession>;

/** What a completed registration's UIA session records, for a repeat of its final request. */
interface RegistrationResult {
  user_id: string;
}

/** How the account is signed in after registration (or a repeat of it). */
interface SignInRequest {
  deviceId: string | null;
  initialDeviceDisplayName: string | null;
  inhibitLogin: boolean;
  refreshToken: boolean;
  ip: string;
  userAgent: string | null;
}

export class RegistrationHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly uia: UiaEngine,
    private readonly sessions: SessionHandler,
    private readonly limiter: RateLimiter,
    private readonly validityLimiter: RateLimiter,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * The UIA flows registration offers, from config, as Synapse builds them:
   * the registration token first, then the email address
   * (`m.login.email.identity`: required with registrations_require_3pid, or
   * else offered as a flow of its own when email is configured, so that a
   * user may give an address), and the terms (m.login.terms, MSC1692) last;
   * `m.login.dummy` for a flow that would be empty. As Synapse, the terms are
   * not a verification step: without one, registration needs
   * enable_registration_without_verification.
   */
  flows(): Flow[] {
    const token = this.config.registration_requires_token;
    const email = this.config.email !== null;
    const bodies: string[][] = [];
    if (this.config.registrations_require_3pid.includes('email')) bodies.push([EMAIL_STAGE]);
    else {
      if (token || this.config.enable_registration_without_verification) bodies.push([]);
      if (email) bodies.push([EMAIL_STAGE]);
    }
    // Without a verification step, an optional email flow would be the only way in: that needs
    // registrations_require_3pid (config refuses open registration without verification otherwise).
    if (!token && !this.config.enable_registration_without_verification && !this.config.registrations_require_3pid.includes('email')) return [];
    const terms = Object.keys(this.config.terms.policies).length > 0;
    return bodies.map((body) => {
      const steps = [...(token ? ['m.login.registration_token'] : []), ...body, ...(terms ? ['m.login.terms'] : [])];
      return steps.length > 0 ? steps : ['m.login.dummy'];
    });
  }

  /**
   * GET /_matrix/client/v1/register/m.login.registration_token/validity (MSC3231):
   * whether `token` could register now. Reserves nothing. As Synapse, the rate
   * limit (rc_registration_token_validity) comes first, then 403 M_FORBIDDEN when
   * registration is disabled. 400 M_MISSING_PARAM without a token, 400
   * M_INVALID_PARAM for one that is not of MSC3231's grammar (at most 64
   * characters of [A-Za-z0-9._~-]).
   */
  async registrationTokenValidity(token: string | null, ip: string): Promise<{ valid: boolean }> {
    await this.validityLimiter.take(ip);
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    if (token === null) throw missingParam('Missing parameter: token');
    if (!REGISTRATION_TOKEN_RE.test(token)) throw invalidParam('token must be 1 to 64 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-"');
    return { valid: await RegistrationTokens.isTokenValid(this.db, token, this.clock()) };
  }

  /**
   * POST /register (kind=user; spec: Client-Server API, "Account registration").
   * The UIA session remembers the parameters of the requests that set them
   * (the password as its argon2 hash), so the final request may send only
   * `auth`; repeating the final request of a completed session answers with the
   * same user, signed in again (unless inhibit_login), as Synapse does.
   * Errors: 403 M_FORBIDDEN (disabled), 400 M_INVALID_USERNAME, 400 M_USER_IN_USE,
   * 400 M_WEAK_PASSWORD, 400 M_MISSING_PARAM (no password), 429 M_LIMIT_EXCEEDED, UIA's.
   */
  async register(req: RegisterRequest): Promise<RegisterResponse> {
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    // As Synapse: an address over its limit is refused before anything (even a UIA session) is made.
    await this.limiter.check(req.ip);

    // A guest upgrading keeps its (numeric) user ID: the name is the guest's, not a new one.
    const guest = req.guestAccessToken === null ? null : await this.upgradingGuest(req.guestAccessToken, req.username, req.ip, req.userAgent);
    // As Synapse: check what can be checked before UIA, so the client learns early. A name in
    // use may be the one this session registered already (a repeated final request): with a
    // session, that is decided after UIA.
    const username = guest?.localpart ?? (req.username === null ? null : newLocalpart(req.username, this.config.server_name));
    const inUse = guest === null && username !== null && (await Users.localpartExists(this.db, username));
    // With inhibit_user_in_use_error (Synapse) a clash is told only once UIA is done.
    if (inUse && !hasSession(req.auth) && !this.config.inhibit_user_in_use_error) throw userInUse();
    if (req.password !== null) checkPassword(req.password, this.config.password_config.policy);

    const flows = this.flows();
    if (flows.length === 0) throw forbidden('Registration has been disabled');
    // Only what the request actually sets is remembered, so the session of an empty probe
    // (`POST /register {}`, as Element Web and Nheko send to learn the flows) takes the real request's.
    const params: Record<string, unknown> = {};
    if (username !== null) params.username = username;
    if (guest !== null) params.guest_user_id = guest.userId;
    if (req.deviceId !== null) params.device_id = req.deviceId;
    if (req.initialDeviceDisplayName !== null) params.initial_device_display_name = req.initialDeviceDisplayName;
    if (req.inhibitLogin !== null) params.inhibit_login = req.inhibitLogin;
    if (req.refreshToken !== null) params.refresh_token = req.refreshToken;
    const auth = await this.uia.authenticate(
      { name: 'POST /register', userId: null, params, secrets: req.password === null ? {} : { password: req.password }, clientIp: req.ip },
      flows,
      req.auth,
    );
    const p = auth.params;
    const signIn: SignInRequest = {
      deviceId: typeof p.device_id === 'string' ? p.device_id : null,
      initialDeviceDisplayName: typeof p.initial_device_display_name === 'string' ? p.initial_device_display_name : null,
      inhibitLogin: p.inhibit_login === true,
      refreshToken: p.refresh_token === true,
      ip: req.ip,
      userAgent: req.userAgent,
    };

    if (auth.previous) {
      const { user_id: userId } = auth.previous.result as RegistrationResult;
      await this.limiter.take(req.ip);
      return this.db.transaction(async (trx) => {
        // The account may have been deactivated since: then it cannot be signed in to.
        const user = await Users.lockUser(trx, userId);
        if (!user || user.deactivated) throw forbidden('The account this session registered is no longer active');
        if (!user.approved) throw awaitingApproval();
        return this.signIn(trx, userId, signIn);
      });
    }

    const passwordHash = auth.secretHashes.password;
    if (passwordHash === undefined) throw missingParam('Missing params: password');
    if (inUse) throw userInUse();
    // The validated address becomes the account's (as Synapse); one bound to an account since is refused.
    const email = auth.completed.includes(EMAIL_STAGE) ? (auth.stageState[EMAIL_STAGE] as EmailIdentityState) : null;
    if (email && (await Threepids.findUserIdByThreepid(this.db, email.medium, email.address)) !== null) throw threepidInUse();
    await this.limiter.take(req.ip);
    const guestUserId = typeof p.guest_user_id === 'string' ? p.guest_user_id : null;
    const localpart = typeof p.username === 'string' ? p.username : await this.generateLocalpart();
    // MSC3866: with approval required, the account is made but cannot be used until an admin approves it.
    const approved = !this.config.registration_requires_approval;

    const response = await this.db.transaction(async (trx) => {
      let userId: string | null;
      if (guestUserId !== null) {
        userId = (await Users.upgradeGuest(trx, guestUserId, passwordHash, approved)) ? guestUserId : null;
        if (!userId) throw forbidden('This guest account cannot be upgraded any more');
        // The guest's tokens now belong to a full account (is_guest, approval).
        await this.sessions.invalidateUsers(trx, [userId]);
      } else {
        // As Synapse: the display name starts as the localpart.
        const account = { localpart, passwordHash, isAdmin: false, isGuest: false, displayname: localpart, approved };
        userId = await createAccount(trx, this.config.server_name, account, this.clock());
        if (!userId) throw userInUse();
      }
      if (email) {
        const bound = { user_id: userId, medium: email.medium, address: email.address, validated_at: email.validated_at, added_at: this.clock() };
        if (!(await Threepids.insertThreepid(trx, bound))) throw threepidInUse();
      }
      const result: RegistrationResult = { user_id: userId };
      await this.uia.complete(auth, trx, result);
      return approved ? this.signIn(trx, userId, signIn) : null;
    });
    // Told after the account exists (as Synapse), so that the admin sees it waiting.
    if (response === null) throw awaitingApproval();
    return response;
  }

  /**
   * The guest a `guest_access_token` upgrades (spec: guest access). The token
   * must be a live guest's (401 M_UNKNOWN_TOKEN otherwise, 403 M_FORBIDDEN for a
   * full account's), and a `username`, when given, must be the guest's own (403
   * M_FORBIDDEN, as Synapse: "Cannot register taken user ID without valid guest
   * credentials for that user").
   */
  private async upgradingGuest(token: string, username: string | null, ip: string, userAgent: string | null) {
    const requester = await this.sessions.authenticate(token, ip, userAgent);
    if (!requester.isGuest) throw forbidden('guest_access_token is not a guest account\'s');
    const localpart = requester.userId.slice(1, requester.userId.indexOf(':'));
    if (username !== null && username.toLowerCase() !== localpart)
      throw forbidden('Cannot register taken user ID without valid guest credentials for that user');
    return { userId: requester.userId, localpart };
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

  private async signIn(trx: Knex, userId: string, req: SignInRequest): Promise<RegisterResponse> {
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

  /** GET /password_policy (MSC2000): the password rules, for clients to show before submitting. */
  passwordPolicy(): Record<string, number | boolean> {
    return describePasswordPolicy(this.config.password_config.enabled, this.config.password_config.policy);
  }

  /** GET /register/available: true, or the reason the name cannot be had (the name is down-cased, as at /register). */
  async available(username: string): Promise<{ available: true }> {
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    const localpart = newLocalpart(username, this.config.server_name);
    // As Synapse: with inhibit_user_in_use_error every well-formed name reads as available.
    if (!this.config.inhibit_user_in_use_error && (await Users.localpartExists(this.db, localpart))) throw userInUse();
    return { available: true };
  }
}
