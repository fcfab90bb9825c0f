// SQL for login tokens (MSC3882). Only SHA-256 hashes of the tokens are stored.

import type { Knex } from 'knex';

export interface LoginTokenRow {
  token_hash: string;
  user_id: string;
  /** The device whose session asked for the token (deleting the device deletes the token). */
  device_id: string;
  created_ts: number;
  expires_ts: number;
}

export async function insertLoginToken(q: Knex, row: LoginTokenRow): Promise<void> {
  await q('login_tokens').insert(row);
}

/** The token with this hash, expired or not, or null. */
export async function findLoginToken(q: Knex, tokenHash: string): Promise<LoginTokenRow | null> {
  const r = await q('login_tokens').where({ token_hash: tokenHash }).first();
  if (!r) return null;
  return {
    token_hash: r.token_hash as string,
    user_id: r.user_id as string,
    device_id: r.device_id as string,
    created_ts: Number(r.created_ts),
    expires_ts: Number(r.expires_ts),
  };
}

/**
 * Spends a token: true only for the one request whose DELETE removes it while
 * it is still valid (`now < expires_ts`), so parallel uses cannot both succeed.
 */
export async function spendLoginToken(q: Knex, tokenHash: string, now: number): Promise<boolean> {
  return (await q('login_tokens').where({ token_hash: tokenHash }).andWhere('expires_ts', '>', now).delete()) > 0;
}

/** Deletes tokens that expired at or before `now`; returns how many. */
export async function deleteExpiredLoginTokens(q: Knex, now: number): Promise<number> {
  return q('login_tokens').where('expires_ts', '<=', now).delete();
}
