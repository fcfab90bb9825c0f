// The signed-in user's account: whoami, password change, deactivation.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { forbidden, missingParam } from '../errors.js';
import * as UserAdmin from '../repositories/user-admin.js';
import * as E2eKeys from '../repositories/e2e-keys.js';
import * as KeyBackup from '../repositories/key-backup.js';
import * as Profiles from '../repositories/profiles.js';
import * as SyncData from '../repositories/sync-data.js';
import * as Threepids from '../repositories/threepids.js';
import * as Users from '../repositories/users.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import { checkPassword } from './password-policy.js';
import type { Requester, SessionHandler } from './sessions.js';

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
    // Spec: "success" when the homeserver has no identifiers to unbind; Gatehouse binds none yet.
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
