// Server-side key backup (spec: Client-Server API, "Server-side key backups":
// /room_keys/version and /room_keys/keys). Each user has versions; the newest
// is the current one, the only one keys may be written to. Versions are
// opaque strings to clients; here they are the row's number.

import type { Knex } from 'knex';
import { badJson, invalidParam, MatrixError, missingParam, notFound } from '../errors.js';
import { boundedCanonicalJson } from './bounded-json.js';
import * as Backup from '../repositories/key-backup.js';
import type { Requester } from './sessions.js';

type Json = Record<string, unknown>;

/** Bounds: auth_data and one session's data, and the sessions one request may write. */
export const BACKUP_LIMITS = { authDataBytes: 64 * 1024, sessionDataBytes: 64 * 1024, sessionsPerRequest: 10_000, idLength: 255 };

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);


/** The version info GET /room_keys/version answers. */
export interface BackupVersionInfo {
  algorithm: string;
  auth_data: unknown;
  count: number;
  etag: string;
  version: string;
}

/** A session's backed-up key (spec: KeyBackupData). */
export interface KeyBackupData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: unknown;
}

/** A path's or query's version: a positive number; anything else names no version (404). */
function versionId(version: string | undefined | null): number | null {
  if (version === undefined || version === null || !/^[1-9]\d{0,14}$/.test(version)) return null;
  return Number(version);
}

const unknownVersion = () => notFound('Unknown backup version');

function checkKeyData(v: unknown, what: string): Omit<Backup.BackupKeyRow, 'room_id' | 'session_id'> {
  if (!isObject(v)) throw badJson(`${what} must be an object`);
  const { first_message_index: fmi, forwarded_count: fc, is_verified: iv, session_data: sd } = v;
  if (fmi === undefined || fc === undefined || iv === undefined || sd === undefined)
    throw missingParam(`${what} needs first_message_index, forwarded_count, is_verified and session_data`);
  if (!Number.isSafeInteger(fmi) || (fmi as number) < 0) throw badJson(`${what}.first_message_index must be a non-negative integer`);
  if (!Number.isSafeInteger(fc) || (fc as number) < 0) throw badJson(`${what}.forwarded_count must be a non-negative integer`);
  if (typeof iv !== 'boolean') throw badJson(`${what}.is_verified must be a boolean`);
  if (!isObject(sd)) throw badJson(`${what}.session_data must be an object`);
  return {
    first_message_index: fmi as number,
    forwarded_count: fc as number,
    is_verified: iv,
    session_data: boundedCanonicalJson(sd, `${what}.session_data`, BACKUP_LIMITS.sessionDataBytes),
  };
}

function checkId(id: string, what: string): string {
  if (id.length === 0 || id.length > BACKUP_LIMITS.idLength || id.includes('\u0000')) throw invalidParam(`${what} must be 1 to 255 characters`);
  return id;
}

/**
 * Whether `candidate` should replace `current` (spec: "Storing keys"): a verified key beats an
 * unverified one; then the lower first_message_index; then the lower forwarded_count.
 */
export function isBetterKey(candidate: Pick<KeyBackupData, 'first_message_index' | 'forwarded_count' | 'is_verified'>, current: typeof candidate | null): boolean {
  if (!current) return true;
  if (candidate.is_verified !== current.is_verified) return candidate.is_verified;
  if (candidate.first_message_index !== current.first_message_index) return candidate.first_message_index < current.first_message_index;
  return candidate.forwarded_count < current.forwarded_count;
}

const keyView = (k: Backup.BackupKeyRow): KeyBackupData => ({
  first_message_index: k.first_message_index,
  forwarded_count: k.forwarded_count,
  is_verified: k.is_verified,
  session_data: JSON.parse(k.session_data) as unknown,
});

export class KeyBackupHandler {
  constructor(private readonly db: Knex) {}

  /** POST /room_keys/version: `{algorithm, auth_data}` → `{version}`; the new version becomes the current one. */
  async createVersion(requester: Requester, body: Json): Promise<{ version: string }> {
    const { algorithm, authData } = this.checkVersionBody(body);
    const id = await Backup.createVersion(this.db, requester.userId, algorithm, authData);
    return { version: String(id) };
  }

  /** GET /room_keys/version[/{version}]: the current (or the named) version; 404 M_NOT_FOUND when there is none. */
  async getVersion(requester: Requester, version: string | null): Promise<BackupVersionInfo> {
    let row: Backup.BackupVersionRow | null;
    if (version === null) row = await Backup.latestVersion(this.db, requester.userId);
    else {
      const id = versionId(version);
      row = id === null ? null : await Backup.findVersion(this.db, requester.userId, id);
    }
    // js-sdk reads 404 M_NOT_FOUND as "no backup"; anything else is an error to it.
    if (!row) throw notFound('No current backup version');
    return {
      algorithm: row.algorithm,
      auth_data: JSON.parse(row.auth_data) as unknown,
      count: await Backup.countKeys(this.db, row.id),
      etag: String(row.etag),
      version: String(row.id),
    };
  }

  /**
   * PUT /room_keys/version/{version}: `{algorithm, auth_data, version?}` → {}; only auth_data
   * changes. 400 M_INVALID_PARAM when `version` differs from the path's or the algorithm from the
   * stored one (as Synapse); 404 M_NOT_FOUND for an unknown version.
   */
  async updateVersion(requester: Requester, version: string, body: Json): Promise<Record<string, never>> {
    const { algorithm, authData } = this.checkVersionBody(body);
    if (body.version !== undefined && body.version !== version) throw invalidParam('version does not match the path');
    const id = versionId(version);
    const row = id === null ? null : await Backup.findVersion(this.db, requester.userId, id);
    if (!row) throw unknownVersion();
    if (row.algorithm !== algorithm) throw invalidParam('algorithm cannot be changed');
    await Backup.updateVersionAuthData(this.db, row.id, authData);
    return {};
  }

  /** DELETE /room_keys/version/{version} → {}: the version and its keys go; 404 M_NOT_FOUND for an unknown one. */
  async deleteVersion(requester: Requester, version: string): Promise<Record<string, never>> {
    const id = versionId(version);
    if (id === null || !(await Backup.deleteVersion(this.db, requester.userId, id))) throw unknownVersion();
    return {};
  }

  private checkVersionBody(body: Json): { algorithm: string; authData: string } {
    if (body.algorithm === undefined || body.auth_data === undefined) throw missingParam('algorithm and auth_data are required');
    if (typeof body.algorithm !== 'string' || body.algorithm.length === 0 || body.algorithm.length > 255 || body.algorithm.includes('\u0000'))
      throw badJson('algorithm must be a string of 1 to 255 characters');
    if (!isObject(body.auth_data)) throw badJson('auth_data must be an object');
    return { algorithm: body.algorithm, authData: boundedCanonicalJson(body.auth_data, 'auth_data', BACKUP_LIMITS.authDataBytes) };
  }

  /**
   * PUT /room_keys/keys[/{roomId}[/{sessionId}]]?version=: stores keys in the current version,
   * keeping the better of old and new for each session (`isBetterKey`) → `{etag, count}`.
   * `body` is `{rooms: {roomId: {sessions: {...}}}}`, `{sessions: {...}}` or one KeyBackupData by level.
   * Errors: 400 M_MISSING_PARAM (no version), 404 M_NOT_FOUND (unknown version), 403
   * M_WRONG_ROOM_KEYS_VERSION with `current_version` (not the current one), 400 M_BAD_JSON / M_TOO_LARGE.
   */
  async putKeys(requester: Requester, version: string | null, roomId: string | null, sessionId: string | null, body: Json) {
    if (version === null) throw missingParam('Missing parameter: version');
    const keys: Backup.BackupKeyRow[] = [];
    const addSessions = (room: string, sessions: unknown) => {
      if (!isObject(sessions)) throw badJson('sessions must be an object');
      for (const [sid, data] of Object.entries(sessions)) {
        if (keys.length >= BACKUP_LIMITS.sessionsPerRequest) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many sessions in one request');
        keys.push({ room_id: room, session_id: checkId(sid, 'session_id'), ...checkKeyData(data, `sessions.${sid.slice(0, 80)}`) });
      }
    };
    if (roomId !== null && sessionId !== null) keys.push({ room_id: checkId(roomId, 'roomId'), session_id: checkId(sessionId, 'sessionId'), ...checkKeyData(body, 'body') });
    else if (roomId !== null) {
      checkId(roomId, 'roomId');
      addSessions(roomId, body.sessions);
    } else {
      if (!isObject(body.rooms)) throw badJson('rooms must be an object');
      for (const [room, value] of Object.entries(body.rooms)) {
        if (!isObject(value)) throw badJson('rooms: each room must be an object');
        addSessions(checkId(room, 'room ID'), value.sessions);
      }
    }

    const id = versionId(version);
    return this.db.transaction(async (trx) => {
      const row = id === null ? null : await Backup.findVersion(trx, requester.userId, id, true);
      if (!row) throw unknownVersion();
      const current = await Backup.latestVersion(trx, requester.userId);
      if (current && current.id !== row.id)
        throw new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version.', { current_version: String(current.id) });
      let changed = false;
      for (const k of keys) {
        const [old] = await Backup.listKeys(trx, row.id, k.room_id, k.session_id);
        if (!isBetterKey(k, old ?? null)) continue;
        await Backup.putKey(trx, row.id, k);
        changed = true;
      }
      if (changed) await Backup.bumpEtag(trx, row.id);
      return { etag: String(row.etag + (changed ? 1 : 0)), count: await Backup.countKeys(trx, row.id) };
    });
  }

  /**
   * GET /room_keys/keys[/{roomId}[/{sessionId}]]?version= (any of the user's versions):
   * `{rooms: {roomId: {sessions}}}`, `{sessions}` (empty when the room has none, as Synapse) or
   * one KeyBackupData (404 M_NOT_FOUND when absent). 400 M_MISSING_PARAM without version; 404 for an unknown one.
   */
  async getKeys(requester: Requester, version: string | null, roomId: string | null, sessionId: string | null) {
    const row = await this.versionOf(requester, version);
    const keys = await Backup.listKeys(this.db, row.id, roomId ?? undefined, sessionId ?? undefined);
    if (roomId !== null && sessionId !== null) {
      if (!keys[0]) throw notFound('No room_keys found');
      return keyView(keys[0]);
    }
    const sessionsOf = (list: Backup.BackupKeyRow[]) => Object.fromEntries(list.map((k) => [k.session_id, keyView(k)]));
    if (roomId !== null) return { sessions: sessionsOf(keys) };
    const rooms: Record<string, { sessions: Record<string, KeyBackupData> }> = {};
    for (const k of keys) (rooms[k.room_id] ??= { sessions: {} }).sessions[k.session_id] = keyView(k);
    return { rooms };
  }

  /** DELETE /room_keys/keys[/{roomId}[/{sessionId}]]?version= → `{etag, count}`. Errors as getKeys. */
  async deleteKeys(requester: Requester, version: string | null, roomId: string | null, sessionId: string | null) {
    if (version === null) throw missingParam('Missing parameter: version');
    const id = versionId(version);
    return this.db.transaction(async (trx) => {
      const row = id === null ? null : await Backup.findVersion(trx, requester.userId, id, true);
      if (!row) throw unknownVersion();
      const deleted = await Backup.deleteKeys(trx, row.id, roomId ?? undefined, sessionId ?? undefined);
      if (deleted) await Backup.bumpEtag(trx, row.id);
      return { etag: String(row.etag + (deleted ? 1 : 0)), count: await Backup.countKeys(trx, row.id) };
    });
  }

  private async versionOf(requester: Requester, version: string | null): Promise<Backup.BackupVersionRow> {
    if (version === null) throw missingParam('Missing parameter: version');
    const id = versionId(version);
    const row = id === null ? null : await Backup.findVersion(this.db, requester.userId, id);
    if (!row) throw unknownVersion();
    return row;
  }
}
