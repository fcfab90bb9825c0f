// Creating an admin account from the command line (gatehouse start --ephemeral).

import type { Knex } from 'knex';
import type { PasswordHasher } from '../../crypto/passwords.js';
import { checkNewLocalpart } from '../../domain/user-ids.js';
import { createAccount, userInUse } from '../accounts.js';
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
  const passwordHash = await hasher.hash(password);
  return db.transaction(async (trx) => {
    const account = { localpart, passwordHash, isAdmin: true, isGuest: false, displayname: localpart };
    const userId = await createAccount(trx, serverName, account, Date.now());
    if (!userId) throw userInUse();
    const s = await sessions.issue(trx, { userId, deviceId: null, displayName: 'gatehouse CLI', wantRefreshToken: false, ip: null, userAgent: null });
    return { user_id: userId, access_token: s.access_token, device_id: s.device_id };
  });
}
