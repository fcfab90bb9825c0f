// Accounts waiting for an admin's approval (registration_requires_approval,
// MSC3866): listing them and approving (or withdrawing approval). Used by
// `gatehouse users`; the Synapse user admin API's `approved` field will use it too.

import type { Knex } from 'knex';
import { parseUserId } from '../../domain/user-ids.js';
import { invalidParam, notFound } from '../../errors.js';
import * as Users from '../../repositories/users.js';
import type { TokenInvalidator } from '../sessions.js';

export interface PendingAccount {
  user_id: string;
  /** Milliseconds since the epoch. */
  created_ts: number;
}

/** Most accounts one listing returns. */
export const MAX_PENDING = 1000;

export class AccountApprovalHandler {
  constructor(
    private readonly db: Knex,
    private readonly serverName: string,
    /** Drops the account's cached tokens after each change (SessionHandler). */
    private readonly tokens?: TokenInvalidator,
  ) {}

  /** Accounts (not deactivated) that wait for approval, oldest first, at most `limit`. */
  async pending(limit = MAX_PENDING): Promise<PendingAccount[]> {
    const rows = await Users.listAwaitingApproval(this.db, Math.min(Math.max(1, limit), MAX_PENDING));
    return rows.map((u) => ({ user_id: u.user_id, created_ts: u.created_ts }));
  }

  /**
   * Approves (`approved: true`) or withdraws approval (`false`; the account's
   * requests are then refused with 403 M_USER_AWAITING_APPROVAL). Errors: 400
   * M_INVALID_PARAM (not a user ID of this server), 404 M_NOT_FOUND (no such account).
   */
  async setApproved(userId: string, approved: boolean): Promise<{ user_id: string; approved: boolean }> {
    this.checkLocal(userId);
    if (!(await Users.setApproved(this.db, userId, approved))) throw notFound(`No such user ${userId}`);
    await this.tokens?.invalidateUsers(this.db, [userId]);
    return { user_id: userId, approved };
  }

  /** Throws as setApproved would for `userId` (not local, no such account), changing nothing. */
  async check(userId: string): Promise<void> {
    this.checkLocal(userId);
    if (!(await Users.findUser(this.db, userId))) throw notFound(`No such user ${userId}`);
  }

  private checkLocal(userId: string): void {
    const parsed = parseUserId(userId);
    if (!parsed || parsed.serverName !== this.serverName) throw invalidParam(`${userId} is not a user ID of ${this.serverName}`);
  }
}
