// SQL for third-party identifiers: addresses bound to accounts, and the
// validation sessions (with their hashed tokens) that prove control of one.

import type { Knex } from 'knex';

export type ValidationPurpose = 'registration' | 'add_threepid' | 'password_reset';

export interface ThreepidRow {
  user_id: string;
  medium: string;
  address: string;
  validated_at: number;
  added_at: number;
}

export interface ValidationSessionRow {
  session_id: string;
  purpose: ValidationPurpose;
  medium: string;
  address: string;
  client_secret: string;
  last_send_attempt: number;
  next_link: string | null;
  created_ts: number;
  expires_ts: number;
  validated_ts: number | null;
  consumed_ts: number | null;
  failed_attempts: number;
  /** Never sends, never validates: the stand-in answer of an inhibited refusal (request_token_inhibit_3pid_errors). */
  decoy: boolean;
}

const toThreepid = (r: Record<string, unknown>): ThreepidRow => ({
  user_id: r.user_id as string,
  medium: r.medium as string,
  address: r.address as string,
  validated_at: Number(r.validated_at),
  added_at: Number(r.added_at),
});

const nullableNumber = (v: unknown) => (v === null || v === undefined ? null : Number(v));

const toSession = (r: Record<string, unknown>): ValidationSessionRow => ({
  session_id: r.session_id as string,
  purpose: r.purpose as ValidationPurpose,
  medium: r.medium as string,
  address: r.address as string,
  client_secret: r.client_secret as string,
  last_send_attempt: Number(r.last_send_attempt),
  next_link: (r.next_link as string | null) ?? null,
  created_ts: Number(r.created_ts),
  expires_ts: Number(r.expires_ts),
  validated_ts: nullableNumber(r.validated_ts),
  consumed_ts: nullableNumber(r.consumed_ts),
  failed_attempts: Number(r.failed_attempts),
  decoy: r.decoy === true || r.decoy === 1,
});

// ---- Bound addresses -------------------------------------------------------

/** The account an address is bound to, or null. */
export async function findUserIdByThreepid(q: Knex, medium: string, address: string): Promise<string | null> {
  const r = await q('user_threepids').where({ medium, address }).first('user_id');
  return r ? (r.user_id as string) : null;
}

/** The user's addresses, oldest first. */
export async function listThreepids(q: Knex, userId: string): Promise<ThreepidRow[]> {
  const rows = await q('user_threepids').where({ user_id: userId }).orderBy([{ column: 'added_at' }, { column: 'address' }]);
  return rows.map(toThreepid);
}

/**
 * Binds an address to a user. False when the address is bound already (to
 * anyone: the primary key holds it to one account, so parallel binds of one
 * address cannot both succeed).
 */
export async function insertThreepid(q: Knex, row: ThreepidRow): Promise<boolean> {
  const inserted = await q('user_threepids').insert(row).onConflict(['medium', 'address']).ignore().returning('user_id');
  return inserted.length > 0;
}

/** Unbinds an address from this user; false when the user had no such address. */
export async function deleteThreepid(q: Knex, userId: string, medium: string, address: string): Promise<boolean> {
  return (await q('user_threepids').where({ user_id: userId, medium, address }).delete()) > 0;
}

/** Unbinds every address of the user (deactivation); returns how many. */
export async function deleteUserThreepids(q: Knex, userId: string): Promise<number> {
  return q('user_threepids').where({ user_id: userId }).delete();
}

// ---- Validation sessions ----------------------------------------------------

/** The session requestToken continues: same purpose, medium, address and client secret. */
export async function findSessionByRequest(
  q: Knex,
  key: { purpose: ValidationPurpose; medium: string; address: string; client_secret: string },
): Promise<ValidationSessionRow | null> {
  const r = await q('threepid_validation_sessions').where(key).first();
  return r ? toSession(r) : null;
}

export async function findSession(q: Knex, sessionId: string): Promise<ValidationSessionRow | null> {
  const r = await q('threepid_validation_sessions').where({ session_id: sessionId }).first();
  return r ? toSession(r) : null;
}

/** Inserts a session; false when one with the same request key exists (a parallel requestToken made it first). */
export async function insertSession(q: Knex, row: ValidationSessionRow): Promise<boolean> {
  const inserted = await q('threepid_validation_sessions')
    .insert(row)
    .onConflict(['purpose', 'medium', 'address', 'client_secret'])
    .ignore()
    .returning('session_id');
  return inserted.length > 0;
}

/**
 * Records a new send attempt, only when it is higher than the last one seen
 * (so that of parallel requests with one send_attempt exactly one sends),
 * extends the session's life to `expiresTs` unless it is validated, and gives
 * the new mail's token a fresh count of wrong tries.
 */
export async function claimSendAttempt(q: Knex, sessionId: string, sendAttempt: number, expiresTs: number): Promise<boolean> {
  const n = await q('threepid_validation_sessions')
    .where({ session_id: sessionId })
    .andWhere('last_send_attempt', '<', sendAttempt)
    .update({ last_send_attempt: sendAttempt, failed_attempts: 0, expires_ts: q.raw('CASE WHEN validated_ts IS NULL THEN ? ELSE expires_ts END', [expiresTs]) });
  return n > 0;
}

/** Gives a send attempt back after the mail could not be sent, so that the client's retry sends. */
export async function releaseSendAttempt(q: Knex, sessionId: string, sendAttempt: number, previous: number): Promise<void> {
  await q('threepid_validation_sessions').where({ session_id: sessionId, last_send_attempt: sendAttempt }).update({ last_send_attempt: previous });
}

/** Makes a decoy session a live one (its address may be used now). */
export async function clearDecoy(q: Knex, sessionId: string): Promise<void> {
  await q('threepid_validation_sessions').where({ session_id: sessionId }).update({ decoy: false });
}

export async function deleteSession(q: Knex, sessionId: string): Promise<void> {
  await q('threepid_validation_sessions').where({ session_id: sessionId }).delete();
}

export async function insertToken(q: Knex, row: { token_hash: string; session_id: string; expires_ts: number }): Promise<void> {
  await q('threepid_validation_tokens').insert(row);
}

export async function deleteToken(q: Knex, tokenHash: string): Promise<void> {
  await q('threepid_validation_tokens').where({ token_hash: tokenHash }).delete();
}

/** The expiry of this session's token with this hash, or null when the session has no such token. */
export async function findTokenExpiry(q: Knex, sessionId: string, tokenHash: string): Promise<number | null> {
  const r = await q('threepid_validation_tokens').where({ session_id: sessionId, token_hash: tokenHash }).first('expires_ts');
  return r ? Number(r.expires_ts) : null;
}

/** Counts a wrong token; returns the session's count of wrong tokens after this one. */
export async function countFailedAttempt(q: Knex, sessionId: string): Promise<number> {
  await q('threepid_validation_sessions').where({ session_id: sessionId }).increment('failed_attempts', 1);
  const r = await q('threepid_validation_sessions').where({ session_id: sessionId }).first('failed_attempts');
  return r ? Number(r.failed_attempts) : 0;
}

/**
 * Marks the session validated (once); a validated session may be used until
 * `expiresTs`. Its tokens stay, so that submitting one again answers as the
 * first time did. False when it was validated already.
 */
export async function markValidated(q: Knex, sessionId: string, now: number, expiresTs: number): Promise<boolean> {
  const n = await q('threepid_validation_sessions')
    .where({ session_id: sessionId })
    .whereNull('validated_ts')
    .update({ validated_ts: now, expires_ts: expiresTs });
  return n > 0;
}

/**
 * Uses a validated session for its operation: true only for the one caller
 * that marks it (validated, not used, not expired), so a validation authorises
 * one registration, one address added or one password reset.
 */
export async function consumeSession(q: Knex, sessionId: string, now: number): Promise<boolean> {
  const n = await q('threepid_validation_sessions')
    .where({ session_id: sessionId })
    .whereNotNull('validated_ts')
    .whereNull('consumed_ts')
    .andWhere('expires_ts', '>', now)
    .update({ consumed_ts: now });
  return n > 0;
}

/** Deletes sessions (and their tokens) that expired at or before `now`; returns how many. */
export async function deleteExpiredSessions(q: Knex, now: number): Promise<number> {
  const ids = (await q('threepid_validation_sessions').where('expires_ts', '<=', now).limit(500).pluck('session_id')) as string[];
  if (ids.length === 0) return 0;
  await q('threepid_validation_tokens').whereIn('session_id', ids).delete();
  return q('threepid_validation_sessions').whereIn('session_id', ids).delete();
}
