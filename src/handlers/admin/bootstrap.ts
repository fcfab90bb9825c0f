// Creating an admin account from the command line (gatehouse start --ephemeral).

import type { Knex } from 'knex';
import type { PasswordHasher } from '../../crypto/passwords.js';
import { checkNewLocalpart, userIdFor } from '../../domain/user-ids.js';
import * as Users from '../../repositories/users.js';
import type { SessionHandler } from '../sessions.js';

export async function createAdminUser(
  db: Knex,
  serverName: string,
  hasher: PasswordHasher,
  sessions: SessionHandler,
  localpart: string,
  password: string,
): Promise<{ user_id: string; access_token: string; device_id: string }> {
  checkNewLocalpart(localpart, serverName);
  const userId = userIdFor(localpart, serverName);
  const hash = await hasher.hash(password);
  return db.transaction(async (trx) => {
    if (!(await Users.insertUser(trx, { user_id: userId, localpart, password_hash: hash, is_admin: true, is_guest: false, displayname: localpart }, Date.now())))
      throw new Error(`user ${userId} already exists`);
    const s = await sessions.issue(trx, { userId, deviceId: null, displayName: 'gatehouse CLI', wantRefreshToken: false, ip: null, userAgent: null });
    return { user_id: userId, access_token: s.access_token, device_id: s.device_id };
  });
}
