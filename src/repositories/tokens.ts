// SQL for access and refresh tokens. Only hashes are stored.

import type { Knex } from 'knex';
import sqlite3 from 'sqlite3';
import { prepareStatement, rawRows, type Runner, runAll, statementRows } from '../db/database.js';
import { FIND_USER_SQL, toUser, type UserRow } from './users.js';

export interface AccessTokenRow {
  id: number;
  token_hash: string;
  user_id: string;
  device_id: string;
  refresh_token_id: number | null;
  used: boolean;
  expires_ts: number | null;
}

export interface RefreshTokenRow {
  id: number;
  token_hash: string;
  user_id: string;
  device_id: string;
  next_token_id: number | null;
  expires_ts: number | null;
  /** When the sign-in this token belongs to ends (session_lifetime); null = never. Inherited by its successors. */
  ultimate_session_expiry_ts: number | null;
}

const num = (v: unknown) => (v == null ? null : Number(v));

export interface AccessTokenWithUser extends AccessTokenRow {
  is_guest: boolean;
  is_admin: boolean;
  deactivated: boolean;
  approved: boolean;
  /** MSC3939: the account's lock, with its end (ms since the epoch; null = until unlocked); null = not locked. */
  lock: { until: number | null } | null;
  /** MSC3823: the account's suspension, likewise. Whether either holds now is `isInForce`'s answer. */
  suspension: { until: number | null } | null;
}

// Reasons are for admins and are not read here; the end times are, so that an ended lock or
// suspension lifts itself on the next request without any job.
const ACCESS_TOKEN_WITH_USER_SQL = `SELECT t.id, t.token_hash, t.user_id, t.device_id, t.refresh_token_id, t.used, t.expires_ts,
  u.is_guest, u.is_admin, u.deactivated, u.approved, u.locked, u.locked_until, u.suspended, u.suspended_until
  FROM access_tokens t JOIN users u ON u.user_id = t.user_id
  WHERE t.token_hash = ? LIMIT 1`;

export function toAccessTokenWithUser(r: Record<string, unknown> | undefined): AccessTokenWithUser | null {
  if (!r) return null;
  return {
    id: Number(r.id),
    token_hash: r.token_hash as string,
    user_id: r.user_id as string,
    device_id: r.device_id as string,
    refresh_token_id: num(r.refresh_token_id),
    used: !!r.used,
    expires_ts: num(r.expires_ts),
    is_guest: !!r.is_guest,
    is_admin: !!r.is_admin,
    deactivated: !!r.deactivated,
    approved: !!r.approved,
    lock: r.locked ? { until: num(r.locked_until) } : null,
    suspension: r.suspended ? { until: num(r.suspended_until) } : null,
  };
}

/** The one query behind every authenticated request: the token and the facts about its user. */
export async function findAccessTokenWithUser(q: Knex, tokenHash: string): Promise<AccessTokenWithUser | null> {
  const res = await q.raw(ACCESS_TOKEN_WITH_USER_SQL, [tokenHash]);
  return toAccessTokenWithUser(rawRows(res)[0]);
}

/**
 * The same lookup through a statement prepared once on a connection of its
 * own (SQLite). The query builder and re-preparing cost several times the
 * lookup itself, and a connection of its own means a signed-in request never
 * waits for a write transaction holding the main connection. Also prepares
 * the user row a password login reads before its password check (`findUser`),
 * for the same reasons; it sees committed rows only, and the sign-in re-checks
 * the row in its transaction anyway.
 */
export class PreparedAccessTokenLookup {
  private constructor(
    private readonly conn: sqlite3.Database,
    private readonly stmt: sqlite3.Statement,
    private readonly userStmt: sqlite3.Statement,
  ) {}

  static open(file: string): Promise<PreparedAccessTokenLookup> {
    return new Promise((resolve, reject) => {
      const conn = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => {
        if (err) return reject(err);
        conn.configure('busyTimeout', 5000);
        Promise.all([prepareStatement(conn, ACCESS_TOKEN_WITH_USER_SQL), prepareStatement(conn, FIND_USER_SQL)]).then(
          ([stmt, userStmt]) => resolve(new PreparedAccessTokenLookup(conn, stmt, userStmt)),
          reject,
        );
      });
    });
  }

  find(tokenHash: string): Promise<AccessTokenWithUser | null> {
    return statementRows(this.stmt, [tokenHash]).then((rows) => toAccessTokenWithUser(rows[0]));
  }

  /** `Users.findUser`, on this connection. */
  findUser(userId: string): Promise<UserRow | null> {
    return statementRows(this.userStmt, [userId]).then((rows) => toUser(rows[0]));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.userStmt.finalize(() => this.stmt.finalize(() => this.conn.close(() => resolve()))));
  }
}

/** Inserts an access token; its id. Runs on knex or on a prepared SQLite transaction. */
export async function insertAccessToken(
  q: Runner,
  t: { token_hash: string; user_id: string; device_id: string; refresh_token_id: number | null; expires_ts: number | null },
  now: number,
): Promise<number> {
  // Plain SQL: every sign-in and refresh runs it, and the query builder adds a measurable share (docs/benchmarks.md).
  const rows = await runAll<{ id: unknown }>(q, INSERT_ACCESS_TOKEN_SQL, [t.token_hash, t.user_id, t.device_id, t.refresh_token_id, t.expires_ts, false, now]);
  return Number(rows[0]!.id);
}

const INSERT_ACCESS_TOKEN_SQL = `INSERT INTO access_tokens (token_hash, user_id, device_id, refresh_token_id, expires_ts, used, created_ts)
     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`;

/** Inserts a refresh token (next_token_id null); its id. Runs on knex or on a prepared SQLite transaction. */
export async function insertRefreshToken(
  q: Runner,
  t: { token_hash: string; user_id: string; device_id: string; expires_ts: number | null; ultimate_session_expiry_ts?: number | null },
  now: number,
): Promise<number> {
  const rows = await runAll<{ id: unknown }>(q, INSERT_REFRESH_TOKEN_SQL, [
    t.token_hash,
    t.user_id,
    t.device_id,
    t.expires_ts,
    t.ultimate_session_expiry_ts ?? null,
    now,
  ]);
  return Number(rows[0]!.id);
}

const INSERT_REFRESH_TOKEN_SQL = `INSERT INTO refresh_tokens (token_hash, user_id, device_id, expires_ts, ultimate_session_expiry_ts, next_token_id, created_ts)
     VALUES (?, ?, ?, ?, ?, NULL, ?) RETURNING id`;

/**
 * Inside a transaction on PostgreSQL the row stays locked until commit, so
 * parallel refreshes of one token take turns instead of racing (SQLite already
 * runs one transaction at a time).
 */
export async function findRefreshToken(q: Knex, tokenHash: string): Promise<RefreshTokenRow | null> {
  const r = await q('refresh_tokens').where({ token_hash: tokenHash }).forUpdate().first();
  if (!r) return null;
  return {
    id: Number(r.id),
    token_hash: r.token_hash,
    user_id: r.user_id,
    device_id: r.device_id,
    next_token_id: num(r.next_token_id),
    expires_ts: num(r.expires_ts),
    ultimate_session_expiry_ts: num(r.ultimate_session_expiry_ts),
  };
}

/** Links a refresh token to the one it was exchanged for. */
export async function linkNextRefreshToken(q: Knex, id: number, nextId: number): Promise<void> {
  await q('refresh_tokens').where({ id }).update({ next_token_id: nextId });
}

/**
 * Marks an access token used. Returns true only for the request that flipped
 * the flag, which then retires the refresh token its own refresh token replaced.
 */
export async function markAccessTokenUsed(q: Knex, id: number): Promise<boolean> {
  const n = await q('access_tokens').where({ id, used: false }).update({ used: true });
  return n > 0;
}

/** Deletes the refresh tokens that were exchanged for `refreshTokenId`, and their access tokens. */
export async function deletePredecessorRefreshTokens(q: Knex, refreshTokenId: number): Promise<void> {
  const old = q('refresh_tokens').where({ next_token_id: refreshTokenId }).select('id');
  await q('access_tokens').whereIn('refresh_token_id', old).delete();
  await q('refresh_tokens').where({ next_token_id: refreshTokenId }).delete();
}

export async function deleteRefreshTokenWithAccessTokens(q: Knex, id: number): Promise<void> {
  await q('access_tokens').where({ refresh_token_id: id }).delete();
  await q('refresh_tokens').where({ id }).delete();
}

/** Deletes every token of the given devices (all of the user's when `deviceIds` is null), except `keepDevice`'s. */
export async function deleteTokensForDevices(q: Knex, userId: string, deviceIds: string[] | null, keepDevice: string | null = null): Promise<void> {
  for (const table of ['access_tokens', 'refresh_tokens']) {
    let query = q(table).where({ user_id: userId });
    if (deviceIds !== null) query = query.whereIn('device_id', deviceIds);
    if (keepDevice !== null) query = query.whereNot({ device_id: keepDevice });
    await query.delete();
  }
}

/**
 * `deleteTokensForDevices` for one device (a sign-in on an existing device ID
 * ends its earlier tokens). Runs on knex or on a prepared SQLite transaction.
 */
export async function deleteTokensForDevice(q: Runner, userId: string, deviceId: string): Promise<void> {
  await runAll(q, 'DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?', [userId, deviceId]);
  await runAll(q, 'DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?', [userId, deviceId]);
}

/** Deletes refresh tokens that expired before `before`, with the access tokens issued alongside them. */
export async function deleteExpiredRefreshTokens(q: Knex, before: number): Promise<number> {
  const expired = () => q('refresh_tokens').whereNotNull('expires_ts').where('expires_ts', '<', before);
  await q('access_tokens').whereIn('refresh_token_id', expired().select('id')).delete();
  return expired().delete();
}

/** Deletes access tokens without a refresh token that expired before `before`. */
export async function deleteExpiredAccessTokens(q: Knex, before: number): Promise<number> {
  return q('access_tokens').whereNull('refresh_token_id').whereNotNull('expires_ts').where('expires_ts', '<', before).delete();
}
