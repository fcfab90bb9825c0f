// SQL for profiles: display name and avatar (`profiles`), custom fields
// (`profile_fields`, MSC4133), and the user directory's search over them.

import type { Knex } from 'knex';

/** A whole profile as stored: null = not set. Custom fields by name, values parsed from JSON. */
export interface StoredProfile {
  displayname: string | null;
  avatar_url: string | null;
  fields: Record<string, unknown>;
}

/** The user's profile (an empty one when the user has no `profiles` row). */
export async function readProfile(q: Knex, userId: string): Promise<StoredProfile> {
  const row = await q('profiles').where({ user_id: userId }).first('displayname', 'avatar_url');
  const fields: Record<string, unknown> = {};
  for (const f of await q('profile_fields').where({ user_id: userId }).orderBy('field_name').select('field_name', 'value_json'))
    fields[f.field_name as string] = JSON.parse(f.value_json as string);
  return { displayname: row?.displayname ?? null, avatar_url: row?.avatar_url ?? null, fields };
}

/** Sets (or with null clears) the display name or the avatar URL. */
export async function setProfileColumn(q: Knex, userId: string, column: 'displayname' | 'avatar_url', value: string | null): Promise<void> {
  // Every account gets its row at creation; the upsert covers accounts made before that held.
  await q('profiles')
    .insert({ user_id: userId, displayname: null, avatar_url: null, [column]: value })
    .onConflict('user_id')
    .merge([column]);
}

/** Sets a custom field to a JSON value (null included: it is stored, MSC4133). */
export async function setField(q: Knex, userId: string, name: string, value: unknown): Promise<void> {
  await q('profile_fields')
    .insert({ user_id: userId, field_name: name, value_json: JSON.stringify(value) })
    .onConflict(['user_id', 'field_name'])
    .merge(['value_json']);
}

/** Removes a custom field; nothing happens when it is not set. */
export async function deleteField(q: Knex, userId: string, name: string): Promise<void> {
  await q('profile_fields').where({ user_id: userId, field_name: name }).delete();
}

/**
 * Erases the whole profile: display name, avatar and every custom field
 * (deactivation with erasure; MSC4133 asks for profiles to be cleared then).
 * The `profiles` row stays, empty. Run it in the deactivating transaction.
 */
export async function eraseProfile(q: Knex, userId: string): Promise<void> {
  await q('profile_fields').where({ user_id: userId }).delete();
  await q('profiles').where({ user_id: userId }).update({ displayname: null, avatar_url: null });
}

/** One user directory result. */
export interface DirectoryEntry {
  user_id: string;
  displayname: string | null;
  avatar_url: string | null;
}

export interface DirectoryQuery {
  /** Lower-cased words, each of which must occur in the localpart or the display name (at most ~10). */
  words: string[];
  /** The same words as typed (matched case-sensitively too, for letters SQLite's lower() leaves alone). */
  typed: string[];
  /** The whole search, lower-cased: an equal display name ranks first. */
  whole: string;
  /** Left out of the results (the searcher). */
  excludeUserId: string;
  /** Include accounts whose lock is in force at `now`. */
  includeLocked: boolean;
  now: number;
  /** Rows to return at most. */
  limit: number;
}

/** LIKE's wildcards and the escape character itself, escaped with `!` (ESCAPE '!' works alike on SQLite and PostgreSQL). */
const likeEscape = (s: string) => s.replace(/[!%_]/g, (c) => `!${c}`);

/**
 * Local users matching every word (substring, in the localpart or the display
 * name), best first: an exact localpart or display name, then one starting
 * with the first word, then the rest; then those with a display name, those
 * with an avatar, and by user ID. Leaves out deactivated accounts, guests,
 * accounts awaiting approval, support users (as Synapse), and locked accounts
 * unless `includeLocked`. Case is ignored for ASCII letters on both databases
 * (PostgreSQL's lower() folds others too, as its locale says).
 */
export async function searchDirectory(q: Knex, query: DirectoryQuery): Promise<DirectoryEntry[]> {
  const builder = q('users as u')
    .leftJoin('profiles as p', 'p.user_id', 'u.user_id')
    .where('u.deactivated', false)
    .where('u.is_guest', false)
    .where('u.approved', true)
    .whereNot('u.user_id', query.excludeUserId)
    .where((w) => w.whereNull('u.user_type').orWhereNot('u.user_type', 'support'));
  if (!query.includeLocked)
    builder.where((w) => w.where('u.locked', false).orWhere((x) => x.whereNotNull('u.locked_until').where('u.locked_until', '<=', query.now)));
  query.words.forEach((word, i) => {
    const lower = `%${likeEscape(word)}%`;
    const typed = `%${likeEscape(query.typed[i] ?? word)}%`;
    builder.where((w) =>
      w
        .whereRaw("lower(u.localpart) LIKE ? ESCAPE '!'", [lower])
        .orWhereRaw("u.localpart LIKE ? ESCAPE '!'", [typed])
        .orWhereRaw("lower(p.displayname) LIKE ? ESCAPE '!'", [lower])
        .orWhereRaw("p.displayname LIKE ? ESCAPE '!'", [typed]),
    );
  });
  const first = query.words[0] ?? '';
  const prefix = `${likeEscape(first)}%`;
  const rows = await builder
    .orderByRaw(
      "CASE WHEN lower(u.localpart) = ? OR lower(p.displayname) = ? THEN 0 " +
        "WHEN lower(u.localpart) LIKE ? ESCAPE '!' OR lower(p.displayname) LIKE ? ESCAPE '!' THEN 1 ELSE 2 END",
      [first, query.whole, prefix, prefix],
    )
    .orderByRaw('CASE WHEN p.displayname IS NULL THEN 1 ELSE 0 END')
    .orderByRaw('CASE WHEN p.avatar_url IS NULL THEN 1 ELSE 0 END')
    .orderBy('u.user_id')
    .limit(query.limit)
    .select('u.user_id', 'p.displayname', 'p.avatar_url');
  return rows.map((r: Record<string, unknown>) => ({
    user_id: r.user_id as string,
    displayname: (r.displayname as string | null) ?? null,
    avatar_url: (r.avatar_url as string | null) ?? null,
  }));
}
