// The areas /sync delivers besides rooms and keys: filters (spec "Filtering"),
// account data ("Client Config"), send-to-device messaging, and presence.
// Every write takes its stream position inside its transaction and notifies
// the user after the commit, which wakes their waiting syncs.

import type { Knex } from 'knex';
import { parseUserId } from '../domain/user-ids.js';
import { badJson, forbidden, invalidParam, MatrixError, missingParam, notFound } from '../errors.js';
import { nextPosition } from '../repositories/streams.js';
import * as SyncData from '../repositories/sync-data.js';
import * as Users from '../repositories/users.js';
import { type Filter, validateFilter } from '../sync/filter.js';
import type { Notifier } from '../sync/notifier.js';
import type { Requester } from './sessions.js';

/** Longest event type, room ID and transaction ID kept (the columns' size; as Synapse's 255-byte limit on IDs). */
const MAX_ID = 255;

function checkId(value: string, what: string): void {
  if (value.length === 0 || value.length > MAX_ID) throw invalidParam(`${what} must be 1 to ${MAX_ID} characters`);
}

/** `{userId}` of a path: 400 M_INVALID_PARAM when it is not a user ID; 403 M_FORBIDDEN when it is not the requester. */
function ownUser(requester: Requester, userId: string, what: string): void {
  if (!parseUserId(userId)) throw invalidParam('Invalid user ID');
  if (userId !== requester.userId) throw forbidden(`Cannot ${what} for other users`);
}

/** Filters: POST /user/{userId}/filter, GET /user/{userId}/filter/{filterId}. */
export class FilterHandler {
  constructor(private readonly db: Knex) {}

  /** Stores a validated filter; `{filter_id}`. 400 M_BAD_JSON for an invalid filter, 403 for another user's. */
  async create(requester: Requester, userId: string, body: Record<string, unknown>): Promise<{ filter_id: string }> {
    ownUser(requester, userId, 'create filters');
    const filter = validateFilter(body);
    return { filter_id: await SyncData.insertFilter(this.db, userId, JSON.stringify(filter)) };
  }

  /** The stored filter; 403 for another user's (as Synapse), 404 M_NOT_FOUND for an unknown ID. */
  async get(requester: Requester, userId: string, filterId: string): Promise<Filter> {
    ownUser(requester, userId, 'get filters');
    const json = await SyncData.findFilter(this.db, userId, filterId);
    if (json === null) throw notFound('No such filter');
    return JSON.parse(json) as Filter;
  }

  /**
   * The `filter` parameter of /sync: inline JSON when it starts with `{`
   * (400 M_BAD_JSON when invalid), otherwise a filter ID of the requester's
   * (404 M_NOT_FOUND when unknown, as Synapse).
   */
  async resolve(requester: Requester, param: string | null): Promise<Filter> {
    if (param === null || param === '') return {};
    if (param.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(param);
      } catch {
        throw badJson('The filter is not valid JSON');
      }
      return validateFilter(parsed);
    }
    return this.get(requester, requester.userId, param);
  }
}

/** Account data: GET/PUT /user/{userId}/account_data/{type} and /user/{userId}/rooms/{roomId}/account_data/{type}. */
export class AccountDataHandler {
  constructor(
    private readonly db: Knex,
    private readonly notifier: Notifier,
  ) {}

  /**
   * Sets an entry (`roomId` null: global). 403 for another user; 405 M_BAD_JSON
   * for the types the server controls (spec: `m.push_rules` globally,
   * `m.fully_read` in a room); 400 M_INVALID_PARAM for a malformed room ID.
   * Rooms: Gatehouse has none yet, so any well-formed room ID is accepted
   * (as Synapse, which does not check membership here).
   */
  async put(requester: Requester, userId: string, roomId: string | null, type: string, content: Record<string, unknown>): Promise<Record<string, never>> {
    ownUser(requester, userId, 'add account data');
    this.checkPath(roomId, type);
    if (roomId === null && type === 'm.push_rules') throw new MatrixError(405, 'M_BAD_JSON', 'Push rules are set through the push rules API');
    if (roomId !== null && type === 'm.fully_read') throw new MatrixError(405, 'M_BAD_JSON', 'm.fully_read is set through the read markers API');
    const json = JSON.stringify(content);
    await this.db.transaction(async (trx) => {
      const position = await nextPosition(trx, 'account_data');
      await SyncData.putAccountData(trx, userId, roomId ?? '', type, json, position);
    });
    this.notifier.notify([userId]);
    return {};
  }

  /** An entry's content; 403 for another user, 404 M_NOT_FOUND when none is set. */
  async get(requester: Requester, userId: string, roomId: string | null, type: string): Promise<Record<string, unknown>> {
    ownUser(requester, userId, 'get account data');
    this.checkPath(roomId, type);
    const json = await SyncData.getAccountData(this.db, userId, roomId ?? '', type);
    if (json === null) throw notFound('No account data of this type');
    return JSON.parse(json) as Record<string, unknown>;
  }

  private checkPath(roomId: string | null, type: string): void {
    checkId(type, 'The account data type');
    if (roomId !== null && (!/^![^:]*:.+/.test(roomId) || roomId.length > MAX_ID)) throw invalidParam(`${roomId} is not a valid room ID`);
  }
}

/** PUT /sendToDevice/{eventType}/{txnId}. */
export class ToDeviceHandler {
  constructor(
    private readonly db: Knex,
    private readonly serverName: string,
    private readonly notifier: Notifier,
  ) {}

  /**
   * Queues `content` for each named device (`*`: every device the user has
   * now), once per (sender device, txnId): a repeated transaction ID sends
   * nothing again and answers {} (spec: idempotent). Unknown local users and
   * devices are skipped (as Synapse). Remote users are skipped: Gatehouse has
   * no federation yet. 400 M_BAD_JSON for a `messages` that is not
   * {user: {device: object}}.
   */
  async send(requester: Requester, eventType: string, txnId: string, body: Record<string, unknown>): Promise<Record<string, never>> {
    checkId(eventType, 'The event type');
    checkId(txnId, 'The transaction ID');
    const messages = body.messages;
    if (messages === undefined || messages === null) throw missingParam('Missing parameter: messages');
    if (typeof messages !== 'object' || Array.isArray(messages)) throw badJson('messages must be an object');
    const targets: [string, string, Record<string, unknown>][] = [];
    for (const [userId, devices] of Object.entries(messages as Record<string, unknown>)) {
      if (typeof devices !== 'object' || devices === null || Array.isArray(devices)) throw badJson('messages must map user IDs to objects');
      for (const [deviceId, content] of Object.entries(devices as Record<string, unknown>)) {
        if (typeof content !== 'object' || content === null || Array.isArray(content)) throw badJson('Each message must be a JSON object');
        targets.push([userId, deviceId, content as Record<string, unknown>]);
      }
    }
    const recipients = new Set<string>();
    await this.db.transaction(async (trx) => {
      if (!(await SyncData.claimToDeviceTxn(trx, requester.userId, requester.deviceId, txnId, Date.now()))) return;
      const rows: { user_id: string; device_id: string; event_json: string }[] = [];
      const byUser = new Map<string, [string, Record<string, unknown>][]>();
      for (const [userId, deviceId, content] of targets) {
        if (parseUserId(userId)?.serverName !== this.serverName) continue;
        byUser.set(userId, [...(byUser.get(userId) ?? []), [deviceId, content]]);
      }
      for (const [userId, list] of byUser) {
        const user = await Users.findUser(trx, userId);
        if (!user || user.deactivated) continue;
        const wildcard = list.some(([d]) => d === '*');
        const existing = new Set(await SyncData.existingDevices(trx, userId, wildcard ? null : list.map(([d]) => d)));
        const perDevice = new Map<string, Record<string, unknown>>();
        // A named device's own message wins over the wildcard's for that device.
        for (const [deviceId, content] of list) if (deviceId === '*') for (const d of existing) perDevice.set(d, content);
        for (const [deviceId, content] of list) if (deviceId !== '*' && existing.has(deviceId)) perDevice.set(deviceId, content);
        for (const [deviceId, content] of perDevice) {
          rows.push({ user_id: userId, device_id: deviceId, event_json: JSON.stringify({ type: eventType, sender: requester.userId, content }) });
          recipients.add(userId);
        }
      }
      if (rows.length) await SyncData.insertToDevice(trx, rows, await nextPosition(trx, 'to_device'));
    });
    this.notifier.notify([...recipients]);
    return {};
  }
}

export const PRESENCE_STATES = ['online', 'offline', 'unavailable'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

/** Within this long of the last activity, an online user is `currently_active` (as Synapse's one minute). */
const CURRENTLY_ACTIVE_MS = 60_000;

/** The content of an m.presence event from a stored row (spec: m.presence). */
export function presenceContent(row: SyncData.PresenceRow | null, now = Date.now()): Record<string, unknown> {
  if (!row) return { presence: 'offline' };
  const ago = Math.max(0, now - Number(row.last_active_ts));
  const out: Record<string, unknown> = { presence: row.state, last_active_ago: ago, currently_active: row.state === 'online' && ago < CURRENTLY_ACTIVE_MS };
  if (row.status_msg !== null) out.status_msg = row.status_msg;
  return out;
}

/** GET/PUT /presence/{userId}/status, and /sync's set_presence. */
export class PresenceHandler {
  constructor(
    private readonly db: Knex,
    private readonly notifier: Notifier,
  ) {}

  /**
   * Sets the requester's presence: 403 for another user; 400 M_INVALID_PARAM
   * for an unknown state, M_MISSING_PARAM without one, M_BAD_JSON for a
   * status_msg that is not a string.
   */
  async put(requester: Requester, userId: string, body: Record<string, unknown>): Promise<Record<string, never>> {
    ownUser(requester, userId, 'set presence');
    const state = body.presence;
    if (state === undefined || state === null) throw missingParam('Missing parameter: presence');
    if (typeof state !== 'string' || !(PRESENCE_STATES as readonly string[]).includes(state)) throw invalidParam('presence must be online, offline or unavailable');
    const statusMsg = body.status_msg;
    if (statusMsg !== undefined && statusMsg !== null && typeof statusMsg !== 'string') throw badJson('status_msg must be a string');
    await this.write(userId, state, (statusMsg as string | null | undefined) ?? null);
    return {};
  }

  /**
   * A user's presence. Gatehouse shows presence only to the user themself
   * until rooms exist (as Synapse: only users who share a room see it): 403
   * M_FORBIDDEN for anyone else; "offline" for a user who never set any.
   */
  async get(requester: Requester, userId: string): Promise<Record<string, unknown>> {
    if (!parseUserId(userId)) throw invalidParam('Invalid user ID');
    if (userId !== requester.userId) throw forbidden('You are not allowed to see their presence');
    return presenceContent(await SyncData.getPresence(this.db, userId));
  }

  /**
   * /sync's `set_presence`: online (the default) and unavailable set the
   * state when it differs; offline leaves it alone (spec: not marked online).
   */
  async onSync(userId: string, setPresence: PresenceState): Promise<void> {
    if (setPresence === 'offline') return;
    const row = await SyncData.getPresence(this.db, userId);
    if (row?.state === setPresence) {
      if (Date.now() - Number(row.last_active_ts) > CURRENTLY_ACTIVE_MS / 2) await SyncData.touchPresence(this.db, userId, Date.now());
      return;
    }
    await this.write(userId, setPresence, undefined);
  }

  private async write(userId: string, state: string, statusMsg: string | null | undefined): Promise<void> {
    await this.db.transaction(async (trx) => {
      await SyncData.putPresence(trx, userId, state, statusMsg, Date.now(), await nextPosition(trx, 'presence'));
    });
    this.notifier.notify([userId]);
  }
}
