// The signed-in user's account: whoami, password change, deactivation.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { forbidden } from '../errors.js';
import * as Users from '../repositories/users.js';
import type { UiaEngine } from '../uia/engine.js';
import { checkPassword } from './password-policy.js';
import type { Requester, SessionHandler } from './sessions.js';

/** Operations on one's own account are confirmed with the password. */
export const REAUTH_FLOWS = [['m.login.password']];

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

  /** POST /account/password. With logout_devices (the default) every other device is signed out. */
  async changePassword(
    requester: Requester,
    req: { newPassword: string; logoutDevices: boolean; auth: unknown; ip: string },
  ): Promise<Record<string, never>> {
    if (!this.config.password_config.enabled) throw forbidden('Password changes are disabled');
    if (requester.isGuest) throw forbidden('Guests cannot change passwords');
    checkPassword(req.newPassword, this.config.password_config.policy);
    const auth = await this.uia.authenticate(
      { name: 'POST /account/password', userId: requester.userId, binding: { logout_devices: req.logoutDevices }, clientIp: req.ip },
      REAUTH_FLOWS,
      req.auth,
    );
    const hash = await this.hasher.hash(req.newPassword);
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      await Users.setPasswordHash(trx, requester.userId, hash);
      if (req.logoutDevices) await this.sessions.endSessions(trx, requester.userId, null, requester.deviceId);
    });
    return {};
  }

  /**
   * POST /account/deactivate. The row stays (deactivated, without password),
   * so the localpart is never handed out again; every session ends.
   */
  async deactivate(requester: Requester, req: { erase: boolean; idServer: string | null; auth: unknown; ip: string }) {
    if (requester.isGuest) throw forbidden('Guests cannot deactivate their account');
    const binding: Record<string, unknown> = { erase: req.erase };
    if (req.idServer !== null) binding.id_server = req.idServer;
    const auth = await this.uia.authenticate(
      { name: 'POST /account/deactivate', userId: requester.userId, binding, clientIp: req.ip },
      REAUTH_FLOWS,
      req.auth,
    );
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      await Users.markDeactivated(trx, requester.userId);
      // As Synapse: a deactivated user's display name and avatar are removed.
      await Users.clearProfile(trx, requester.userId);
      await this.sessions.endSessions(trx, requester.userId, null);
    });
    // Spec: "success" when the homeserver has no identifiers to unbind; Gatehouse binds none yet.
    return { id_server_unbind_result: 'success' as const };
  }
}
