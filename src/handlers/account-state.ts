// Account moderation: locking (MSC3939) and suspension (MSC3823), as admins
// set them through the spec's admin endpoints (MSC4323), Synapse's admin API
// and the CLI. Beyond the MSCs, a lock or suspension may carry a reason and an
// end time, when it lifts itself (MSC4323 admits the gap).

import type { Knex } from 'knex';
import { parseUserId } from '../domain/user-ids.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../errors.js';
import * as Users from '../repositories/users.js';
import type { Requester, TokenInvalidator } from './sessions.js';

/**
 * MSC3939: a locked account. 401 with `soft_logout: true`, so that clients
 * keep their session data (and their tokens, which stay valid) and try again later.
 */
export const userLocked = () => new MatrixError(401, 'M_USER_LOCKED', 'This account has been locked', { soft_logout: true });

/** MSC3823: a suspended account may not do this. 403, no `soft_logout`: the user stays signed in. */
export const userSuspended = () => new MatrixError(403, 'M_USER_SUSPENDED', 'This account is suspended and may not do this');

/**
 * The suspension policy (MSC3823), in one place. Whole routes that are
 * suspension-covered writes declare `forbidWhenSuspended` (requireAuth), which
 * calls this; a handler whose refusal depends on the request (a later /send:
 * a suspended user may redact their own events but not send messages) calls
 * it itself. Throws 403 M_USER_SUSPENDED.
 */
export function forbidIfSuspended(requester: Requester): void {
  if (requester.suspended) throw userSuspended();
}

/** Which restriction an MSC4323 endpoint is about. */
export type Moderation = 'lock' | 'suspension';

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
    /** Drops the account's cached tokens after each change (SessionHandler). */
    private readonly tokens?: TokenInvalidator,
  ) {}

  /** The account's lock and suspension. 400 M_INVALID_PARAM (not a local user ID), 404 M_NOT_FOUND (no such account). */
  async state(userId: string): Promise<AccountStateView> {
    return this.viewOf(await this.localUser(userId));
  }

  /**
   * Locks or unlocks (MSC3939). Errors as `state`, and 400 M_INVALID_PARAM for a
   * bad reason or end time. `actingAdmin`: the admin acting through an API, who
   * may not restrict their own account (403 M_FORBIDDEN: a suspended admin cannot
   * make admin writes, so it could not be undone there); absent for the CLI.
   */
  async setLocked(userId: string, change: RestrictionChange, actingAdmin?: string): Promise<AccountStateView> {
    const restriction = this.restriction(change);
    await this.localUser(userId);
    if (actingAdmin === userId) throw forbidden('You cannot suspend or lock your own account');
    await Users.setLock(this.db, userId, restriction);
    await this.tokens?.invalidateUsers(this.db, [userId]);
    return this.state(userId);
  }

  /** Suspends or lifts a suspension (MSC3823). Errors as `setLocked`. */
  async setSuspended(userId: string, change: RestrictionChange, actingAdmin?: string): Promise<AccountStateView> {
    const restriction = this.restriction(change);
    await this.localUser(userId);
    if (actingAdmin === userId) throw forbidden('You cannot suspend or lock your own account');
    await Users.setSuspension(this.db, userId, restriction);
    await this.tokens?.invalidateUsers(this.db, [userId]);
    return this.state(userId);
  }

  /**
   * MSC4323's GET: the account's lock and suspension, as `state`, for the spec's
   * admin endpoints. Beyond `state`'s errors: 404 M_NOT_FOUND for a deactivated
   * account, 403 M_FORBIDDEN when the account is another admin's (spec v1.18:
   * admins are outside these endpoints). The caller has checked that `adminId`
   * is a server admin (before this looks anything up).
   */
  async moderationState(adminId: string, userId: string): Promise<AccountStateView> {
    const user = await this.moderationTarget(adminId, userId);
    return this.viewOf(user);
  }

  /**
   * MSC4323's PUT: locks or suspends (or lifts it). Errors as `moderationState`,
   * 403 M_FORBIDDEN for the admin's own account, and 400 M_INVALID_PARAM for a bad
   * reason or end time (checked first: bad input changes nothing).
   */
  async moderate(adminId: string, userId: string, what: Moderation, change: RestrictionChange): Promise<AccountStateView> {
    const restriction = this.restriction(change);
    const user = await this.moderationTarget(adminId, userId);
    if (user.user_id === adminId) throw forbidden('You cannot suspend or lock your own account');
    if (what === 'lock') await Users.setLock(this.db, user.user_id, restriction);
    else await Users.setSuspension(this.db, user.user_id, restriction);
    await this.tokens?.invalidateUsers(this.db, [user.user_id]);
    return this.state(user.user_id);
  }

  private async moderationTarget(adminId: string, userId: string): Promise<Users.UserRow> {
    const user = await this.localUser(userId);
    if (user.deactivated) throw notFound(`No such user ${userId}`);
    if (user.is_admin && user.user_id !== adminId) throw forbidden(`${userId} is a server admin`);
    return user;
  }

  private viewOf(user: Users.UserRow): AccountStateView {
    const now = this.clock();
    return { user_id: user.user_id, locked: view(user.lock, now), suspended: view(user.suspension, now) };
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
