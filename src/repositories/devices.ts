// SQL for devices.

import type { Knex } from 'knex';
import { dialectOf, isPreparedTx, type Runner, runAll } from '../db/database.js';

export interface DeviceRow {
  user_id: string;
  device_id: string;
  display_name: string | null;
  created_ts: number;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
  last_seen_user_agent: string | null;
}

function toDevice(r: Record<string, unknown>): DeviceRow {
  return {
    user_id: r.user_id as string,
    device_id: r.device_id as string,
    display_name: (r.display_name as string | null) ?? null,
    created_ts: Number(r.created_ts),
    last_seen_ts: r.last_seen_ts == null ? null : Number(r.last_seen_ts),
    last_seen_ip: (r.last_seen_ip as string | null) ?? null,
    last_seen_user_agent: (r.last_seen_user_agent as string | null) ?? null,
  };
}

export async function listDevices(q: Knex, userId: string): Promise<DeviceRow[]> {
  return (await q('devices').where({ user_id: userId }).orderBy('created_ts')).map(toDevice);
}

export async function findDevice(q: Knex, userId: string, deviceId: string): Promise<DeviceRow | null> {
  const r = await q('devices').where({ user_id: userId, device_id: deviceId }).first();
  return r ? toDevice(r) : null;
}

/**
 * Creates the device, or keeps an existing one: its name stays (the spec
 * ignores initial_device_display_name for a known device), last-seen updates.
 */
export async function upsertDevice(
  q: Knex,
  d: { user_id: string; device_id: string; display_name: string | null; ip: string | null; user_agent: string | null },
  now: number,
): Promise<void> {
  const row = {
    user_id: d.user_id,
    device_id: d.device_id,
    display_name: d.display_name,
    created_ts: now,
    last_seen_ts: now,
    last_seen_ip: d.ip,
    last_seen_user_agent: d.user_agent,
  };
  await q('devices')
    .insert(row)
    .onConflict(['user_id', 'device_id'])
    .merge({ last_seen_ts: now, last_seen_ip: d.ip, last_seen_user_agent: d.user_agent });
}

/**
 * `upsertDevice` for a password sign-in whose user row was read before the
 * (slow) password check, done only while that row still has `passwordHash`
 * and lets the user sign in: not deactivated, approved, not locked (a lock
 * whose end has passed counts as locked here: the caller's slower path judges
 * it). One statement instead of a re-read and an upsert. The user's row is
 * locked until the transaction ends (PostgreSQL, as `Users.lockUser`; SQLite
 * serialises transactions). True when the device was written, false (nothing
 * written) otherwise. Runs on knex or on a prepared SQLite transaction.
 */
export async function upsertDeviceIfUserMaySignIn(
  q: Runner,
  d: { user_id: string; device_id: string; display_name: string | null; ip: string | null; user_agent: string | null },
  now: number,
  passwordHash: string,
): Promise<boolean> {
  // SQLite needs the SELECT's WHERE for an upsert on INSERT … SELECT (its parser would read ON as a join).
  const pg = !isPreparedTx(q) && dialectOf(q) === 'postgres';
  const rows = await runAll(
    q,
    pg ? UPSERT_DEVICE_IF_USER_MAY_SIGN_IN_SQL.postgres : UPSERT_DEVICE_IF_USER_MAY_SIGN_IN_SQL.sqlite,
    [d.device_id, d.display_name, now, now, d.ip, d.user_agent, d.user_id, passwordHash],
  );
  return rows.length > 0;
}

// Fixed texts: a prepared transaction keeps one statement per text.
const upsertDeviceIfUserMaySignInSql = (lock: string) =>
  `INSERT INTO devices (user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip, last_seen_user_agent)
     SELECT user_id, ?, ?, ?, ?, ?, ? FROM users
     WHERE user_id = ? AND password_hash = ? AND NOT deactivated AND approved AND NOT locked${lock}
     ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen_ts = excluded.last_seen_ts,
       last_seen_ip = excluded.last_seen_ip, last_seen_user_agent = excluded.last_seen_user_agent
     RETURNING device_id`;
const UPSERT_DEVICE_IF_USER_MAY_SIGN_IN_SQL = { sqlite: upsertDeviceIfUserMaySignInSql(''), postgres: upsertDeviceIfUserMaySignInSql(' FOR UPDATE') };

/** Locks the device row until the transaction ends (PostgreSQL; SQLite serialises transactions). False when it is gone. */
export async function lockDevice(q: Knex, userId: string, deviceId: string): Promise<boolean> {
  const row = await q('devices').where({ user_id: userId, device_id: deviceId }).forUpdate().first('device_id');
  return row !== undefined;
}

export async function setDeviceDisplayName(q: Knex, userId: string, deviceId: string, name: string | null): Promise<boolean> {
  const n = await q('devices').where({ user_id: userId, device_id: deviceId }).update({ display_name: name });
  return n > 0;
}

export async function touchDevice(q: Knex, userId: string, deviceId: string, now: number, ip: string | null, userAgent: string | null): Promise<void> {
  await q('devices')
    .where({ user_id: userId, device_id: deviceId })
    .update({ last_seen_ts: now, last_seen_ip: ip, last_seen_user_agent: userAgent });
}

/** Deletes the given devices (all of the user's when `deviceIds` is null), except `keep`. */
export async function deleteDevices(q: Knex, userId: string, deviceIds: string[] | null, keep: string | null = null): Promise<number> {
  let query = q('devices').where({ user_id: userId });
  if (deviceIds !== null) query = query.whereIn('device_id', deviceIds);
  if (keep !== null) query = query.whereNot({ device_id: keep });
  return query.delete();
}
