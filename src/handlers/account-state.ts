// Account moderation: locking (MSC3939) and suspension (MSC3823), as admins
// set them through the spec's admin endpoints (MSC4323), Synapse's admin API
// and the CLI. Beyond the MSCs, a lock or suspension may carry a reason and an
// end time, when it lifts itself (MSC4323 admits the gap).

import type { Knex } from 'knex';
import { parseUserId } from '../domain/user-ids.js';
import { invalidParam, notFound } from '../errors.js';
import * as Users from '../repositories/users.js';

/** A lock or suspension as the admin APIs show it. */
export interface RestrictionView {
  /** Whether it holds now (false once its end time has passed). */
  active: boolean;
  reason: string | null;
  /** Milliseconds since the epoch; null = until lifted. */
  until: number | null;
}

export interface AccountStateView {
  user_id: string;
  locked: RestrictionView;
  suspended: RestrictionView;
}

/** What an admin sets: on or off, with an optional reason (≤ 1000 characters) and end time. */
export interface RestrictionChange {
  on: boolean;
  reason?: string | null;
  /** Milliseconds since the epoch, in the future; null or absent = until lifted. */
  until?: number | null;
}

const MAX_REASON = 1000;

function view(r: Users.Restriction | null, now: number): RestrictionView {
  return { active: Users.isInForce(r, now), reason: r?.reason ?? null, until: r?.until ?? null };
}

export class AccountStateHandler {
  constructor(
    private readonly db: Knex,
    private readonly serverName: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The account's lock and suspension. 400 M_INVALID_PARAM (not a local user ID), 404 M_NOT_FOUND (no such account). */
  async state(userId: string): Promise<AccountStateView> {
    const user = await this.localUser(userId);
    const now = this.clock();
    return { user_id: user.user_id, locked: view(user.lock, now), suspended: view(user.suspension, now) };
  }

  /** Locks or unlocks (MSC3939). Errors as `state`, and 400 M_INVALID_PARAM for a bad reason or end time. */
  async setLocked(userId: string, change: RestrictionChange): Promise<AccountStateView> {
    const restriction = this.restriction(change);
    await this.localUser(userId);
    await Users.setLock(this.db, userId, restriction);
    return this.state(userId);
  }

  /** Suspends or lifts a suspension (MSC3823). Errors as `setLocked`. */
  async setSuspended(userId: string, change: RestrictionChange): Promise<AccountStateView> {
    const restriction = this.restriction(change);
    await this.localUser(userId);
    await Users.setSuspension(this.db, userId, restriction);
    return this.state(userId);
  }

  private restriction(change: RestrictionChange): Users.Restriction | null {
    if (!change.on) return null;
    const reason = change.reason ?? null;
    if (reason !== null && (reason.length > MAX_REASON || reason.includes('\u0000')))
      throw invalidParam(`reason must be at most ${MAX_REASON} characters`);
    const until = change.until ?? null;
    if (until !== null && (!Number.isSafeInteger(until) || until <= this.clock())) throw invalidParam('until must be a time in the future (ms since the epoch)');
    return { reason, until };
  }

  private async localUser(userId: string): Promise<Users.UserRow> {
    const parsed = parseUserId(userId);
    if (!parsed || parsed.serverName !== this.serverName) throw invalidParam(`${userId} is not a user of this server`);
    const user = await Users.findUser(this.db, userId);
    if (!user) throw notFound(`No such user ${userId}`);
    return user;
  }
}
