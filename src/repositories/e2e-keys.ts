// SQL for end-to-end encryption keys (see migrations/20261129100000_e2e_keys.ts).
// Key objects are stored as canonical JSON text and handed back parsed.

import type { Knex } from 'knex';
import { dialectOf } from '../db/database.js';

export type CrossSigningKeyType = 'master' | 'self_signing' | 'user_signing';

// ---- device keys ----------------------------------------------------------

export async function findDeviceKeysJson(q: Knex, userId: string, deviceId: string): Promise<string | null> {
  const row = await q('e2e_device_keys').where({ user_id: userId, device_id: deviceId }).first('key_json');
  return row ? (row.key_json as string) : null;
}

export async function putDeviceKeys(q: Knex, userId: string, deviceId: string, keyJson: string): Promise<void> {
  await q('e2e_device_keys')
    .insert({ user_id: userId, device_id: deviceId, key_json: keyJson })
    .onConflict(['user_id', 'device_id'])
    .merge(['key_json']);
}

/** Devices of `userId` (all when `deviceIds` is empty) with their keys and display names. */
export async function listDeviceKeys(
  q: Knex,
  userId: string,
  deviceIds: string[],
): Promise<{ device_id: string; key_json: string; display_name: string | null }[]> {
  const query = q('e2e_device_keys as k')
    .join('devices as d', function () {
      this.on('d.user_id', '=', 'k.user_id').andOn('d.device_id', '=', 'k.device_id');
    })
    .where('k.user_id', userId)
    .select('k.device_id', 'k.key_json', 'd.display_name');
  if (deviceIds.length) query.whereIn('k.device_id', deviceIds);
  return query;
}

// ---- one-time and fallback keys -------------------------------------------

export async function findOneTimeKeyJson(q: Knex, userId: string, deviceId: string, algorithm: string, keyId: string): Promise<string | null> {
  const row = await q('e2e_one_time_keys').where({ user_id: userId, device_id: deviceId, algorithm, key_id: keyId }).first('key_json');
  return row ? (row.key_json as string) : null;
}

export async function insertOneTimeKeys(
  q: Knex,
  userId: string,
  deviceId: string,
  keys: { algorithm: string; key_id: string; key_json: string }[],
): Promise<void> {
  if (keys.length === 0) return;
  await q('e2e_one_time_keys').insert(keys.map((k) => ({ user_id: userId, device_id: deviceId, ...k })));
}

/** Unclaimed one-time keys of the device, by algorithm. */
export async function countOneTimeKeys(q: Knex, userId: string, deviceId: string): Promise<Record<string, number>> {
  const rows = await q('e2e_one_time_keys').where({ user_id: userId, device_id: deviceId }).groupBy('algorithm').select('algorithm').count({ n: '*' });
  return Object.fromEntries((rows as { algorithm: string; n: number | string }[]).map((r) => [r.algorithm, Number(r.n)]));
}

/**
 * Takes one one-time key of the device for `algorithm` (the oldest), or null.
 * One conditional DELETE ... RETURNING picks and removes the row, so two
 * parallel claims never get the same key (PostgreSQL skips a row another
 * claim holds; SQLite runs one writer at a time).
 */
export async function claimOneTimeKey(q: Knex, userId: string, deviceId: string, algorithm: string): Promise<{ key_id: string; key_json: string } | null> {
  type Row = { key_id: string; key_json: string };
  if (dialectOf(q) === 'postgres') {
    const pick = q('e2e_one_time_keys').where({ user_id: userId, device_id: deviceId, algorithm }).orderBy('id').limit(1).select('id').forUpdate().skipLocked();
    const rows = (await q('e2e_one_time_keys').whereIn('id', pick).del().returning(['key_id', 'key_json'])) as Row[];
    return rows[0] ?? null;
  }
  // knex drops RETURNING from a SQLite DELETE, so the statement is written out.
  const rows = (await q.raw(
    'DELETE FROM e2e_one_time_keys WHERE id = (SELECT id FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY id LIMIT 1) RETURNING key_id, key_json',
    [userId, deviceId, algorithm],
  )) as Row[];
  return rows[0] ?? null;
}

export async function findFallbackKey(
  q: Knex,
  userId: string,
  deviceId: string,
  algorithm: string,
): Promise<{ key_id: string; key_json: string; used: boolean } | null> {
  const row = await q('e2e_fallback_keys').where({ user_id: userId, device_id: deviceId, algorithm }).first('key_id', 'key_json', 'used');
  return row ? { key_id: row.key_id, key_json: row.key_json, used: Boolean(row.used) } : null;
}

/** Sets the device's fallback key for the algorithm; `used` starts false unless it is the very same key. */
export async function putFallbackKey(q: Knex, userId: string, deviceId: string, algorithm: string, keyId: string, keyJson: string): Promise<void> {
  const old = await findFallbackKey(q, userId, deviceId, algorithm);
  if (old && old.key_id === keyId && old.key_json === keyJson) return;
  await q('e2e_fallback_keys')
    .insert({ user_id: userId, device_id: deviceId, algorithm, key_id: keyId, key_json: keyJson, used: false })
    .onConflict(['user_id', 'device_id', 'algorithm'])
    .merge(['key_id', 'key_json', 'used']);
}

/** Hands out the fallback key (it stays, marked used), or null. */
export async function claimFallbackKey(q: Knex, userId: string, deviceId: string, algorithm: string): Promise<{ key_id: string; key_json: string } | null> {
  const rows = (await q('e2e_fallback_keys')
    .where({ user_id: userId, device_id: deviceId, algorithm })
    .update({ used: true })
    .returning(['key_id', 'key_json'])) as { key_id: string; key_json: string }[];
  return rows[0] ?? null;
}

/** The algorithms of the device's fallback keys that no claim has used yet. */
export async function unusedFallbackKeyTypes(q: Knex, userId: string, deviceId: string): Promise<string[]> {
  const rows = await q('e2e_fallback_keys').where({ user_id: userId, device_id: deviceId, used: false }).orderBy('algorithm').select('algorithm');
  return (rows as { algorithm: string }[]).map((r) => r.algorithm);
}

// ---- cross-signing keys and signatures --------------------------------------

export interface CrossSigningKeyRow {
  key_type: CrossSigningKeyType;
  public_key: string;
  key_json: string;
}

export async function crossSigningKeys(q: Knex, userId: string): Promise<Partial<Record<CrossSigningKeyType, CrossSigningKeyRow>>> {
  const rows = (await q('e2e_cross_signing_keys').where({ user_id: userId }).select('key_type', 'public_key', 'key_json')) as CrossSigningKeyRow[];
  return Object.fromEntries(rows.map((r) => [r.key_type, r]));
}

export async function putCrossSigningKey(q: Knex, userId: string, type: CrossSigningKeyType, publicKey: string, keyJson: string): Promise<void> {
  await q('e2e_cross_signing_keys')
    .insert({ user_id: userId, key_type: type, public_key: publicKey, key_json: keyJson })
    .onConflict(['user_id', 'key_type'])
    .merge(['public_key', 'key_json']);
}

export interface SignatureRow {
  signer_user_id: string;
  signer_key_id: string;
  target_user_id: string;
  target_key_id: string;
  signature: string;
}

export async function putSignatures(q: Knex, rows: SignatureRow[]): Promise<void> {
  for (const r of rows)
    await q('e2e_signatures')
      .insert(r)
      .onConflict(['target_user_id', 'target_key_id', 'signer_user_id', 'signer_key_id'])
      .merge(['signature']);
}

/** Signatures stored for the targets (`target_key_id`: a device ID or a cross-signing public key) of one user. */
export async function signaturesFor(q: Knex, targetUserId: string, targetKeyIds: string[]): Promise<SignatureRow[]> {
  if (targetKeyIds.length === 0) return [];
  return q('e2e_signatures').where('target_user_id', targetUserId).whereIn('target_key_id', targetKeyIds).select('*');
}

/** Forgets every signature of a target (its key was replaced: they signed the old one). */
export async function deleteSignaturesOf(q: Knex, targetUserId: string, targetKeyId: string): Promise<void> {
  await q('e2e_signatures').where({ target_user_id: targetUserId, target_key_id: targetKeyId }).del();
}

/**
 * Deletes a deactivated user's cross-signing keys and the signatures made by
 * or on them (device keys go with the devices). As Synapse.
 */
export async function deleteUserCrossSigning(q: Knex, userId: string): Promise<void> {
  await q('e2e_signatures').where({ signer_user_id: userId }).orWhere({ target_user_id: userId }).delete();
  await q('e2e_cross_signing_keys').where({ user_id: userId }).delete();
}
