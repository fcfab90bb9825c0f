// Creating accounts: one path for registration, guest registration,
// shared-secret registration and the command line.

import type { Knex } from 'knex';
import { userIdFor } from '../domain/user-ids.js';
import { MatrixError } from '../errors.js';
import * as Users from '../repositories/users.js';

/** Synapse's user types (UserTypes.ALL_USER_TYPES); null is an ordinary account. */
export const USER_TYPES: readonly string[] = ['support', 'bot'];

export const userInUse = () => new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');

export interface NewAccount {
  localpart: string;
  passwordHash: string | null;
  isAdmin: boolean;
  isGuest: boolean;
  displayname: string | null;
  /** False for an account that must wait for an admin's approval (default true). */
  approved?: boolean;
  /** Synapse's user type: null (default), or one of USER_TYPES. */
  userType?: string | null;
}

/**
 * Inserts the account and its profile. Returns its user ID, or null when the
 * localpart is taken: the primary key decides races between parallel requests.
 */
export async function createAccount(trx: Knex, serverName: string, account: NewAccount, now: number): Promise<string | null> {
  const userId = userIdFor(account.localpart, serverName);
  const created = await Users.insertUser(
    trx,
    {
      user_id: userId,
      localpart: account.localpart,
      password_hash: account.passwordHash,
      is_admin: account.isAdmin,
      is_guest: account.isGuest,
      displayname: account.displayname,
      approved: account.approved ?? true,
      user_type: account.userType ?? null,
    },
    now,
  );
  return created ? userId : null;
}
