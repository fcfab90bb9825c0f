// Synapse's shared-secret registration (/_synapse/admin/v1/register), used by
// register_new_matrix_user, synadm and Complement to create (admin) users.
// Nonces live in the database so any process can check them.

import { createHmac } from 'node:crypto';
import type { Knex } from 'knex';
import type { Config } from '../../config/types.js';
import type { PasswordHasher } from '../../crypto/passwords.js';
import { constantTimeEqual, randomString } from '../../crypto/tokens.js';
import { newLocalpart } from '../../domain/user-ids.js';
import { forbidden, invalidParam, MatrixError } from '../../errors.js';
import * as Nonces from '../../repositories/registration-nonces.js';
import { createAccount, USER_TYPES, userInUse } from '../accounts.js';
import { checkPassword } from '../password-policy.js';
import type { SessionHandler } from '../sessions.js';

/** Synapse keeps nonces for 60 seconds. */
const NONCE_LIFETIME_MS = 60_000;


export interface SharedSecretRegistration {
  nonce: string;
  /** As sent: the MAC covers it so; the account gets it down-cased. */
  username: string;
  password: string;
  admin: boolean;
  displayname: string | null;
  /** null, or one of USER_TYPES. Checked, covered by the MAC, and stored with the account (as Synapse). */
  userType: string | null;
  mac: string;
}

/**
 * The new account's display name: as Synapse, the localpart when none is
 * given; trimmed as at PUT /profile/{userId}/displayname, and an explicit ""
 * (or only spaces) leaves the account without one.
 */
function initialDisplayname(given: string | null, localpart: string): string | null {
  if (given === null) return localpart;
  const trimmed = given.trim();
  return trimmed === '' ? null : trimmed;
}

export class SharedSecretRegistrationHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly sessions: SessionHandler,
    private readonly hasher: PasswordHasher,
    private readonly clock: () => number = Date.now,
  ) {}

  private secret(): string {
    if (!this.config.registration_shared_secret)
      throw new MatrixError(400, 'M_UNKNOWN', 'Shared secret registration is not enabled');
    return this.config.registration_shared_secret;
  }

  async newNonce(): Promise<{ nonce: string }> {
    this.secret();
    const now = this.clock();
    await Nonces.deleteExpiredNonces(this.db, now);
    const nonce = randomString(32);
    await Nonces.insertNonce(this.db, nonce, now + NONCE_LIFETIME_MS);
    return { nonce };
  }

  /**
   * POST /_synapse/admin/v1/register. Checks in Synapse's order: the nonce
   * (spent, right or wrong), then the MAC, then the username. Errors: 400
   * M_INVALID_PARAM (unknown user_type; the nonce is kept), 400 M_UNKNOWN
   * (unknown, spent or expired nonce; not enabled), 403 M_FORBIDDEN (wrong
   * MAC), 400 M_INVALID_USERNAME, 400 M_USER_IN_USE.
   */
  async register(req: SharedSecretRegistration) {
    const secret = this.secret();
    // As Synapse, an unknown user_type is refused before the MAC is compared, so that it is
    // not reported as a wrong MAC. Unlike Synapse, before the nonce is spent: like a
    // field of the wrong type, it is malformed input.
    if (req.userType !== null && !USER_TYPES.includes(req.userType))
      throw invalidParam(`Invalid user type: must be one of ${USER_TYPES.join(', ')}`);
    // The MAC covers the fields as sent (register_new_matrix_user computes it before any
    // down-casing): `nonce\0username\0password\0admin|notadmin[\0user_type]`.
    const parts = [req.nonce, req.username, req.password, req.admin ? 'admin' : 'notadmin'];
    if (req.userType !== null) parts.push(req.userType);
    const expected = createHmac('sha1', secret).update(parts.join('\x00'), 'utf8').digest('hex');
    // As Synapse: an unknown, spent or expired nonce is 400 M_UNKNOWN (the JSON itself is fine).
    if (!(await Nonces.consumeNonce(this.db, req.nonce, this.clock()))) throw new MatrixError(400, 'M_UNKNOWN', 'unrecognised nonce');
    if (!constantTimeEqual(expected, req.mac.toLowerCase())) throw forbidden('HMAC incorrect');

    // As Synapse: the localpart is the username down-cased.
    const localpart = newLocalpart(req.username, this.config.server_name);
    checkPassword(req.password, { ...this.config.password_config.policy, enabled: false });
    const passwordHash = await this.hasher.hash(req.password);
    return this.db.transaction(async (trx) => {
      const account = { localpart, passwordHash, isAdmin: req.admin, isGuest: false, displayname: initialDisplayname(req.displayname, localpart), userType: req.userType };
      const userId = await createAccount(trx, this.config.server_name, account, this.clock());
      if (!userId) throw userInUse();
      const session = await this.sessions.issue(trx, { userId, deviceId: null, displayName: null, wantRefreshToken: false, ip: null, userAgent: null });
      const response: Record<string, unknown> = { user_id: userId, home_server: this.config.server_name, access_token: session.access_token, device_id: session.device_id };
      // As Synapse: the token's lifetime when it has one (e.g. session_lifetime).
      if (session.expires_in_ms !== undefined) response.expires_in_ms = session.expires_in_ms;
      return response;
    });
  }
}
