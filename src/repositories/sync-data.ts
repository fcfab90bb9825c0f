// SQL for what /sync delivers besides rooms (migrations/20261129090000_sync.ts):
// filters, account data, to-device messages and their transaction IDs, presence.

import type { Knex } from 'knex';

// ---- Filters ---------------------------------------------------------------

/** Stores a filter (already validated JSON); returns its ID. */
export async function insertFilter(q: Knex, userId: string, filterJson: string): Promise<string> {
  const rows = await q('sync_filters').insert({ user_id: userId, filter_json: filterJson }).returning('id');
  const row = rows[0] as { id: number } | number;
  return String(typeof row === 'object' ? row.id : row);
}

/** The filter's JSON, or null when `userId` has no filter `filterId`. */
export async function findFilter(q: Knex, userId: string, filterId: string): Promise<string | null> {
  if (!/^[0-9]{1,15}$/.test(filterId)) return null;
  const row = await q('sync_filters').where({ user_id: userId, id: Number(filterId) }).first('filter_json');
  return row ? (row.filter_json as string) : null;
}

// ---- Account data -----------------------------------------------------------

export interface AccountDataRow {
  room_id: string;
  type: string;
  content: string;
  stream_position: number | string;
}

/** Sets one account data entry (room '' = global) at `position`. */
export async function putAccountData(trx: Knex, userId: string, roomId: string, type: string, content: string, position: number): Promise<void> {
  await trx('account_data')
    .insert({ user_id: userId, room_id: roomId, type, content, stream_position: position })
    .onConflict(['user_id', 'room_id', 'type'])
    .merge(['content', 'stream_position']);
}

/** One entry's content JSON, or null. */
export async function getAccountData(q: Knex, userId: string, roomId: string, type: string): Promise<string | null> {
  const row = await q('account_data').where({ user_id: userId, room_id: roomId, type }).first('content');
  return row ? (row.content as string) : null;
}

/** Global entries changed after `since` (all when null) up to `upTo`, oldest change first. */
export async function globalAccountDataBetween(q: Knex, userId: string, since: number | null, upTo: number): Promise<AccountDataRow[]> {
  let query = q('account_data').where({ user_id: userId, room_id: '' }).where('stream_position', '<=', upTo);
  if (since !== null) query = query.where('stream_position', '>', since);
  return query.orderBy('stream_position').select('room_id', 'type', 'content', 'stream_position');
}

// ---- To-device -------------------------------------------------------------

export interface ToDeviceRow {
  stream_position: number | string;
  event_json: string;
}

/** Whether the sender's device already used this transaction ID (and records it if not). */
export async function claimToDeviceTxn(trx: Knex, userId: string, deviceId: string, txnId: string, now: number): Promise<boolean> {
  const seen = await trx('to_device_txns').where({ user_id: userId, device_id: deviceId, txn_id: txnId }).first('txn_id');
  if (seen) return false;
  await trx('to_device_txns').insert({ user_id: userId, device_id: deviceId, txn_id: txnId, created_ts: now });
  return true;
}

/** The user's device IDs among `deviceIds` (all of them when null). */
export async function existingDevices(q: Knex, userId: string, deviceIds: string[] | null): Promise<string[]> {
  let query = q('devices').where({ user_id: userId });
  if (deviceIds !== null) query = query.whereIn('device_id', deviceIds);
  return (await query.select('device_id')).map((r: { device_id: string }) => r.device_id);
}

export async function insertToDevice(trx: Knex, rows: { user_id: string; device_id: string; event_json: string }[], position: number): Promise<void> {
  for (let i = 0; i < rows.length; i += 200) await trx('to_device_messages').insert(rows.slice(i, i + 200).map((r) => ({ ...r, stream_position: position })));
}

/** Messages for the device after `since` up to `upTo`, oldest first, at most `limit`. */
export async function toDeviceBetween(q: Knex, userId: string, deviceId: string, since: number, upTo: number, limit: number): Promise<ToDeviceRow[]> {
  return q('to_device_messages')
    .where({ user_id: userId, device_id: deviceId })
    .where('stream_position', '>', since)
    .where('stream_position', '<=', upTo)
    .orderBy('id')
    .limit(limit)
    .select('stream_position', 'event_json');
}

/** Deletes the messages a device acknowledged by syncing with a token at or past them. */
export async function deleteToDeviceUpTo(q: Knex, userId: string, deviceId: string, upTo: number): Promise<void> {
  await q('to_device_messages').where({ user_id: userId, device_id: deviceId }).where('stream_position', '<=', upTo).delete();
}

/** Deletes pending messages of the given devices (all of the user's when null), except `keep`. */
export async function deleteToDeviceForDevices(q: Knex, userId: string, deviceIds: string[] | null, keep: string | null): Promise<void> {
  let query = q('to_device_messages').where({ user_id: userId });
  if (deviceIds !== null) query = query.whereIn('device_id', deviceIds);
  if (keep !== null) query = query.whereNot({ device_id: keep });
  await query.delete();
}

// ---- Presence --------------------------------------------------------------

export interface PresenceRow {
  state: string;
  status_msg: string | null;
  last_active_ts: number | string;
  stream_position: number | string;
}

export async function getPresence(q: Knex, userId: string): Promise<PresenceRow | null> {
  return ((await q('presence').where({ user_id: userId }).first('state', 'status_msg', 'last_active_ts', 'stream_position')) as PresenceRow | undefined) ?? null;
}

export async function putPresence(trx: Knex, userId: string, state: string, statusMsg: string | null | undefined, now: number, position: number): Promise<void> {
  const row: Record<string, unknown> = { user_id: userId, state, last_active_ts: now, stream_position: position };
  const merge = ['state', 'last_active_ts', 'stream_position'];
  // status_msg undefined keeps the current one (a sync's set_presence).
  if (statusMsg !== undefined) merge.push('status_msg');
  row.status_msg = statusMsg ?? null;
  await trx('presence').insert(row).onConflict('user_id').merge(merge);
}

/** Marks activity without a new position (no change a sync must deliver). */
export async function touchPresence(q: Knex, userId: string, now: number): Promise<void> {
  await q('presence').where({ user_id: userId }).update({ last_active_ts: now });
}

// ---- Deactivation -----------------------------------------------------------

/** Everything of the user's kept here: filters, account data, pending messages, transaction IDs, presence. */
export async function deleteUserSyncData(trx: Knex, userId: string): Promise<void> {
  for (const table of ['sync_filters', 'account_data', 'to_device_messages', 'to_device_txns', 'presence']) await trx(table).where({ user_id: userId }).delete();
}
