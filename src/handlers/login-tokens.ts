// Signing in another device from an existing session (MSC3882, spec v1.7):
// a signed-in device asks for a short-lived, single-use login token
// (POST /login/get_token) and hands it to the new device, which signs in with
// it (POST /login, type m.login.token; see login.ts). Tokens are stored only as
// their SHA-256 hash, and die with the session that asked for them.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { constantTimeEqual, hashToken, randomString } from '../crypto/tokens.js';
import { forbidden, MatrixError, unknownToken, unrecognized } from '../errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import * as Devices from '../repositories/devices.js';
import * as LoginTokens from '../repositories/login-tokens.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import type { UiaOperation } from '../uia/types.js';
import { reauthFlows } from './account.js';
import type { Requester } from './sessions.js';

/**
 * How often one user may get a login token. As Synapse (not configurable
 * there either): one a minute, as the spec suggests, since each token makes
 * another sign-in.
 */
export const LOGIN_TOKEN_REQUEST_LIMIT = { per_second: 1 / 60, burst_count: 1 };

export interface LoginTokenResponse {
  /** The token for `m.login.token`. */
  login_token: string;
  /** Milliseconds until it stops working (spec). */
  expires_in_ms: number;
  /** The same in whole seconds: MSC3882's first field, still sent by Synapse for older clients. */
  expires_in: number;
}

const UIA_OPERATION = 'POST /login/get_token';

/**
 * Whether `requester` could get a login token: the `m.get_login_token`
 * capability (spec: per user). Not for guests (the endpoint refuses them), and
 * not when re-authentication is required but none is offered
 * (`password_config.enabled: false`).
 */
export function loginTokensAvailableTo(
  config: Pick<Config, 'login_via_existing_session' | 'password_config'>,
  requester: Pick<Requester, 'isGuest'>,
): boolean {
  const settings = config.login_via_existing_session;
  return settings.enabled && !requester.isGuest && (!settings.require_ui_auth || reauthFlows(config).length > 0);
}

/** A new login token; the prefix says what it is when one turns up in a log or a bug report. */
const newLoginToken = () => `ghl_${randomString(40)}`;

const invalidLoginToken = () => forbidden('Invalid login token');

export class LoginTokenHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Pick<Config, 'login_via_existing_session' | 'password_config'>,
    private readonly uia: UiaEngine,
    /** LOGIN_TOKEN_REQUEST_LIMIT, per user. */
    private readonly limiter: RateLimiter,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether the feature is on (`login_via_existing_session.enabled`): the routes, the login type and its flow exist only then. */
  get enabled(): boolean {
    return this.config.login_via_existing_session.enabled;
  }

  /**
   * POST /_matrix/client/v1/login/get_token (spec v1.7; MSC3882's unstable
   * path too). With `require_ui_auth` (the default) the user confirms with
   * their password every time (the spec's MUST: a session that completed once
   * gives no second token; repeating its request starts a new session, since
   * the token is not kept to be sent again). Then counted against one token a
   * minute per user (after UIA, as Synapse, so the 401 round does not count).
   * Returns `{login_token, expires_in_ms, expires_in}` (`token_timeout`).
   * Errors: 404 M_UNRECOGNIZED (not enabled), UIA's (401 and the rest), 400
   * M_UNKNOWN (re-authentication required but impossible), 429
   * M_LIMIT_EXCEEDED, 401 M_UNKNOWN_TOKEN (the device signed out meanwhile).
   */
  async create(requester: Requester, req: { auth: unknown; ip: string }): Promise<LoginTokenResponse> {
    const settings = this.config.login_via_existing_session;
    if (!settings.enabled) throw unrecognized();
    const operation: UiaOperation = { name: UIA_OPERATION, userId: requester.userId, params: {}, clientIp: req.ip };
    let auth = null;
    if (settings.require_ui_auth) {
      const flows = reauthFlows(this.config);
      if (flows.length === 0)
        throw new MatrixError(400, 'M_UNKNOWN', 'Login tokens need re-authentication, and no way to re-authenticate is offered');
      auth = await this.uia.authenticate(operation, flows, req.auth);
      if (auth.previous) return this.freshChallenge(operation, flows);
    }
    await this.limiter.take(requester.userId);

    const token = newLoginToken();
    const now = this.clock();
    const timeout = settings.token_timeout;
    await this.db.transaction(async (trx) => {
      // The token belongs to this device's session: make sure it is still there (and keep it,
      // on PostgreSQL, until the token is stored), or the token would outlive a logout.
      if (!(await Devices.lockDevice(trx, requester.userId, requester.deviceId))) throw unknownToken('Unknown access token');
      if (auth) await this.uia.complete(auth, trx);
      await LoginTokens.insertLoginToken(trx, {
        token_hash: hashToken(token),
        user_id: requester.userId,
        device_id: requester.deviceId,
        created_ts: now,
        expires_ts: now + timeout,
      });
    });
    return { login_token: token, expires_in_ms: timeout, expires_in: Math.floor(timeout / 1000) };
  }

  /**
   * Spends a login token inside the sign-in's transaction `trx` and returns
   * the user it signs in. Spent once: should the sign-in fail afterwards
   * (its transaction rolls back), the token is not spent. Unknown, expired
   * and spent tokens are alike: 403 M_FORBIDDEN (spec, as Synapse).
   */
  async spend(trx: Knex.Transaction, token: string): Promise<string> {
    const hash = hashToken(token);
    const now = this.clock();
    const row = await LoginTokens.findLoginToken(trx, hash);
    if (!row || !constantTimeEqual(row.token_hash, hash) || row.expires_ts <= now) throw invalidLoginToken();
    // The DELETE's row count decides between parallel uses of one token.
    if (!(await LoginTokens.spendLoginToken(trx, hash, now))) throw invalidLoginToken();
    return row.user_id;
  }

  /** Deletes expired tokens (they can never be used); safe in several processes. */
  async sweepExpired(): Promise<number> {
    return LoginTokens.deleteExpiredLoginTokens(this.db, this.clock());
  }

  /** Answers with the 401 of a new UIA session (a request without `auth` always gets one). */
  private async freshChallenge(operation: UiaOperation, flows: Flow[]): Promise<never> {
    await this.uia.authenticate(operation, flows, undefined);
    throw new Error('UIA without auth did not challenge');
  }
}
