// SQL for access and refresh tokens. Only hashes are stored.

import type { Knex } from 'knex';

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
}

const num = (v: unknown) => (v == null ? null : Number(v));

export interface AccessTokenWithUser extends AccessTokenRow {
  is_guest: boolean;
  deactivated: boolean;
}

/** The one query behind every authenticated request: the token and the facts about its user. */
export async function findAccessTokenWithUser(q: Knex, tokenHash: string): Promise<AccessTokenWithUser | null> {
  const r = await q('access_tokens as t')
    .join('users as u', 'u.user_id', 't.user_id')
    .where('t.token_hash', tokenHash)
    .first('t.id', 't.token_hash', 't.user_id', 't.device_id', 't.refresh_token_id', 't.used', 't.expires_ts', 'u.is_guest', 'u.deactivated');
  if (!r) return null;
  return {
    id: Number(r.id),
    token_hash: r.token_hash,
    user_id: r.user_id,
    device_id: r.device_id,
    refresh_token_id: num(r.refresh_token_id),
    used: !!r.used,
    expires_ts: num(r.expires_ts),
    is_guest: !!r.is_guest,
    deactivated: !!r.deactivated,
  };
}

export async function insertAccessToken(
  q: Knex,
  t: { token_hash: string; user_id: string; device_id: string; refresh_token_id: number | null; expires_ts: number | null },
  now: number,
): Promise<number> {
  const [row] = await q('access_tokens').insert({ ...t, used: false, created_ts: now }).returning('id');
  return Number(typeof row === 'object' ? row.id : row);
}

export async function insertRefreshToken(
  q: Knex,
  t: { token_hash: string; user_id: string; device_id: string; expires_ts: number | null },
  now: number,
): Promise<number> {
  const [row] = await q('refresh_tokens').insert({ ...t, next_token_id: null, created_ts: now }).returning('id');
  return Number(typeof row === 'object' ? row.id : row);
}

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
  };
}

/**
 * Links a refresh token to the one it was exchanged for, only if its link is
 * still `expectedNext` (compare-and-set): false means a parallel refresh won.
 */
export async function linkNextRefreshToken(q: Knex, id: number, nextId: number, expectedNext: number | null): Promise<boolean> {
  const query = q('refresh_tokens').where({ id });
  if (expectedNext === null) query.whereNull('next_token_id');
  else query.where({ next_token_id: expectedNext });
  return (await query.update({ next_token_id: nextId })) > 0;
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
