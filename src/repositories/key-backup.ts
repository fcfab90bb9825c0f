// SQL for server-side room key backup (see migrations/20261129100000_e2e_keys.ts).

import type { Knex } from 'knex';
import { dialectOf } from '../db/database.js';

export interface BackupVersionRow {
  id: number;
  user_id: string;
  algorithm: string;
  auth_data: string;
  etag: number;
}

export interface BackupKeyRow {
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: string;
}

const toVersion = (r: Record<string, unknown> | undefined): BackupVersionRow | null =>
  r ? { id: Number(r.id), user_id: String(r.user_id), algorithm: String(r.algorithm), auth_data: String(r.auth_data), etag: Number(r.etag) } : null;

const toKey = (r: Record<string, unknown>): BackupKeyRow => ({
  room_id: String(r.room_id),
  session_id: String(r.session_id),
  first_message_index: Number(r.first_message_index),
  forwarded_count: Number(r.forwarded_count),
  is_verified: Boolean(r.is_verified),
  session_data: String(r.session_data),
});

export async function createVersion(q: Knex, userId: string, algorithm: string, authData: string): Promise<number> {
  const rows = await q('room_key_backup_versions').insert({ user_id: userId, algorithm, auth_data: authData, etag: 0 }).returning('id');
  const row = rows[0] as { id: number } | number;
  return Number(typeof row === 'object' ? row.id : row);
}

/** The user's newest version (the current one), or null. */
export async function latestVersion(q: Knex, userId: string): Promise<BackupVersionRow | null> {
  return toVersion(await q('room_key_backup_versions').where({ user_id: userId }).orderBy('id', 'desc').first());
}

/** One version of the user's; `lock` holds it (PostgreSQL) until the transaction ends, so key writes to it take turns. */
export async function findVersion(q: Knex, userId: string, id: number, lock = false): Promise<BackupVersionRow | null> {
  const query = q('room_key_backup_versions').where({ user_id: userId, id });
  if (lock && dialectOf(q) === 'postgres') query.forUpdate();
  return toVersion(await query.first());
}

export async function updateVersionAuthData(q: Knex, id: number, authData: string): Promise<void> {
  await q('room_key_backup_versions').where({ id }).update({ auth_data: authData });
}

export async function bumpEtag(q: Knex, id: number): Promise<void> {
  await q('room_key_backup_versions').where({ id }).increment('etag', 1);
}

/** Deletes the version and (cascade) its keys; false if there was none. */
export async function deleteVersion(q: Knex, userId: string, id: number): Promise<boolean> {
  return (await q('room_key_backup_versions').where({ user_id: userId, id }).del()) > 0;
}

export async function countKeys(q: Knex, versionId: number): Promise<number> {
  const row = await q('room_key_backup_keys').where({ version_id: versionId }).count({ n: '*' }).first();
  return Number((row as { n: number | string } | undefined)?.n ?? 0);
}

/** Keys of a version, of one room or one session when given. */
export async function listKeys(q: Knex, versionId: number, roomId?: string, sessionId?: string): Promise<BackupKeyRow[]> {
  const query = q('room_key_backup_keys').where({ version_id: versionId });
  if (roomId !== undefined) query.where({ room_id: roomId });
  if (sessionId !== undefined) query.where({ session_id: sessionId });
  return (await query.select('*')).map(toKey);
}

export async function putKey(q: Knex, versionId: number, key: BackupKeyRow): Promise<void> {
  await q('room_key_backup_keys')
    .insert({ version_id: versionId, ...key })
    .onConflict(['version_id', 'room_id', 'session_id'])
    .merge(['first_message_index', 'forwarded_count', 'is_verified', 'session_data']);
}

export async function deleteKeys(q: Knex, versionId: number, roomId?: string, sessionId?: string): Promise<number> {
  const query = q('room_key_backup_keys').where({ version_id: versionId });
  if (roomId !== undefined) query.where({ room_id: roomId });
  if (sessionId !== undefined) query.where({ session_id: sessionId });
  return query.del();
}

/** Deletes every key backup of a deactivated user (the versions' keys go with them). As Synapse. */
export async function deleteUserBackups(q: Knex, userId: string): Promise<void> {
  await q('room_key_backup_versions').where({ user_id: userId }).delete();
}
