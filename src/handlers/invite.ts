// The invite page (/_gatehouse/invite/{token}): a registration token as a
// link. The page checks the token, then registers the person through the
// registration handler and its UIA flow, exactly as a Matrix client would
// (same username checks, password policy, rate limits, token counting and
// terms), only without signing in: they sign in from their own app afterwards.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { newLocalpart, userIdFor } from '../domain/user-ids.js';
import { forbidden, MatrixError, missingParam } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import * as Tokens from '../repositories/registration-tokens.js';
import { type Flow, UiaChallenge, type UiaEngine } from '../uia/engine.js';
import { REGISTRATION_TOKEN_RE } from '../uia/stages/registration-token.js';
import type { RegistrationHandler } from './registration.js';

const TOKEN_STAGE = 'm.login.registration_token';
const TERMS_STAGE = 'm.login.terms';
/** The stages the page can complete on the person's behalf (it asks for the token and the terms itself). */
const PAGE_STAGES = new Set([TOKEN_STAGE, TERMS_STAGE, 'm.login.dummy']);

/**
 * What an invite link is worth now: `valid`; `unknown` (no such token);
 * `expired`; `used_up` (every use taken, pending ones included); `closed`
 * (registration is disabled); `unsupported` (registration takes no token, or
 * asks for a step the page cannot do).
 */
export type InviteState = 'valid' | 'unknown' | 'expired' | 'used_up' | 'closed' | 'unsupported';

/** What the page's form needs. */
export interface InviteForm {
  /** The `m.login.terms` params (MSC1692 `{policies}`) when registration asks for the terms, else null. */
  terms: unknown;
  /** The password policy, in words (empty when there is none). */
  passwordRules: string[];
  /** The policy's minimum length (0 = none). */
  minimumLength: number;
}

export interface InviteRegistration {
  token: string;
  username: string;
  password: string;
  passwordAgain: string;
  /** The terms box was ticked. */
  acceptedTerms: boolean;
  ip: string;
  userAgent: string | null;
}

export class InviteHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly registration: RegistrationHandler,
    private readonly uia: UiaEngine,
    /** rc_registration_token_validity: the page answers what the validity endpoint answers. */
    private readonly validityLimiter: RateLimiter,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * GET /_gatehouse/invite/{token}: the token's state and the form. Counted
   * against rc_registration_token_validity per address, like the validity
   * endpoint (429 M_LIMIT_EXCEEDED), so the page is no faster oracle for
   * guessing tokens.
   */
  async check(token: string, ip: string): Promise<{ state: InviteState; form: InviteForm }> {
    await this.validityLimiter.take(ip);
    return { state: await this.state(token), form: await this.form(ip) };
  }

  /** The token's state (see InviteState), without counting against any limit. */
  async state(token: string): Promise<InviteState> {
    if (!this.config.enable_registration) return 'closed';
    if (this.flow() === null) return 'unsupported';
    if (!REGISTRATION_TOKEN_RE.test(token)) return 'unknown';
    const row = await Tokens.findToken(this.db, token);
    if (!row) return 'unknown';
    if (row.expiry_time !== null && row.expiry_time <= this.clock()) return 'expired';
    if (row.uses_allowed !== null && row.pending + row.completed >= row.uses_allowed) return 'used_up';
    return 'valid';
  }

  /** What the form shows: the terms to accept, if any, and the password policy. */
  async form(ip: string): Promise<InviteForm> {
    const flow = this.flow();
    const terms = flow?.includes(TERMS_STAGE)
      ? ((await this.uia.stageParams(TERMS_STAGE, { name: 'POST /register', userId: null, params: {}, clientIp: ip })) ?? null)
      : null;
    const policy = this.config.password_config.policy;
    const rules: string[] = [];
    if (policy.enabled) {
      if (policy.minimum_length > 0) rules.push(`at least ${policy.minimum_length} characters`);
      if (policy.require_digit) rules.push('a digit');
      if (policy.require_symbol) rules.push('a symbol');
      if (policy.require_uppercase) rules.push('an upper-case letter');
      if (policy.require_lowercase) rules.push('a lower-case letter');
    }
    return { terms, passwordRules: rules, minimumLength: policy.enabled ? policy.minimum_length : 0 };
  }

  /**
   * POST /_gatehouse/invite/{token}: registers `username` through
   * RegistrationHandler.register, passing each stage of the flow in turn in
   * one UIA session (the token, then the terms), with inhibit_login (no
   * device is made). Returns the new user's ID, and whether the account
   * waits for an admin's approval (registration_requires_approval). Errors, besides register()'s
   * (403 M_FORBIDDEN, 400 M_INVALID_USERNAME, M_USER_IN_USE, M_WEAK_PASSWORD,
   * 429 M_LIMIT_EXCEEDED, and the token stage's 401 M_UNAUTHORIZED for a
   * token that cannot be used): 400 M_MISSING_PARAM (no username or
   * password), 400 M_INVALID_PARAM (the passwords differ, or the terms are not
   * accepted), 403 M_FORBIDDEN (no flow the page can do). All are checked
   * before any session is made or any token use reserved, except a race
   * lost at the very end (then the reserved use comes back when the session
   * expires, as for any client).
   */
  async register(req: InviteRegistration): Promise<{ user_id: string; awaiting_approval: boolean }> {
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    const flow = this.flow();
    if (flow === null) throw forbidden('Registration on this server needs a step this page cannot do');
    if (req.username === '') throw missingParam('Choose a username');
    if (req.password === '') throw missingParam('Choose a password');
    if (req.password !== req.passwordAgain) throw new MatrixError(400, 'M_INVALID_PARAM', 'The two passwords are not the same');
    if (flow.includes(TERMS_STAGE) && !req.acceptedTerms)
      throw new MatrixError(400, 'M_INVALID_PARAM', 'Accept the terms to create an account');

    let session: string | null = null;
    for (const stage of flow) {
      const auth: Record<string, unknown> = { type: stage };
      if (session !== null) auth.session = session;
      if (stage === TOKEN_STAGE) auth.token = req.token;
      const first = session === null;
      try {
        // The first request sets the parameters (checked before UIA starts); the session remembers them.
        const result = await this.registration.register({
          username: first ? req.username : null,
          password: first ? req.password : null,
          deviceId: null,
          initialDeviceDisplayName: null,
          inhibitLogin: first ? true : null,
          refreshToken: null,
          guestAccessToken: null,
          auth,
          ip: req.ip,
          userAgent: req.userAgent,
        });
        return { user_id: result.user_id, awaiting_approval: false };
      } catch (err) {
        // registration_requires_approval: the account exists and waits for the admin.
        if (err instanceof MatrixError && err.errcode === 'M_USER_AWAITING_APPROVAL')
          return { user_id: userIdFor(newLocalpart(req.username, this.config.server_name), this.config.server_name), awaiting_approval: true };
        // A 401 without an error: this stage passed, the flow goes on in the session.
        if (!(err instanceof UiaChallenge) || err.hasError) throw err;
        session = err.challenge.session as string;
      }
    }
    throw new Error('the invite page passed every stage of its flow without registering');
  }

  /**
   * The registration flow the page follows: the first one that asks for the
   * token and whose every stage the page can do. null when registration takes
   * no token (the invite link would count nothing) or needs more.
   */
  private flow(): Flow | null {
    return this.registration.flows().find((f) => f.includes(TOKEN_STAGE) && f.every((s) => PAGE_STAGES.has(s))) ?? null;
  }
}
