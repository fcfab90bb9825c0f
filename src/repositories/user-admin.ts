// SQL for the user admin API: accounts with their profile and last activity,
// the filtered and ordered account list, and the facts only admins change
// (the admin flag, erasure, reactivation, an admin's profile edits).

import type { Knex } from 'knex';
import type { Restriction } from './users.js';

/** An account as the admin API shows it: the users row, its profile, and when a device of it was last seen. */
export interface AccountRow {
  user_id: string;
  localpart: string;
  has_password: boolean;
  is_admin: boolean;
  is_guest: boolean;
  deactivated: boolean;
  erased: boolean;
  approved: boolean;
  lock: Restriction | null;
  suspension: Restriction | null;
  user_type: string | null;
  /** Milliseconds since the epoch. */
  created_ts: number;
  displayname: string | null;
  avatar_url: string | null;
  /** Milliseconds since the epoch; null when no device of the account was ever seen. */
  last_seen_ts: number | null;
}

const num = (v: unknown) => (v == null ? null : Number(v));

function restriction(on: unknown, reason: unknown, until: unknown): Restriction | null {
  return on ? { reason: (reason as string | null) ?? null, until: num(until) } : null;
}

function toAccount(r: Record<string, unknown>): AccountRow {
  return {
    user_id: r.user_id as string,
    localpart: r.localpart as string,
    has_password: r.password_hash != null,
    is_admin: !!r.is_admin,
    is_guest: !!r.is_guest,
    deactivated: !!r.deactivated,
    erased: !!r.erased,
    approved: r.approved == null ? true : !!r.approved,
    lock: restriction(r.locked, r.lock_reason, r.locked_until),
    suspension: restriction(r.suspended, r.suspension_reason, r.suspended_until),
    user_type: (r.user_type as string | null) ?? null,
    created_ts: Number(r.created_ts),
    displayname: (r.displayname as string | null) ?? null,
    avatar_url: (r.avatar_url as string | null) ?? null,
    last_seen_ts: num(r.last_seen_ts),
  };
}

/** users LEFT JOIN profiles, with the latest last_seen_ts of the account's devices. */
function accounts(q: Knex) {
  const lastSeen = q('devices').max('last_seen_ts').where('devices.user_id', q.ref('users.user_id'));
  return q('users')
    .leftJoin('profiles', 'profiles.user_id', 'users.user_id')
    .select(
      'users.user_id',
      'users.localpart',
      'users.password_hash',
      'users.is_admin',
      'users.is_guest',
      'users.deactivated',
      'users.erased',
      'users.approved',
      'users.locked',
      'users.lock_reason',
      'users.locked_until',
      'users.suspended',
      'users.suspension_reason',
      'users.suspended_until',
      'users.user_type',
      'users.created_ts',
      'profiles.displayname',
      'profiles.avatar_url',
      lastSeen.as('last_seen_ts'),
    );
}

export async function findAccount(q: Knex, userId: string): Promise<AccountRow | null> {
  const r = await accounts(q).where('users.user_id', userId).first();
  return r ? toAccount(r) : null;
}

/** What the account list may be narrowed to (Synapse's GET /_synapse/admin/v2/users parameters). */
export interface AccountFilter {
  /** Part of the user ID (case-insensitive for ASCII). */
  userIdContains: string | null;
  /** Part of the localpart or of the display name (case-insensitive for ASCII). */
  nameContains: string | null;
  includeGuests: boolean;
  includeDeactivated: boolean;
  /** Include accounts whose lock is in force at `now`. */
  includeLocked: boolean;
  /** true: only admins; false: no admins; null: both. */
  admins: boolean | null;
  /** Only accounts waiting for approval. */
  onlyAwaitingApproval: boolean;
  /** Leave out these user types; "" leaves out accounts without a type. */
  excludeUserTypes: string[];
  now: number;
}

/** The columns the list can be ordered by (Synapse's `order_by` values). */
export const ACCOUNT_ORDERS = [
  'name',
  'displayname',
  'is_guest',
  'admin',
  'deactivated',
  'user_type',
  'avatar_url',
  'shadow_banned',
  'creation_ts',
  'last_seen_ts',
  'locked',
] as const;
export type AccountOrder = (typeof ACCOUNT_ORDERS)[number];

const ORDER_COLUMNS: Record<AccountOrder, string | null> = {
  name: null,
  displayname: 'profiles.displayname',
  is_guest: 'users.is_guest',
  admin: 'users.is_admin',
  deactivated: 'users.deactivated',
  user_type: 'users.user_type',
  avatar_url: 'profiles.avatar_url',
  // Nobody is shadow-banned here: the order is the user IDs'.
  shadow_banned: null,
  creation_ts: 'users.created_ts',
  last_seen_ts: 'last_seen_ts',
  locked: 'users.locked',
};

/** `text` as a LIKE pattern matching it anywhere, its wildcards taken literally (ESCAPE '\'). */
const containing = (text: string) => `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function filtered(q: Knex, f: AccountFilter) {
  let query = accounts(q);
  if (f.nameContains !== null) {
    const p = containing(f.nameContains);
    query = query.where((w) => w.whereRaw("lower(users.localpart) LIKE ? ESCAPE '\\'", [p]).orWhereRaw("lower(profiles.displayname) LIKE ? ESCAPE '\\'", [p]));
  } else if (f.userIdContains !== null) {
    query = query.whereRaw("lower(users.user_id) LIKE ? ESCAPE '\\'", [containing(f.userIdContains)]);
  }
  if (!f.includeGuests) query = query.where('users.is_guest', false);
  if (!f.includeDeactivated) query = query.where('users.deactivated', false);
  // A lock whose end time has passed no longer counts.
  if (!f.includeLocked) query = query.where((w) => w.where('users.locked', false).orWhere('users.locked_until', '<=', f.now));
  if (f.admins !== null) query = query.where('users.is_admin', f.admins);
  if (f.onlyAwaitingApproval) query = query.where('users.approved', false);
  for (const type of f.excludeUserTypes) {
    query = type === '' ? query.whereNotNull('users.user_type') : query.where((w) => w.whereNull('users.user_type').orWhereNot('users.user_type', type));
  }
  return query;
}

/**
 * One page of the filtered accounts, and how many match in all. Ties (and
 * `name`) are ordered by user ID, so pages are stable. NULLs sort as the
 * largest values on both databases (PostgreSQL's default).
 */
export async function listAccounts(
  q: Knex,
  filter: AccountFilter,
  order: { by: AccountOrder; backwards: boolean },
  offset: number,
  limit: number,
): Promise<{ rows: AccountRow[]; total: number }> {
  const dir = order.backwards ? 'DESC' : 'ASC';
  const nulls = order.backwards ? 'NULLS FIRST' : 'NULLS LAST';
  const column = ORDER_COLUMNS[order.by];
  let page = filtered(q, filter);
  if (column !== null) page = page.orderByRaw(`?? ${dir} ${nulls}`, [column]);
  page = page.orderBy('users.user_id', order.by === 'name' || order.by === 'shadow_banned' ? (order.backwards ? 'desc' : 'asc') : 'asc');
  const rows = limit === 0 ? [] : await page.offset(offset).limit(limit);
  const counted = await q.from(filtered(q, filter).as('matching')).count<{ n: number | string }[]>({ n: '*' }).first();
  return { rows: rows.map(toAccount), total: Number(counted?.n ?? 0) };
}

/** Sets or clears the server-admin flag. False when there is no such user. */
export async function setAdmin(q: Knex, userId: string, admin: boolean): Promise<boolean> {
  return (await q('users').where({ user_id: userId }).update({ is_admin: admin })) > 0;
}

/** Marks a (deactivated) account as erased: its profile was cleared at deactivation. */
export async function markErased(q: Knex, userId: string): Promise<void> {
  await q('users').where({ user_id: userId }).update({ erased: true });
}

/** Reactivates a deactivated account (no longer erased either); its password stays unset until one is given. */
export async function markActive(q: Knex, userId: string): Promise<void> {
  await q('users').where({ user_id: userId }).update({ deactivated: false, erased: false });
}

/** Sets the display name and/or avatar URL (undefined leaves one as it is; null clears it). */
export async function setProfile(q: Knex, userId: string, profile: { displayname?: string | null; avatar_url?: string | null }): Promise<void> {
  const changes: Record<string, string | null> = {};
  if (profile.displayname !== undefined) changes.displayname = profile.displayname;
  if (profile.avatar_url !== undefined) changes.avatar_url = profile.avatar_url;
  if (Object.keys(changes).length === 0) return;
  // Every account has a profile row (made with the account); an older one without gets one here.
  await q('profiles')
    .insert({ user_id: userId, displayname: null, avatar_url: null, ...changes })
    .onConflict('user_id')
    .merge(changes);
}

/**
 * Records a newer validation of an address the user has already (its
 * added_at stays): what adding an address one has again does (as Synapse's
 * upsert). Here rather than in threepids.ts: a change only the management
 * endpoints and admins make.
 */
export async function refreshThreepidValidation(q: Knex, userId: string, medium: string, address: string, validatedAt: number): Promise<void> {
  await q('user_threepids').where({ user_id: userId, medium, address }).update({ validated_at: validatedAt });
}
