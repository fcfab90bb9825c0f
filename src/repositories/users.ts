// SQL for accounts and their profiles.

import type { Knex } from 'knex';
import { rawRows } from '../db/database.js';

export interface UserRow {
  user_id: string;
  localpart: string;
  password_hash: string | null;
  is_admin: boolean;
  is_guest: boolean;
  deactivated: boolean;
  /** False while the account waits for an admin's approval (MSC3866). */
  approved: boolean;
  /** MSC3939; see `isInForce` for whether it still holds. */
  lock: Restriction | null;
  /** MSC3823; see `isInForce` for whether it still holds. */
  suspension: Restriction | null;
  /** Synapse's user type: null, "support" or "bot". */
  user_type: string | null;
  created_ts: number;
}

/** A lock or suspension: why (free text for admins), and until when (ms since the epoch; null = until lifted). */
export interface Restriction {
  reason: string | null;
  until: number | null;
}

/** Whether a lock or suspension holds at `now` (one with an end time lifts itself then). */
export function isInForce(r: Pick<Restriction, 'until'> | null, now: number): boolean {
  return r !== null && (r.until === null || now < r.until);
}

function restriction(on: unknown, reason: unknown, until: unknown): Restriction | null {
  if (!on) return null;
  return { reason: (reason as string | null) ?? null, until: until == null ? null : Number(until) };
}

export function toUser(r: Record<string, unknown> | undefined): UserRow | null {
  if (!r) return null;
  return {
    user_id: r.user_id as string,
    localpart: r.localpart as string,
    password_hash: (r.password_hash as string | null) ?? null,
    is_admin: !!r.is_admin,
    is_guest: !!r.is_guest,
    deactivated: !!r.deactivated,
    approved: r.approved === undefined || r.approved === null ? true : !!r.approved,
    lock: restriction(r.locked, r.lock_reason, r.locked_until),
    suspension: restriction(r.suspended, r.suspension_reason, r.suspended_until),
    user_type: (r.user_type as string | null | undefined) ?? null,
    created_ts: Number(r.created_ts),
  };
}

/** The user row by ID (see also PreparedAccessTokenLookup.findUser, the same SQL). */
export const FIND_USER_SQL = 'SELECT * FROM users WHERE user_id = ? LIMIT 1';

/** Every login reads this first: plain SQL, as the query builder adds a measurable share to each statement (docs/benchmarks.md). */
export async function findUser(q: Knex, userId: string): Promise<UserRow | null> {
  const res = await q.raw(FIND_USER_SQL, [userId]);
  return toUser(rawRows(res)[0]);
}

/** The user's row, locked until the transaction ends (PostgreSQL; SQLite serialises transactions). */
export async function lockUser(q: Knex, userId: string): Promise<UserRow | null> {
  return toUser(await q('users').where({ user_id: userId }).forUpdate().first());
}

/** The user whose localpart matches case-insensitively, when exactly one does (as Synapse's login lookup). */
export async function findUserByLocalpartCaseInsensitive(q: Knex, localpart: string): Promise<UserRow | null> {
  const rows = await q('users').whereRaw('lower(localpart) = ?', [localpart.toLowerCase()]).limit(2);
  return rows.length === 1 ? toUser(rows[0]) : null;
}

export async function localpartExists(q: Knex, localpart: string): Promise<boolean> {
  const row = await q('users').whereRaw('lower(localpart) = ?', [localpart.toLowerCase()]).first('user_id');
  return row !== undefined;
}

/**
 * Inserts a user and their profile. Returns false when the user ID is taken:
 * the primary key decides races between parallel registrations.
 */
export async function insertUser(
  q: Knex,
  user: {
    user_id: string;
    localpart: string;
    password_hash: string | null;
    is_admin: boolean;
    is_guest: boolean;
    displayname: string | null;
    approved?: boolean;
    user_type?: string | null;
  },
  now: number,
): Promise<boolean> {
  const inserted = await q('users')
    .insert({
      user_id: user.user_id,
      localpart: user.localpart,
      password_hash: user.password_hash,
      is_admin: user.is_admin,
      is_guest: user.is_guest,
      deactivated: false,
      approved: user.approved ?? true,
      user_type: user.user_type ?? null,
      created_ts: now,
    })
    .onConflict()
    .ignore()
    .returning('user_id');
  if (inserted.length === 0) return false;
  await q('profiles').insert({ user_id: user.user_id, displayname: user.displayname, avatar_url: null });
  return true;
}

export async function setPasswordHash(q: Knex, userId: string, hash: string | null): Promise<void> {
  await q('users').where({ user_id: userId }).update({ password_hash: hash });
}

export async function markDeactivated(q: Knex, userId: string): Promise<void> {
  await q('users').where({ user_id: userId }).update({ deactivated: true, password_hash: null });
}

export async function countUsers(q: Knex): Promise<number> {
  const row = await q('users').count<{ n: number | string }[]>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/** Approves (or withdraws the approval of) an account. Returns false when there is no such user. */
export async function setApproved(q: Knex, userId: string, approved: boolean): Promise<boolean> {
  return (await q('users').where({ user_id: userId }).update({ approved })) > 0;
}

/** Accounts waiting for approval, oldest first. */
export async function listAwaitingApproval(q: Knex, limit: number): Promise<UserRow[]> {
  return (await q('users').where({ approved: false, deactivated: false }).orderBy('created_ts').limit(limit)).map((r) => toUser(r)!);
}

/**
 * Turns a guest account into a full one (spec: guest access, "upgrading"),
 * keeping its user ID. False when the user is not (or no longer) a guest.
 */
export async function upgradeGuest(q: Knex, userId: string, passwordHash: string, approved: boolean): Promise<boolean> {
  const n = await q('users')
    .where({ user_id: userId, is_guest: true, deactivated: false })
    .update({ is_guest: false, password_hash: passwordHash, approved });
  return n > 0;
}

/** Locks the account (MSC3939), or unlocks it with null. False when there is no such user. */
export async function setLock(q: Knex, userId: string, lock: Restriction | null): Promise<boolean> {
  const n = await q('users')
    .where({ user_id: userId })
    .update({ locked: lock !== null, lock_reason: lock?.reason ?? null, locked_until: lock?.until ?? null });
  return n > 0;
}

/** Suspends the account (MSC3823), or lifts the suspension with null. False when there is no such user. */
export async function setSuspension(q: Knex, userId: string, suspension: Restriction | null): Promise<boolean> {
  const n = await q('users')
    .where({ user_id: userId })
    .update({ suspended: suspension !== null, suspension_reason: suspension?.reason ?? null, suspended_until: suspension?.until ?? null });
  return n > 0;
}

/** Sets Synapse's user type (null, "support" or "bot"). False when there is no such user. */
export async function setUserType(q: Knex, userId: string, userType: string | null): Promise<boolean> {
  return (await q('users').where({ user_id: userId }).update({ user_type: userType })) > 0;
}
