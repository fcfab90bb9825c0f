// Another account's devices and connections, for server admins: Synapse's
// admin API for a user's devices (/_synapse/admin/v2/users/{userId}/devices),
// whois (also the spec's GET /_matrix/client/v3/admin/whois/{userId}, which a
// user may call about themselves), and the rooms a user is in (none: Gatehouse
// has no rooms yet; synadm's `user deactivate` asks).

import type { Knex } from 'knex';
import { forbidden, notFound } from '../../errors.js';
import * as Devices from '../../repositories/devices.js';
import * as Users from '../../repositories/users.js';
import type { Requester, SessionHandler } from '../sessions.js';
import { localUserId } from './users.js';

/** A device as Synapse's admin API shows it (every key present, null when unknown). */
export interface AdminDeviceView {
  device_id: string;
  display_name: string | null;
  last_seen_ip: string | null;
  last_seen_user_agent: string | null;
  /** Milliseconds since the epoch. */
  last_seen_ts: number | null;
  user_id: string;
}

/** One address and client a device was last seen from (spec: ConnectionInfo). */
export interface Connection {
  ip: string;
  /** Milliseconds since the epoch. */
  last_seen: number | null;
  user_agent: string | null;
}

/** Spec: GET /admin/whois/{userId}. Keys of `devices` are device IDs here, "" in Synapse's admin API (one entry with every connection). */
export interface Whois {
  user_id: string;
  devices: Record<string, { sessions: { connections: Connection[] }[] }>;
}

function view(d: Devices.DeviceRow): AdminDeviceView {
  return {
    device_id: d.device_id,
    display_name: d.display_name,
    last_seen_ip: d.last_seen_ip,
    last_seen_user_agent: d.last_seen_user_agent,
    last_seen_ts: d.last_seen_ts,
    user_id: d.user_id,
  };
}

/** A device's last connection; none when it was never seen from an address (e.g. the CLI's). */
function connectionsOf(d: Devices.DeviceRow): Connection[] {
  return d.last_seen_ip === null ? [] : [{ ip: d.last_seen_ip, last_seen: d.last_seen_ts, user_agent: d.last_seen_user_agent }];
}

export class UserSessionsAdminHandler {
  constructor(
    private readonly db: Knex,
    private readonly serverName: string,
    private readonly sessions: SessionHandler,
  ) {}

  /** The local account named, or 400 M_INVALID_PARAM (not a local user ID) / 404 M_NOT_FOUND. */
  private async account(userId: string): Promise<string> {
    if (!(await Users.findUser(this.db, localUserId(userId, this.serverName)))) throw notFound('Unknown user');
    return userId;
  }

  /** GET /_synapse/admin/v2/users/{userId}/devices: `{devices, total}`, oldest first; `dehydrated` is always false (no dehydrated devices). */
  async devices(userId: string): Promise<{ devices: (AdminDeviceView & { dehydrated: boolean })[]; total: number }> {
    const devices = await Devices.listDevices(this.db, await this.account(userId));
    return { devices: devices.map((d) => ({ ...view(d), dehydrated: false })), total: devices.length };
  }

  /** GET /_synapse/admin/v2/users/{userId}/devices/{deviceId}. 404 M_NOT_FOUND for an unknown user or device. */
  async device(userId: string, deviceId: string): Promise<AdminDeviceView> {
    const d = await Devices.findDevice(this.db, await this.account(userId), deviceId);
    if (!d) throw notFound('No device found');
    return view(d);
  }

  /** DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}: the device and its tokens go; `{}` also when it was gone (as Synapse). */
  async deleteDevice(userId: string, deviceId: string): Promise<Record<string, never>> {
    const user = await this.account(userId);
    await this.db.transaction((trx) => this.sessions.endSessions(trx, user, [deviceId]));
    return {};
  }

  /**
   * GET /_synapse/admin/v1/whois/{userId}, as Synapse: `devices` holds one
   * entry, "", with one session holding every connection (each address and
   * client a device was last seen from, latest first).
   */
  async whoisForAdmins(userId: string): Promise<Whois> {
    const devices = await Devices.listDevices(this.db, await this.account(userId));
    const byClient = new Map<string, Connection>();
    for (const c of devices.flatMap(connectionsOf)) {
      const key = JSON.stringify([c.ip, c.user_agent]);
      const seen = byClient.get(key);
      if (!seen || (c.last_seen ?? 0) > (seen.last_seen ?? 0)) byClient.set(key, c);
    }
    const connections = [...byClient.values()].sort((a, b) => (b.last_seen ?? 0) - (a.last_seen ?? 0));
    return { user_id: userId, devices: { '': { sessions: [{ connections }] } } };
  }

  /**
   * GET /_matrix/client/v3/admin/whois/{userId} (spec: "Server administration"):
   * for a server admin, or the user about themselves (else 403 M_FORBIDDEN,
   * before anything is looked up). `devices` is keyed by device ID, each with
   * one session and its last connection (none if never seen from an address).
   */
  async whois(requester: Requester, userId: string): Promise<Whois> {
    if (userId !== requester.userId && !requester.isAdmin) throw forbidden('You are not a server admin');
    const devices = await Devices.listDevices(this.db, await this.account(userId));
    return { user_id: userId, devices: Object.fromEntries(devices.map((d) => [d.device_id, { sessions: [{ connections: connectionsOf(d) }] }])) };
  }

  /**
   * GET /_synapse/admin/v1/users/{userId}/joined_rooms: none (Gatehouse has no
   * rooms yet). As Synapse, an unknown local user is in no rooms rather than
   * 404 (synadm's `user deactivate` reads `total` before finding out).
   * 400 M_INVALID_PARAM for what is not a local user ID.
   */
  joinedRooms(userId: string): { joined_rooms: string[]; total: number } {
    localUserId(userId, this.serverName);
    return { joined_rooms: [], total: 0 };
  }
}
