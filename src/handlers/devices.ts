// The signed-in user's devices.

import type { Knex } from 'knex';
import { notFound } from '../errors.js';
import * as Devices from '../repositories/devices.js';
import type { UiaEngine } from '../uia/engine.js';
import { REAUTH_FLOWS } from './account.js';
import type { Requester, SessionHandler } from './sessions.js';

/**
 * A device as GET /devices and /devices/{deviceId} show it (spec: "Device
 * management"). Every key is present, null when unknown, as Synapse sends
 * them: matrix-nio refuses a device without display_name or last_seen_ip.
 */
export interface DeviceView {
  device_id: string;
  display_name: string | null;
  last_seen_ip: string | null;
  /** Milliseconds since the epoch. */
  last_seen_ts: number | null;
}

function view(d: Devices.DeviceRow): DeviceView {
  return { device_id: d.device_id, display_name: d.display_name, last_seen_ip: d.last_seen_ip, last_seen_ts: d.last_seen_ts };
}

export class DeviceHandler {
  constructor(
    private readonly db: Knex,
    private readonly uia: UiaEngine,
    private readonly sessions: SessionHandler,
  ) {}

  async list(requester: Requester): Promise<{ devices: DeviceView[] }> {
    return { devices: (await Devices.listDevices(this.db, requester.userId)).map(view) };
  }

  async get(requester: Requester, deviceId: string): Promise<DeviceView> {
    const d = await Devices.findDevice(this.db, requester.userId, deviceId);
    if (!d) throw notFound('Device not found');
    return view(d);
  }

  /**
   * PUT /devices/{deviceId}: a string renames, null clears, undefined (absent)
   * leaves the name. 404 M_NOT_FOUND unless the device is the requester's.
   * The route has checked the name (at most 100 characters).
   */
  async rename(requester: Requester, deviceId: string, displayName: string | null | undefined): Promise<Record<string, never>> {
    // An absent display_name leaves the name as it is (but the device must still exist); null clears it.
    const found =
      displayName === undefined
        ? (await Devices.findDevice(this.db, requester.userId, deviceId)) !== null
        : await Devices.setDeviceDisplayName(this.db, requester.userId, deviceId, displayName);
    if (!found) throw notFound('Device not found');
    return {};
  }

  /** DELETE /devices/{deviceId}: UIA, then the device and its tokens go (200 also when it was already gone). */
  deleteOne(requester: Requester, req: { deviceId: string; auth: unknown; ip: string }): Promise<Record<string, never>> {
    return this.deleteWithAuth(requester, 'DELETE /devices/{deviceId}', [req.deviceId], req.auth, req.ip);
  }

  /** POST /delete_devices: UIA, then the devices and their tokens go. */
  deleteMany(requester: Requester, req: { deviceIds: string[]; auth: unknown; ip: string }): Promise<Record<string, never>> {
    return this.deleteWithAuth(requester, 'POST /delete_devices', req.deviceIds, req.auth, req.ip);
  }

  private async deleteWithAuth(requester: Requester, operation: string, deviceIds: string[], authDict: unknown, ip: string) {
    // The session is bound to the devices named, so it cannot be reused for others.
    const auth = await this.uia.authenticate(
      { name: operation, userId: requester.userId, binding: { devices: deviceIds }, clientIp: ip },
      REAUTH_FLOWS,
      authDict,
    );
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      await this.sessions.endSessions(trx, requester.userId, deviceIds);
    });
    return {};
  }
}
