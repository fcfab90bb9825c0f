// The signed-in user's account: whoami, password change, deactivation; and
// the password reset by email of someone who cannot sign in.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { forbidden, MatrixError, missingParam, missingToken } from '../errors.js';
import * as UserAdmin from '../repositories/user-admin.js';
import * as E2eKeys from '../repositories/e2e-keys.js';
import * as KeyBackup from '../repositories/key-backup.js';
import * as Profiles from '../repositories/profiles.js';
import * as SyncData from '../repositories/sync-data.js';
import * as Threepids from '../repositories/threepids.js';
import * as Users from '../repositories/users.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import type { EmailIdentityState } from '../uia/stages/email-identity.js';
import { checkPassword } from './password-policy.js';
import type { Requester, SessionHandler } from './sessions.js';
import { threepidNotFound } from './threepid-validation.js';

const EMAIL_STAGE = 'm.login.email.identity';

/** Whether a UIA `auth` dict names a session (whose earlier requests may have given what this one leaves out). */
export const hasSession = (auth: unknown): boolean =>
  typeof auth === 'object' && auth !== null && typeof (auth as { session?: unknown }).session === 'string';

/**
 * How operations on one's own account are confirmed: with the password. As
 * Synapse, `password_config.enabled: false` switches password authentication
 * off entirely, re-authentication included: then no flow is offered and such
 * operations cannot be authorised (there is no other stage yet).
 */
export function reauthFlows(config: Pick<Config, 'password_config'>): Flow[] {
  return config.password_config.enabled ? [['m.login.password']] : [];
}

/**
 * The flows of a password reset (POST /account/password without an access
 * token): proving control of an address bound to the account. None when the
 * server sends no mail (no `email` section) or passwords are disabled.
 */
export function passwordResetFlows(config: Pick<Config, 'email' | 'password_config'>): Flow[] {
  return config.email !== null && config.password_config.enabled ? [[EMAIL_STAGE]] : [];
}

export class AccountHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly uia: UiaEngine,
    private readonly hasher: PasswordHasher,
    private readonly sessions: SessionHandler,
  ) {}

  whoami(requester: Requester): { user_id: string; device_id: string; is_guest: boolean } {
    return { user_id: requester.userId, device_id: requester.deviceId, is_guest: requester.isGuest };
  }

  /**
   * POST /account/password (spec: "Password management"). With logout_devices
   * (the default) every other device is signed out. The UIA session remembers
   * `new_password` (as its argon2 hash) and `logout_devices`, so the completing
   * request may send only `auth`; repeating it after success answers {} again
   * and changes nothing more. Errors: 403 M_FORBIDDEN (disabled, guests),
   * 400 M_WEAK_PASSWORD, 400 M_MISSING_PARAM (no new_password), UIA's.
   */
  async changePassword(
    requester: Requester,
    req: { newPassword: string | null; logoutDevices: boolean | null; auth: unknown; ip: string },
  ): Promise<Record<string, never>> {
    if (!this.config.password_config.enabled) throw forbidden('Password changes are disabled');
    if (requester.isGuest) throw forbidden('Guests cannot change passwords');
    // Without a session there is no earlier request that could have given it.
    if (req.newPassword === null && !hasSession(req.auth)) throw missingParam('Missing parameter: new_password');
    if (req.newPassword !== null) checkPassword(req.newPassword, this.config.password_config.policy);
    const auth = await this.uia.authenticate(
      {
        name: 'POST /account/password',
        userId: requester.userId,
        params: req.logoutDevices === null ? {} : { logout_devices: req.logoutDevices },
        secrets: req.newPassword === null ? {} : { new_password: req.newPassword },
        clientIp: req.ip,
      },
      reauthFlows(this.config),
      req.auth,
    );
    if (auth.previous) return {};
    const hash = auth.secretHashes.new_password;
    if (hash === undefined) throw missingParam('Missing parameter: new_password');
    const logoutDevices = auth.params.logout_devices !== false;
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      await Users.setPasswordHash(trx, requester.userId, hash);
      if (logoutDevices) await this.sessions.endSessions(trx, requester.userId, null, requester.deviceId);
    });
    return {};
  }

  /**
   * Throws 401 M_MISSING_TOKEN when there is no password reset (no `email`
   * section), for POST /account/password without a token to answer before
   * reading the body, as a route that needs a token does.
   */
  checkResetAvailable(): void {
    // Synapse offers [[m.login.email.identity]] even with no email configured, a flow no
    // client can complete; with no way to reset, Gatehouse answers as any route that needs a token.
    if (this.config.email === null) throw missingToken();
  }

  /**
   * POST /account/password without an access token: a password reset (spec:
   * "Password management": "The homeserver may change the flows available
   * depending on whether a valid access token is provided"). The one flow is
   * `m.login.email.identity` with a validation session made by
   * /account/password/email/requestToken; the account is the one the
   * validated address is bound to when the reset completes. As a change, the
   * UIA session remembers `new_password` (hashed) and `logout_devices`, a
   * repeat of the completed request answers {} and changes nothing, and with
   * logout_devices (the default) every session of the account ends.
   *
   * Errors: 401 M_MISSING_TOKEN (no `email` section: there is no way to reset),
   * 403 M_FORBIDDEN (passwords disabled), 400 M_WEAK_PASSWORD and
   * M_MISSING_PARAM (before UIA), UIA's 401, 400 M_THREEPID_NOT_FOUND (the
   * address is bound to no account now, e.g. deactivated since), 401
   * M_USER_LOCKED (the account is locked).
   */
  async resetPassword(req: { newPassword: string | null; logoutDevices: boolean | null; auth: unknown; ip: string }): Promise<Record<string, never>> {
    this.checkResetAvailable();
    if (!this.config.password_config.enabled) throw forbidden('Password changes are disabled');
    if (req.newPassword === null && !hasSession(req.auth)) throw missingParam('Missing parameter: new_password');
    if (req.newPassword !== null) checkPassword(req.newPassword, this.config.password_config.policy);
    const auth = await this.uia.authenticate(
      {
        name: 'POST /account/password',
        // Nobody is signed in: the account is known only once the address is proved.
        userId: null,
        params: req.logoutDevices === null ? {} : { logout_devices: req.logoutDevices },
        secrets: req.newPassword === null ? {} : { new_password: req.newPassword },
        clientIp: req.ip,
      },
      passwordResetFlows(this.config),
      req.auth,
    );
    if (auth.previous) return {};
    const hash = auth.secretHashes.new_password;
    if (hash === undefined) throw missingParam('Missing parameter: new_password');
    const proved = auth.stageState[EMAIL_STAGE] as EmailIdentityState | undefined;
    if (!proved) throw new Error('password reset authenticated without an email validation');
    const logoutDevices = auth.params.logout_devices !== false;
    await this.db.transaction(async (trx) => {
      // Looked up in the transaction, so that an address unbound meanwhile resets nothing.
      const userId = await Threepids.findUserIdByThreepid(trx, proved.medium, proved.address);
      // As Synapse ("Email address not found"); deactivation unbinds an account's addresses.
      if (userId === null) throw threepidNotFound();
      const user = await Users.lockUser(trx, userId);
      if (!user || user.deactivated) throw threepidNotFound();
      // Synapse resets a locked account's password too. Gatehouse refuses: a lock is an admin's
      // hold on the account, and whoever controls its mailbox (perhaps the reason for the lock)
      // must not be able to set a password that is waiting for them once it is lifted.
      if (Users.isInForce(user.lock, Date.now())) throw new MatrixError(401, 'M_USER_LOCKED', 'This account has been locked');
      await this.uia.complete(auth, trx);
      await Users.setPasswordHash(trx, userId, hash);
      if (logoutDevices) await this.sessions.endSessions(trx, userId, null);
    });
    return {};
  }

  /**
   * POST /account/deactivate: `deactivateAccount` once UIA passes, with the
   * `erase` the session remembers (default false).
   */
  async deactivate(requester: Requester, req: { erase: boolean | null; idServer: string | null; auth: unknown; ip: string }) {
    if (requester.isGuest) throw forbidden('Guests cannot deactivate their account');
    const params: Record<string, unknown> = {};
    if (req.erase !== null) params.erase = req.erase;
    if (req.idServer !== null) params.id_server = req.idServer;
    const auth = await this.uia.authenticate(
      { name: 'POST /account/deactivate', userId: requester.userId, params, clientIp: req.ip },
      reauthFlows(this.config),
      req.auth,
    );
    // Spec: "success" when no identity server holds a binding to undo: Gatehouse binds addresses at none.
    const result = { id_server_unbind_result: 'success' as const };
    if (auth.previous) return result;
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx, result);
      await deactivateAccount(trx, this.sessions, requester.userId, { erase: auth.params.erase === true });
    });
    return result;
  }
}

/**
 * Deactivation, the one place it is done: by the user (POST
 * /account/deactivate), by an admin (Synapse's admin API: POST
 * /_synapse/admin/v1/deactivate, PUT /_synapse/admin/v2/users with
 * `deactivated: true`) and from the command line. Every session ends (all
 * devices, access and refresh tokens), the password is removed, and the row
 * stays, so the localpart is never handed out again. Its email addresses are
 * unbound (as Synapse), so they can be registered again. With `erase` (as Synapse) the
 * display name and avatar are cleared and the account is marked erased.
 * Running it again on a deactivated account is harmless (and can still erase).
 */
export async function deactivateAccount(trx: Knex, sessions: SessionHandler, userId: string, opts: { erase: boolean }): Promise<void> {
  await Users.markDeactivated(trx, userId);
  await sessions.endSessions(trx, userId, null);
  await Threepids.deleteUserThreepids(trx, userId);
  // Filters, account data, pending to-device messages, presence.
  await SyncData.deleteUserSyncData(trx, userId);
  // As Synapse: cross-signing keys and key backups go too (device keys went with the devices).
  await E2eKeys.deleteUserCrossSigning(trx, userId);
  await KeyBackup.deleteUserBackups(trx, userId);
  if (opts.erase) {
    // Display name, avatar and every custom field (MSC4133): lookups then find nothing.
    await Profiles.eraseProfile(trx, userId);
    await UserAdmin.markErased(trx, userId);
  }
}
