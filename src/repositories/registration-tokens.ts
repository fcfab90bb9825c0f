// SQL for registration tokens (MSC3231): the tokens, the one pending use each
// UIA session may hold, and the trail of accounts each token registered.
// Every check-and-count is one conditional statement whose affected-row count
// is the answer, so parallel requests (and processes) cannot overspend a token.

import type { Knex } from 'knex';

const TOKENS = 'registration_tokens';
const RESERVATIONS = 'registration_token_reservations';
const USES = 'registration_token_uses';

export interface RegistrationTokenRow {
  token: string;
  /** null = unlimited; 0 = used up. */
  uses_allowed: number | null;
  pending: number;
  completed: number;
  /** Milliseconds since the epoch; null = never. */
  expiry_time: number | null;
  note: string | null;
  created_ts: number;
}

const num = (v: unknown) => (v == null ? null : Number(v));

export function toToken(r: Record<string, unknown>): RegistrationTokenRow {
  return {
    token: r.token as string,
    uses_allowed: num(r.uses_allowed),
    pending: Number(r.pending),
    completed: Number(r.completed),
    expiry_time: num(r.expiry_time),
    note: (r.note as string | null) ?? null,
    created_ts: Number(r.created_ts),
  };
}

/** Restricts a query to tokens that can still be used at `now` (not expired, uses left). */
export function whereValid(q: Knex.QueryBuilder, now: number): Knex.QueryBuilder {
  return q
    .where((w) => w.whereNull('expiry_time').orWhere('expiry_time', '>', now))
    .where((w) => w.whereNull('uses_allowed').orWhereRaw('pending + completed < uses_allowed'));
}

/** Inserts a token; false when one with that name exists already. */
export async function insertToken(q: Knex, row: RegistrationTokenRow): Promise<boolean> {
  const inserted = await q(TOKENS).insert(row).onConflict('token').ignore().returning('token');
  return inserted.length > 0;
}

export async function findToken(q: Knex, token: string): Promise<RegistrationTokenRow | null> {
  const r = await q(TOKENS).where({ token }).first();
  return r ? toToken(r) : null;
}

/** Whether `token` exists and can still be used at `now`. */
export async function isTokenValid(q: Knex, token: string, now: number): Promise<boolean> {
  const r = await whereValid(q(TOKENS).where({ token }), now).first('token');
  return r !== undefined;
}

export type Reservation = 'reserved' | 'held' | 'other' | 'invalid';

/**
 * Reserves one pending use of `token` for the UIA session: 'reserved' (a use
 * taken now), 'held' (the session holds this token already: nothing more is
 * taken), 'other' (the session holds another token), 'invalid' (no such
 * token, expired or used up; nothing taken). The count and the session's
 * reservation change together or not at all.
 */
export async function reserveTokenUse(db: Knex, sessionId: string, token: string, now: number): Promise<Reservation> {
  try {
    return await db.transaction(async (trx): Promise<Reservation> => {
      // The write comes first: it takes the row lock (PostgreSQL) or the write lock (SQLite)
      // before anything is read, so parallel reservations queue instead of racing.
      const taken = await whereValid(trx(TOKENS).where({ token }), now).update({ pending: trx.raw('pending + 1') });
      if (taken === 0) throw new NotReserved();
      const inserted = await trx(RESERVATIONS).insert({ session_id: sessionId, token }).onConflict('session_id').ignore().returning('session_id');
      // The session holds a use already (this token or another): give this one back.
      if (inserted.length === 0) throw new NotReserved();
      return 'reserved';
    });
  } catch (err) {
    if (!(err instanceof NotReserved)) throw err;
    const held = await db(RESERVATIONS).where({ session_id: sessionId }).first('token');
    if (!held) return 'invalid';
    return held.token === token ? 'held' : 'other';
  }
}

/** Rolls a reservation back: nothing was taken (or what was taken is given back). */
class NotReserved extends Error {}

/**
 * Turns the session's pending use into a completed one for `userId` and
 * records it in the trail. False when the session holds no use any more (the
 * token was deleted meanwhile).
 */
export async function completeTokenUse(trx: Knex, sessionId: string, userId: string, now: number): Promise<boolean> {
  const held = await trx(RESERVATIONS).where({ session_id: sessionId }).first('token');
  if (!held) return false;
  await trx(RESERVATIONS).where({ session_id: sessionId }).delete();
  const n = await trx(TOKENS)
    .where({ token: held.token })
    .where('pending', '>', 0)
    .update({ pending: trx.raw('pending - 1'), completed: trx.raw('completed + 1') });
  if (n === 0) return false;
  await trx(USES).insert({ token: held.token, user_id: userId, used_ts: now });
  return true;
}

/** Gives back the pending use the session holds, if any (its session expired unused). */
export async function releaseTokenUse(trx: Knex, sessionId: string): Promise<void> {
  const held = await trx(RESERVATIONS).where({ session_id: sessionId }).first('token');
  if (!held) return;
  await trx(RESERVATIONS).where({ session_id: sessionId }).delete();
  await trx(TOKENS).where({ token: held.token }).where('pending', '>', 0).update({ pending: trx.raw('pending - 1') });
}

// ---------------------------------------------------------------------------
// The admin API's queries.
// ---------------------------------------------------------------------------

/** Restricts a query to tokens that cannot be used at `now` (expired, or every use completed or pending). */
export function whereInvalid(q: Knex.QueryBuilder, now: number): Knex.QueryBuilder {
  return q.where((w) => w.where('expiry_time', '<=', now).orWhere((u) => u.whereNotNull('uses_allowed').whereRaw('pending + completed >= uses_allowed')));
}

export interface TokenListQuery {
  /** true: only valid tokens at `now`; false: only invalid ones; null: all. */
  valid: boolean | null;
  now: number;
  offset: number;
  limit: number;
}

/** Up to `limit` tokens from `offset`, oldest first (creation time, then name, so pages are stable). */
export async function listTokens(q: Knex, query: TokenListQuery): Promise<RegistrationTokenRow[]> {
  let sql = q(TOKENS).select('*');
  if (query.valid === true) sql = whereValid(sql, query.now);
  if (query.valid === false) sql = whereInvalid(sql, query.now);
  const rows = await sql.orderBy([{ column: 'created_ts' }, { column: 'token' }]).offset(query.offset).limit(query.limit);
  return rows.map(toToken);
}

/** The columns an admin may change; an absent key is left as it is. */
export type TokenChanges = Partial<Pick<RegistrationTokenRow, 'uses_allowed' | 'expiry_time' | 'note'>>;

/** Applies `changes` (at least one key) and returns the token as it is now; null when there is no such token. */
export async function updateToken(q: Knex, token: string, changes: TokenChanges): Promise<RegistrationTokenRow | null> {
  const rows = await q(TOKENS).where({ token }).update(changes).returning('*');
  return rows.length > 0 ? toToken(rows[0] as Record<string, unknown>) : null;
}

/**
 * Deletes a token; false when there was none. The sessions holding a use of
 * it lose their reservation (ON DELETE CASCADE); its trail of uses stays.
 */
export async function deleteToken(q: Knex, token: string): Promise<boolean> {
  return (await q(TOKENS).where({ token }).delete()) > 0;
}

export interface TokenUse {
  user_id: string;
  /** Milliseconds since the epoch. */
  used_ts: number;
}

/** The accounts registered with `token` at or after `since` (ms), oldest first. */
export async function listTokenUses(q: Knex, token: string, since: number): Promise<TokenUse[]> {
  const rows = await q(USES).where({ token }).where('used_ts', '>=', since).orderBy([{ column: 'used_ts' }, { column: 'id' }]).select('user_id', 'used_ts');
  return rows.map((r: Record<string, unknown>) => ({ user_id: r.user_id as string, used_ts: Number(r.used_ts) }));
}
